//! Where a service's API is, for every AWS partition, with FIPS and dual-stack endpoints as
//! options.
//!
//! The partitions and their DNS suffixes are the ones the AWS SDKs' `partitions.json` lists.
//! A region no partition claims (a new one, or a local test name) is taken as the commercial
//! `aws` partition, as the SDKs do.

/// A group of regions with its own DNS names (and its own accounts and credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// `aws`: the commercial regions.
    Aws,
    /// `aws-cn`: Beijing and Ningxia.
    China,
    /// `aws-us-gov`: GovCloud (US).
    UsGov,
    /// `aws-iso`.
    Iso,
    /// `aws-iso-b`.
    IsoB,
    /// `aws-iso-e`.
    IsoE,
    /// `aws-iso-f`.
    IsoF,
    /// `aws-eusc`: the European Sovereign Cloud.
    Eusc,
}

impl Partition {
    /// The partition of `region`.
    pub fn of(region: &str) -> Partition {
        let starts = |p: &str| region.starts_with(p);
        if starts("cn-") {
            Partition::China
        } else if starts("us-gov-") {
            Partition::UsGov
        } else if starts("us-isob-") {
            Partition::IsoB
        } else if starts("us-isof-") {
            Partition::IsoF
        } else if starts("us-iso-") {
            Partition::Iso
        } else if starts("eu-isoe-") {
            Partition::IsoE
        } else if starts("eusc-") {
            Partition::Eusc
        } else {
            Partition::Aws
        }
    }

    /// The name ARNs and IAM policies use (`arn:<name>:…`).
    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::China => "aws-cn",
            Partition::UsGov => "aws-us-gov",
            Partition::Iso => "aws-iso",
            Partition::IsoB => "aws-iso-b",
            Partition::IsoE => "aws-iso-e",
            Partition::IsoF => "aws-iso-f",
            Partition::Eusc => "aws-eusc",
        }
    }

    /// The DNS suffix of its IPv4 endpoints.
    pub fn dns_suffix(self) -> &'static str {
        match self {
            Partition::Aws | Partition::UsGov => "amazonaws.com",
            Partition::China => "amazonaws.com.cn",
            Partition::Iso => "c2s.ic.gov",
            Partition::IsoB => "sc2s.sgov.gov",
            Partition::IsoE => "cloud.adc-e.uk",
            Partition::IsoF => "csp.hci.ic.gov",
            Partition::Eusc => "amazonaws.eu",
        }
    }

    /// The DNS suffix of its dual-stack (IPv4 and IPv6) endpoints, where it has them.
    pub fn dual_stack_suffix(self) -> Option<&'static str> {
        match self {
            Partition::Aws | Partition::UsGov => Some("api.aws"),
            Partition::China => Some("api.amazonwebservices.com.cn"),
            _ => None,
        }
    }

    /// Whether it has FIPS 140 endpoints.
    pub fn has_fips(self) -> bool {
        !matches!(self, Partition::China | Partition::Eusc)
    }
}

/// Which endpoint variant to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variant {
    /// FIPS 140 validated endpoints.
    pub fips: bool,
    /// Endpoints reachable over IPv6 as well as IPv4.
    pub dual_stack: bool,
}

/// Why an endpoint variant cannot be used in a region.
pub fn unsupported(region: &str, variant: Variant) -> Option<String> {
    let partition = Partition::of(region);
    if variant.fips && !partition.has_fips() {
        return Some(format!(
            "the {} partition ({region}) has no FIPS endpoints",
            partition.name()
        ));
    }
    if variant.dual_stack && partition.dual_stack_suffix().is_none() {
        return Some(format!(
            "the {} partition ({region}) has no dual-stack endpoints",
            partition.name()
        ));
    }
    None
}

/// The base URL (`https://host`) of a JSON- or query-protocol service such as `cloudtrail`.
pub fn service_url(service: &str, region: &str, variant: Variant) -> String {
    let partition = Partition::of(region);
    let label = if variant.fips {
        format!("{service}-fips")
    } else {
        service.to_owned()
    };
    let suffix = match partition.dual_stack_suffix() {
        Some(dual) if variant.dual_stack => dual,
        _ => partition.dns_suffix(),
    };
    format!("https://{label}.{region}.{suffix}")
}

