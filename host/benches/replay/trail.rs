//! The generated trail: a deterministic CloudTrail file set laid out like a trail bucket.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::{write::GzEncoder, Compression};

pub(crate) const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
pub(crate) const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
/// Seconds from 2024-01-01T00:00Z to 2024-03-04T00:00Z, where the generated trail starts.
pub(crate) const TRAIL_START_SECS: u64 = (31 + 29 + 3) * 86_400;

/// A small fixed-seed generator (xorshift64*): the same files on every machine.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
    pub(crate) fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }
    pub(crate) fn uuid(&mut self) -> String {
        let mut hex = |n| self.chars(b"0123456789abcdef", n);
        format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
    }
}

/// A stable id for a name, so that a principal keeps its id across records.
pub(crate) fn stable_id(prefix: &str, name: &str) -> String {
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{prefix}{}", Rng(seed | 1).chars(UPPER, 17))
}

pub(crate) const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub(crate) const TOKEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `(month, day, hour, minute, second)` of `secs` after 2024-01-01T00:00Z (valid within 2024).
pub(crate) fn calendar(secs: u64) -> (u64, u64, u64, u64, u64) {
    const MONTH_DAYS: [u64; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut day, time) = (secs / 86_400, secs % 86_400);
    let mut month = 0;
    while month < 11 && day >= MONTH_DAYS[month] {
        day -= MONTH_DAYS[month];
        month += 1;
    }
    (month as u64 + 1, day + 1, time / 3600, time / 60 % 60, time % 60)
}

