//! User agents by family: `aws-cli`, `boto3`, `console`, `terraform`, `browser`, ... — what a
//! baseline remembers, rather than every version string.

/// Families recognised anywhere in the string, most specific first.
const KNOWN: &[(&str, &str)] = &[
    ("terraform", "terraform"),
    ("pulumi", "pulumi"),
    ("aws-cli", "aws-cli"),
    ("aws-sdk-go-v2", "aws-sdk-go-v2"),
    ("aws-sdk-go", "aws-sdk-go"),
    ("aws-sdk-java", "aws-sdk-java"),
    ("aws-sdk-js", "aws-sdk-js"),
    ("aws-sdk-dotnet", "aws-sdk-dotnet"),
    ("aws-sdk-ruby", "aws-sdk-ruby"),
    ("aws-sdk-rust", "aws-sdk-rust"),
    ("aws-sdk-php", "aws-sdk-php"),
    ("aws-sdk-cpp", "aws-sdk-cpp"),
    ("boto3", "boto3"),
    ("botocore", "botocore"),
    ("aws-cdk", "aws-cdk"),
    ("cloudformation", "cloudformation"),
    ("awsconsole", "console"),
    ("console.amazonaws.com", "console"),
    ("signin.amazonaws.com", "console"),
    ("console.aws.amazon.com", "console"),
    ("s3console", "console"),
    ("aws internal", "aws-internal"),
    ("aws-internal", "aws-internal"),
    ("python-requests", "python-requests"),
    ("curl/", "curl"),
    ("postman", "postman"),
    ("mozilla/", "browser"),
];

/// Operating systems of penetration-testing distributions, as GuardDuty's PenTest findings
/// name them.
const PENTEST: &[&str] = &["kali", "parrot", "pentoo"];

/// The family of a user agent, lowercase; `None` when there is none.
pub fn family(agent: &str) -> Option<String> {
    let agent = agent.trim().trim_start_matches('[');
    if agent.is_empty() {
        return None;
    }
    let lower = agent.to_ascii_lowercase();
    for (needle, family) in KNOWN {
        if lower.contains(needle) {
            return Some((*family).to_owned());
        }
    }
    // A service calling on someone's behalf names itself (`lambda.amazonaws.com`).
    let first = lower.split(['/', ' ', '(', ',', ']']).next().unwrap_or("");
    let first: String = first.chars().take(40).collect();
    if first.is_empty() {
        None
    } else {
        Some(first)
    }
}

/// Whether the agent names a penetration-testing distribution.
pub fn is_pentest(agent: &str) -> bool {
    let lower = agent.to_ascii_lowercase();
    PENTEST.iter().any(|p| {
        lower.match_indices(p).any(|(i, _)| {
            // A word of its own: `kali` but not `kalimba`.
            let before = lower[..i].chars().next_back();
            let after = lower[i + p.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphabetic())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_read_by_family() {
        assert_eq!(
            family("aws-cli/2.13.0 Python/3.11.4 Linux/5.15 exe/x86_64.ubuntu.22").as_deref(),
            Some("aws-cli")
        );
        assert_eq!(
            family("Boto3/1.28.2 md/Botocore#1.31.2 ua/2.0 os/linux").as_deref(),
            Some("boto3")
        );
        assert_eq!(
            family("APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/5.17.0")
                .as_deref(),
            Some("terraform")
        );
        assert_eq!(family("AWS Internal").as_deref(), Some("aws-internal"));
        assert_eq!(
            family("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488]").as_deref(),
            Some("aws-sdk-java")
        );
        assert_eq!(
            family("Mozilla/5.0 (Windows NT 10.0; Win64; x64)").as_deref(),
            Some("browser")
        );
        assert_eq!(family("lambda.amazonaws.com").as_deref(), Some("lambda.amazonaws.com"));
        assert_eq!(family("  ").as_deref(), None);
    }

    #[test]
    fn pentest_distributions_are_words_of_their_own() {
        assert!(is_pentest(
            "aws-cli/1.16 Python/3.7 Linux/5.4.0-kali3-amd64 botocore/1.12"
        ));
        assert!(is_pentest("Boto3/1.9 Python/3.8 Linux/5.10 parrot"));
        assert!(!is_pentest("aws-cli/2.0 Python/3.8 Linux/kalimba"));
    }
}