/// The base URL of `bucket` on S3, virtual-hosted, or path-style (`…/bucket`) when the name
/// has a dot (it would not match the wildcard certificate as a host name). S3 names its
/// dual-stack endpoints with a `dualstack` label under the partition's usual suffix.
pub fn s3_bucket_url(bucket: &str, region: &str, variant: Variant) -> String {
    let partition = Partition::of(region);
    let mut host = String::from(if variant.fips { "s3-fips" } else { "s3" });
    if variant.dual_stack {
        host.push_str(".dualstack");
    }
    let host = format!("{host}.{region}.{}", partition.dns_suffix());
    if bucket.contains('.') {
        format!("https://{host}/{bucket}")
    } else {
        format!("https://{bucket}.{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Variant = Variant {
        fips: false,
        dual_stack: false,
    };
    const FIPS: Variant = Variant {
        fips: true,
        dual_stack: false,
    };
    const DUAL: Variant = Variant {
        fips: false,
        dual_stack: true,
    };
    const BOTH: Variant = Variant {
        fips: true,
        dual_stack: true,
    };

    #[test]
    fn every_partition_gets_its_own_names() {
        let cases = [
            ("us-east-1", "aws", "https://cloudtrail.us-east-1.amazonaws.com"),
            ("eu-central-2", "aws", "https://cloudtrail.eu-central-2.amazonaws.com"),
            ("cn-north-1", "aws-cn", "https://cloudtrail.cn-north-1.amazonaws.com.cn"),
            (
                "us-gov-west-1",
                "aws-us-gov",
                "https://cloudtrail.us-gov-west-1.amazonaws.com",
            ),
            (
                "us-iso-east-1",
                "aws-iso",
                "https://cloudtrail.us-iso-east-1.c2s.ic.gov",
            ),
            (
                "us-isob-east-1",
                "aws-iso-b",
                "https://cloudtrail.us-isob-east-1.sc2s.sgov.gov",
            ),
            (
                "eu-isoe-west-1",
                "aws-iso-e",
                "https://cloudtrail.eu-isoe-west-1.cloud.adc-e.uk",
            ),
            (
                "us-isof-south-1",
                "aws-iso-f",
                "https://cloudtrail.us-isof-south-1.csp.hci.ic.gov",
            ),
            (
                "eusc-de-east-1",
                "aws-eusc",
                "https://cloudtrail.eusc-de-east-1.amazonaws.eu",
            ),
        ];
        for (region, partition, url) in cases {
            assert_eq!(Partition::of(region).name(), partition, "{region}");
            assert_eq!(service_url("cloudtrail", region, PLAIN), url);
        }
    }

    #[test]
    fn fips_and_dual_stack_variants() {
        let services = [
            ("us-east-2", FIPS, "https://cloudtrail-fips.us-east-2.amazonaws.com"),
            ("us-east-2", DUAL, "https://cloudtrail.us-east-2.api.aws"),
            ("us-gov-east-1", BOTH, "https://cloudtrail-fips.us-gov-east-1.api.aws"),
            (
                "cn-northwest-1",
                DUAL,
                "https://cloudtrail.cn-northwest-1.api.amazonwebservices.com.cn",
            ),
        ];
        for (region, variant, url) in services {
            assert_eq!(service_url("cloudtrail", region, variant), url, "{variant:?}");
        }
        let buckets = [
            ("logs", "us-west-2", PLAIN, "https://logs.s3.us-west-2.amazonaws.com"),
            (
                "logs",
                "us-west-2",
                FIPS,
                "https://logs.s3-fips.us-west-2.amazonaws.com",
            ),
            (
                "logs",
                "us-west-2",
                DUAL,
                "https://logs.s3.dualstack.us-west-2.amazonaws.com",
            ),
            (
                "logs",
                "us-gov-west-1",
                BOTH,
                "https://logs.s3-fips.dualstack.us-gov-west-1.amazonaws.com",
            ),
            (
                "logs",
                "cn-north-1",
                PLAIN,
                "https://logs.s3.cn-north-1.amazonaws.com.cn",
            ),
            (
                "my.logs",
                "eu-west-1",
                PLAIN,
                "https://s3.eu-west-1.amazonaws.com/my.logs",
            ),
        ];
        for (bucket, region, variant, url) in buckets {
            assert_eq!(s3_bucket_url(bucket, region, variant), url, "{variant:?}");
        }
    }

    #[test]
    fn variants_a_partition_lacks_are_named() {
        assert_eq!(unsupported("us-east-1", BOTH), None);
        assert_eq!(unsupported("cn-north-1", DUAL), None);
        assert_eq!(
            unsupported("cn-north-1", FIPS).as_deref(),
            Some("the aws-cn partition (cn-north-1) has no FIPS endpoints")
        );
        assert_eq!(
            unsupported("us-iso-east-1", DUAL).as_deref(),
            Some("the aws-iso partition (us-iso-east-1) has no dual-stack endpoints")
        );
    }
}