/// Record templates, written the way CloudTrail writes them (one line, no spaces between tokens);
/// line breaks and the indentation after them are removed. `$name` is filled by `Filler::draw`
/// once per record (`$uuid` and `$uuid_event` are two draws of one kind); a `$` before anything
/// but a lowercase name stays as it is.
pub(crate) mod templates {
    pub const USER: &str = r#"{"type":"IAMUser","principalId":"$user_id","arn":"arn:aws:iam::$acct:user/$user",
        "accountId":"$acct","accessKeyId":"$user_key","userName":"$user"}"#;
    pub const ROLE: &str = r#"{"type":"AssumedRole","principalId":"$role_id:$session",
        "arn":"arn:aws:sts::$acct:assumed-role/$role/$session","accountId":"$acct","accessKeyId":"ASIA$upper16",
        "sessionContext":{"sessionIssuer":{"type":"Role","principalId":"$role_id","arn":"arn:aws:iam::$acct:role/$role",
        "accountId":"$acct","userName":"$role"},"webIdFederationData":{},
        "attributes":{"creationDate":"$created","mfaAuthenticated":"false"}}}"#;
    pub const SERVICE: &str = r#"{"type":"AWSService","invokedBy":"$invoked_by"}"#;
    pub const TLS: &str = r#""tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256",
        "clientProvidedHostHeader":"$host.$region.amazonaws.com"}"#;
    /// What every API call starts with.
    pub const HEAD: &str = r#""eventVersion":"1.09","userIdentity":$identity,"eventTime":"$time",
        "eventSource":"$host.amazonaws.com","eventName":"$name","awsRegion":"$region","sourceIPAddress":"$source",
        "userAgent":"$agent",$error"#;
    /// What every API call ends with, but `eventCategory` and `tlsDetails`.
    pub const TAIL: &str = r#""requestID":"$uuid","eventID":"$uuid_event","readOnly":$read,"eventType":"AwsApiCall""#;
    pub const S3_OBJECT: &str = r#"{$head"requestParameters":{"bucketName":"$bucket",
        "Host":"$bucket.s3.$region.amazonaws.com","key":"$object"},"responseElements":$s3_response,
        "additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn":$s3_in,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"$token76",
        "bytesTransferredOut":$s3_out},$tail,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::$bucket/$object"},
        {"accountId":"$acct","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::$bucket"}],"managementEvent":false,
        "recipientAccountId":"$acct","eventCategory":"Data",$tls}"#;
    pub const S3_PUT_RESPONSE: &str = r#"{"x-amz-server-side-encryption":"aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:$region:$acct:key/$uuid_key",
        "x-amz-version-id":"$token32"}"#;
    pub const EC2_DESCRIBE: &str = r#"{$head"requestParameters":{"instancesSet":{},"filterSet":{"items":[
        {"name":"tag:Environment","valueSet":{"items":[{"value":"prod"}]}},
        {"name":"instance-state-name","valueSet":{"items":[{"value":"running"},{"value":"pending"}]}}]}},
        "responseElements":null,$tail,"managementEvent":true,"recipientAccountId":"$acct","eventCategory":"Management",
        $tls}"#;
    pub const EC2_RUN: &str = r#"{$head"requestParameters":{"instancesSet":{"items":[{
        "imageId":"ami-0c101f26f147fa7fd","minCount":1,"maxCount":1}]},"instanceType":"m6i.large",
        "blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,"clientToken":"$uuid_client",
        "tagSpecificationSet":{"items":[{"resourceType":"instance","tags":[{"key":"Name","value":"web"}]}]}},
        "responseElements":{"requestId":"$uuid","reservationId":"r-$hex17_r","ownerId":"$acct","groupSet":{},
        "instancesSet":{"items":[{"instanceId":"i-$hex17_i","imageId":"ami-0c101f26f147fa7fd",
        "instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-0-$octet-$octet_b.ec2.internal",
        "amiLaunchIndex":0,"productCodes":{},"instanceType":"m6i.large","launchTime":$millis,
        "placement":{"availabilityZone":"$zone","tenancy":"default"},"monitoring":{"state":"disabled"},
        "subnetId":"subnet-$hex17_s","vpcId":"vpc-$hex17_v","privateIpAddress":"10.0.$octet.$octet_b",
        "stateReason":{"code":"pending","message":"pending"},"architecture":"x86_64","rootDeviceType":"ebs",
        "rootDeviceName":"/dev/xvda","blockDeviceMapping":{},"virtualizationType":"hvm","hypervisor":"xen",
        "groupSet":{"items":[{"groupId":"sg-$hex17_g","groupName":"web-tier"}]},"sourceDestCheck":true,
        "networkInterfaceSet":{"items":[{"networkInterfaceId":"eni-$hex17_n","subnetId":"subnet-$hex17_s",
        "vpcId":"vpc-$hex17_v","ownerId":"$acct","status":"in-use","macAddress":"0a:1b:2c:3d:4e:5f",
        "privateIpAddress":"10.0.$octet.$octet_b","sourceDestCheck":true,"interfaceType":"interface",
        "groupSet":{"items":[{"groupId":"sg-$hex17_g","groupName":"web-tier"}]},"attachment":{
        "attachmentId":"eni-attach-$hex17_a","deviceIndex":0,"status":"attaching","attachTime":$millis,
        "deleteOnTermination":true},"privateIpAddressesSet":{"item":[{"privateIpAddress":"10.0.$octet.$octet_b",
        "primary":true}]},"ipv6AddressesSet":{},"tagSet":{}}]},"ebsOptimized":true,"enaSupport":true,
        "cpuOptions":{"coreCount":1,"threadsPerCore":2},"enclaveOptions":{"enabled":false},"metadataOptions":{
        "state":"pending","httpTokens":"required","httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}}]}},
        $tail,"managementEvent":true,"recipientAccountId":"$acct","eventCategory":"Management",$tls}"#;
    pub const IAM: &str = r#"{$head"requestParameters":$iam_request,"responseElements":$iam_response,$tail,
        "managementEvent":true,"recipientAccountId":"$acct","eventCategory":"Management",$tls}"#;
    pub const IAM_CREATE_ROLE: &str = r#"{"roleName":"$target","assumeRolePolicyDocument":"{\"Version\":
        \"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},
        \"Action\":\"sts:AssumeRole\"}]}"}"#;
    pub const IAM_ROLE: &str = r#"{"role":{"path":"/","roleName":"$target","roleId":"$target_id",
        "arn":"arn:aws:iam::$acct:role/$target","createDate":"Mar 4, 2024, 10:00:00 AM"}}"#;
    pub const STS_ASSUME_ROLE: &str = r#"{$head"requestParameters":{"roleArn":"arn:aws:iam::$acct:role/$target",
        "roleSessionName":"session-$hex8","durationSeconds":3600},"responseElements":{"credentials":{
        "accessKeyId":"ASIA$upper16_c","sessionToken":"IQoJb3JpZ2luX2Vj$token180",
        "expiration":"Mar 4, 2024, 11:00:00 AM"},"assumedRoleUser":{"assumedRoleId":"$target_id:session-$hex8",
        "arn":"arn:aws:sts::$acct:assumed-role/$target/session-$hex8"}},$tail,"resources":[{"accountId":"$acct",
        "type":"AWS::IAM::Role","ARN":"arn:aws:iam::$acct:role/$target"}],"managementEvent":true,
        "recipientAccountId":"$acct","sharedEventID":"$uuid_shared","eventCategory":"Management",$tls}"#;
    pub const CONSOLE_LOGIN: &str = r#"{"eventVersion":"1.09","userIdentity":$identity,"eventTime":"$time",
        "eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1",
        "sourceIPAddress":"$source","userAgent":"$agent","requestParameters":null,
        "responseElements":{"ConsoleLogin":"$login"},"additionalEventData":{
        "LoginTo":"https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion":"No","MFAUsed":"Yes"},"eventID":"$uuid_event","readOnly":false,"eventType":"AwsConsoleSignIn",
        "managementEvent":true,"recipientAccountId":"$acct","eventCategory":"Management",$tls}"#;
    pub const LAMBDA_INVOKE: &str = r#"{$head"requestParameters":{
        "functionName":"arn:aws:lambda:$region:$acct:function:$function","invocationType":"Event",
        "sourceArn":"arn:aws:events:$region:$acct:rule/every-5-minutes"},"responseElements":null,
        "additionalEventData":{"functionVersion":"arn:aws:lambda:$region:$acct:function:$function:$LATEST"},$tail,
        "resources":[{"accountId":"$acct","type":"AWS::Lambda::Function",
        "ARN":"arn:aws:lambda:$region:$acct:function:$function"}],"managementEvent":false,"recipientAccountId":"$acct",
        "eventCategory":"Data",$tls}"#;
    pub const KMS_DECRYPT: &str = r#"{$head"requestParameters":{"encryptionAlgorithm":"SYMMETRIC_DEFAULT",
        "encryptionContext":{"SecretARN":"arn:aws:secretsmanager:$region:$acct:secret:prod/db-$token6",
        "SecretVersionId":"$uuid_version"}},"responseElements":null,$tail,"resources":[{"accountId":"$acct",
        "type":"AWS::KMS::Key","ARN":"arn:aws:kms:$region:$acct:key/$uuid_key"}],"managementEvent":true,
        "recipientAccountId":"$acct","eventCategory":"Management",$tls}"#;
    pub const KMS_ROTATE: &str = r#"{"eventVersion":"1.09","userIdentity":{"accountId":"$acct",
        "invokedBy":"kms.amazonaws.com"},"eventTime":"$time","eventSource":"kms.amazonaws.com","eventName":"RotateKey",
        "awsRegion":"$region","sourceIPAddress":"kms.amazonaws.com","userAgent":"kms.amazonaws.com",
        "requestParameters":null,"responseElements":null,"eventID":"$uuid_event","readOnly":false,"resources":[{
        "accountId":"$acct","type":"AWS::KMS::Key","ARN":"arn:aws:kms:$region:$acct:key/$uuid_key"}],
        "eventType":"AwsServiceEvent","managementEvent":true,"recipientAccountId":"$acct",
        "serviceEventDetails":{"keyId":"$uuid_key"},"eventCategory":"Management"}"#;
}

/// One kind of record and how often it appears.
pub(crate) struct Kind {
    /// Share of all records, in percent.
    percent: u64,
    /// The service's host name prefix (`s3` for `s3.amazonaws.com`).
    host: &'static str,
    /// Event names, one drawn per record.
    names: &'static [&'static str],
    /// Percent of callers that are IAM users, and that are AWS services (the rest are roles).
    users_services: [u64; 2],
    /// The service that calls on a user's behalf.
    invoked_by: &'static str,
    template: &'static str,
}

#[rustfmt::skip]
pub(crate) const KINDS: [Kind; 9] = [
    Kind { percent: 30, host: "s3", names: &["GetObject", "GetObject", "PutObject"], users_services: [10, 30],
        invoked_by: "athena.amazonaws.com", template: templates::S3_OBJECT },
    Kind { percent: 14, host: "ec2", names: &["DescribeInstances"], users_services: [20, 30],
        invoked_by: "autoscaling.amazonaws.com", template: templates::EC2_DESCRIBE },
    Kind { percent: 3, host: "ec2", names: &["RunInstances"], users_services: [10, 0],
        invoked_by: "", template: templates::EC2_RUN },
    Kind { percent: 8, host: "iam", names: &["GetRole", "ListAttachedRolePolicies", "AttachRolePolicy", "CreateRole"],
        users_services: [30, 30], invoked_by: "cloudformation.amazonaws.com", template: templates::IAM },
    Kind { percent: 12, host: "sts", names: &["AssumeRole"], users_services: [10, 30],
        invoked_by: "lambda.amazonaws.com", template: templates::STS_ASSUME_ROLE },
    Kind { percent: 2, host: "signin", names: &["ConsoleLogin"], users_services: [100, 0],
        invoked_by: "", template: templates::CONSOLE_LOGIN },
    Kind { percent: 8, host: "lambda", names: &["Invoke"], users_services: [0, 50],
        invoked_by: "events.amazonaws.com", template: templates::LAMBDA_INVOKE },
    Kind { percent: 20, host: "kms", names: &["Decrypt"], users_services: [0, 70],
        invoked_by: "secretsmanager.amazonaws.com", template: templates::KMS_DECRYPT },
    Kind { percent: 3, host: "kms", names: &["RotateKey"], users_services: [0, 100],
        invoked_by: "kms.amazonaws.com", template: templates::KMS_ROTATE },
];

pub(crate) const AGENTS: [&str; 4] = [
    "aws-cli/2.15.19 Python/3.11.6 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/s3api.get-object",
    "Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.12.2 Botocore/1.34.54",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
];

pub(crate) const USERS: [&str; 4] = ["ci-deploy", "ops-admin", "svc-backup", "audit-reader"];
pub(crate) const ROLES: [&str; 4] = ["PlatformAdmin", "DataPipeline", "ReadOnly", "eks-node-role"];
pub(crate) const TARGET_ROLES: [&str; 3] = ["CrossAccountAudit", "DeployTarget", "lambda-exec"];
pub(crate) const BUCKETS: [&str; 3] = ["app-assets", "data-lake-raw", "backups"];
pub(crate) const FUNCTIONS: [&str; 3] = ["ingest-orders", "resize-images", "nightly-report"];
pub(crate) const NETWORKS: [&str; 3] = ["203.0.113", "198.51.100", "192.0.2"];

/// `errorCode` and `errorMessage` of the one API call in twenty that fails.
#[rustfmt::skip]
pub(crate) const ERRORS: [(&str, &str); 3] = [
    ("AccessDenied", "User is not authorized to perform this operation: no identity-based policy allows it"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("ThrottlingException", "Rate exceeded"),
];

/// Fills templates for one record: each `$name` is drawn once and reused.
pub(crate) struct Filler<'a> {
    rng: &'a mut Rng,
    kind: &'a Kind,
    account: &'a str,
    region: &'a str,
    secs: u64,
    drawn: HashMap<String, String>,
}

impl Filler<'_> {
    /// Appends `template` to `out` with its line breaks removed and its `$name`s filled.
    pub(crate) fn fill(&mut self, template: &str, out: &mut String) {
        for (i, line) in template.lines().enumerate() {
            let mut rest = if i == 0 { line } else { line.trim_start() };
            while let Some(at) = rest.find('$') {
                out.push_str(&rest[..at]);
                let after = &rest[at + 1..];
                let len = after
                    .find(|c: char| !matches!(c, 'a'..='z' | '0'..='9' | '_'))
                    .unwrap_or(after.len());
                match &after[..len] {
                    "" => out.push('$'),
                    name => out.push_str(&self.get(name)),
                }
                rest = &after[len..];
            }
            out.push_str(rest);
        }
    }

    pub(crate) fn get(&mut self, name: &str) -> String {
        if let Some(value) = self.drawn.get(name) {
            return value.clone();
        }
        let value = self.draw(name);
        self.drawn.insert(name.to_owned(), value.clone());
        value
    }

    pub(crate) fn word(&mut self, words: &[&str]) -> String {
        self.rng.pick(words).to_string()
    }

    pub(crate) fn expand(&mut self, template: &str) -> String {
        let mut out = String::new();
        self.fill(template, &mut out);
        out
    }

    /// A value for `$name`: fixed by the record's place, drawn, or derived from other values.
    pub(crate) fn draw(&mut self, name: &str) -> String {
        let (kind, acct, region) = (self.kind, self.account, self.region);
        let event_name = |f: &mut Self| f.get("name");
        match name {
            "acct" => acct.into(),
            "region" => region.into(),
            "zone" => format!("{region}a"),
            "host" => kind.host.into(),
            "invoked_by" => kind.invoked_by.into(),
            "time" | "created" => {
                let secs = if name == "time" { self.secs } else { self.secs - 900 };
                let (mo, d, h, mi, s) = calendar(secs);
                format!("2024-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            }
            // 1 704 067 200 is 2024-01-01T00:00Z in Unix seconds.
            "millis" => ((1_704_067_200 + self.secs) * 1000).to_string(),
            "name" => self.word(kind.names),
            "read" => {
                let name = event_name(self);
                let reads = ["Get", "List", "Describe", "Decrypt", "AssumeRole"];
                reads.iter().any(|p| name.starts_with(p)).to_string()
            }
            "caller" => match self.rng.range(0, 99) {
                n if n < kind.users_services[0] => "user".into(),
                n if n >= 100 - kind.users_services[1] => "service".into(),
                _ => "role".into(),
            },
            "identity" => match self.get("caller").as_str() {
                "user" => self.expand(templates::USER),
                "service" => self.expand(templates::SERVICE),
                _ => self.expand(templates::ROLE),
            },
            "source" if self.get("caller") == "service" => kind.invoked_by.into(),
            "source" => format!("{}.{}", self.word(&NETWORKS), self.rng.range(1, 254)),
            "agent" if self.get("caller") == "service" => kind.invoked_by.into(),
            "agent" => self.word(&AGENTS),
            "error" if self.rng.range(0, 99) < 5 => {
                let (code, message) = self.rng.pick(&ERRORS);
                format!(r#""errorCode":"{code}","errorMessage":"{message}","#)
            }
            "error" => String::new(),
            "head" => self.expand(templates::HEAD),
            "tail" => self.expand(templates::TAIL),
            "tls" => self.expand(templates::TLS),
            "user" => self.word(&USERS),
            "user_id" => stable_id("AIDA", &self.get("user")),
            "user_key" => stable_id("AKIA", &self.get("user")),
            "role" => self.word(&ROLES),
            "role_id" => stable_id("AROA", &self.get("role")),
            "session" => format!("{}-{}", self.get("role").to_lowercase(), self.rng.range(1000, 1200)),
            "target" => self.word(&TARGET_ROLES),
            "target_id" => stable_id("AROA", &self.get("target")),
            "bucket" => format!("{}-{acct}", self.word(&BUCKETS)),
            "object" => format!("year=2024/month=03/part-{:05}.parquet", self.rng.range(0, 99_999)),
            "bytes" => self.rng.range(1_000, 50_000_000).to_string(),
            "s3_in" | "s3_out" if (name == "s3_in") == (event_name(self) == "PutObject") => self.get("bytes"),
            "s3_in" | "s3_out" => "0".into(),
            "s3_response" if event_name(self) == "PutObject" => self.expand(templates::S3_PUT_RESPONSE),
            "iam_request" if event_name(self) == "CreateRole" => self.expand(templates::IAM_CREATE_ROLE),
            "iam_request" if event_name(self) == "AttachRolePolicy" => {
                self.expand(r#"{"roleName":"$target","policyArn":"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}"#)
            }
            "iam_request" => self.expand(r#"{"roleName":"$target"}"#),
            "iam_response" if event_name(self) == "CreateRole" => self.expand(templates::IAM_ROLE),
            "s3_response" | "iam_response" => "null".into(),
            "login" if self.rng.range(0, 99) < 10 => "Failure".into(),
            "login" => "Success".into(),
            "function" => self.word(&FUNCTIONS),
            _ => self.draw_generic(name),
        }
    }

    /// `uuid`, `octet`, `hexN`, `upperN`, `tokenN` (N characters), with an optional `_tag`.
    pub(crate) fn draw_generic(&mut self, name: &str) -> String {
        let stem = name.split('_').next().unwrap_or(name);
        let digits = stem.find(|c: char| c.is_ascii_digit()).unwrap_or(stem.len());
        let len = stem[digits..].parse().unwrap_or(0);
        match &stem[..digits] {
            "uuid" => self.rng.uuid(),
            "octet" => self.rng.range(0, 255).to_string(),
            "hex" => self.rng.chars(b"0123456789abcdef", len),
            "upper" => self.rng.chars(UPPER, len),
            "token" => self.rng.chars(TOKEN, len),
            _ => panic!("template token ${name} is not known"),
        }
    }
}

/// The kind of record a roll of 0..100 stands for.
pub(crate) fn kind_for(mut roll: u64) -> &'static Kind {
    for kind in &KINDS {
        if roll < kind.percent {
            return kind;
        }
        roll -= kind.percent;
    }
    &KINDS[0]
}

/// Draws one record of the mix into `out`.
pub(crate) fn write_record(out: &mut String, rng: &mut Rng, account: &str, region: &str, secs: u64) {
    let kind = kind_for(rng.range(0, 99));
    let mut filler = Filler {
        rng,
        kind,
        account,
        region,
        secs,
        drawn: HashMap::new(),
    };
    filler.fill(kind.template, out);
}

/// A set of generated files and what they hold.
#[derive(Default)]
pub(crate) struct Corpus {
    /// What `replay` is given: the bucket directory or the single file.
    pub(crate) arg: PathBuf,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) events: u64,
    pub(crate) json_bytes: u64,
    pub(crate) gz_bytes: u64,
}

impl Corpus {
    /// Adds a log file of `count` records from the 5-minute window starting at `window_secs`.
    pub(crate) fn write_file(
        &mut self,
        path: &Path,
        rng: &mut Rng,
        window_secs: u64,
        count: u64,
    ) -> anyhow::Result<()> {
        // The name says where the file is from: `<acct>_CloudTrail_<region>_...`.
        let name = path.file_name().and_then(|n| n.to_str()).context("a log file name")?;
        let mut parts = name.split('_');
        let (account, region) = (parts.next().unwrap_or(""), parts.nth(1).unwrap_or(""));
        std::fs::create_dir_all(path.parent().context("a log file directory")?)?;
        let mut gz = GzEncoder::new(BufWriter::new(File::create(path)?), Compression::default());
        let mut buf = String::from(r#"{"Records":["#);
        for i in 0..count {
            if i > 0 {
                buf.push(',');
            }
            let secs = window_secs + rng.range(0, 299);
            write_record(&mut buf, rng, account, region, secs);
            gz.write_all(buf.as_bytes())?;
            self.json_bytes += buf.len() as u64;
            buf.clear();
        }
        gz.write_all(b"]}")?;
        gz.finish()?.flush()?;
        self.json_bytes += 2;
        self.events += count;
        self.gz_bytes += std::fs::metadata(path)?.len();
        self.files.push(path.to_owned());
        Ok(())
    }
}

/// `AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<stamp>_<rand>.json.gz`
pub(crate) fn log_path(dir: &Path, account: &str, region: &str, window_secs: u64, suffix: &str) -> PathBuf {
    let (mo, d, h, mi, _) = calendar(window_secs);
    let name = format!("{account}_CloudTrail_{region}_2024{mo:02}{d:02}T{h:02}{mi:02}Z_{suffix}.json.gz");
    dir.join(format!(
        "AWSLogs/{account}/CloudTrail/{region}/2024/{mo:02}/{d:02}/{name}"
    ))
}

/// A trail bucket: every account and region delivers a file every five minutes.
pub(crate) fn generate_bucket(dir: &Path, events: u64, rng: &mut Rng) -> anyhow::Result<Corpus> {
    let mut corpus = Corpus {
        arg: dir.to_owned(),
        ..Corpus::default()
    };
    for n in 0.. {
        if corpus.events >= events {
            break;
        }
        let (account, region) = (ACCOUNTS[n % 2], REGIONS[n / 2 % 3]);
        let window = TRAIL_START_SECS + n as u64 / 6 * 300;
        let suffix = rng.chars(&TOKEN[..62], 16);
        let count = rng.range(100, 1000);
        corpus.write_file(&log_path(dir, account, region, window, &suffix), rng, window, count)?;
    }
    corpus.files.sort();
    Ok(corpus)
}

pub(crate) fn generate_single(dir: &Path, name: &str, events: u64, rng: &mut Rng) -> anyhow::Result<Corpus> {
    let path = log_path(dir, ACCOUNTS[0], REGIONS[0], TRAIL_START_SECS, name);
    let mut corpus = Corpus {
        arg: path.clone(),
        ..Corpus::default()
    };
    corpus.write_file(&path, rng, TRAIL_START_SECS, events)?;
    Ok(corpus)
}
