//! The replay benchmark: `cargo bench -p trailwatch --bench replay`.
//!
//! Generates a deterministic CloudTrail file set laid out like a trail bucket (gzip, a realistic
//! mix of services and record sizes) plus a small and a big single file, then measures in one
//! run: gunzip alone, the plugin's parser built natively, the same parser inside wasmtime,
//! `trailwatch replay` end to end with one job and with every core, its peak memory on the small
//! and the big file, and what a user would otherwise run (`zcat | jq`, a Python script).
//! Markdown tables go to stdout, progress to stderr. Numbers compare only within one run.
//!
//! `TRAILWATCH_BENCH_EVENTS` sets the size of the file set (default 100 000 events); the big
//! file holds twice as many.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};
use trailwatch::runtime::bindings::types::ObjectMeta;
use trailwatch::runtime::{cache::CompileCache, Limits, PluginRuntime};
use trailwatch_plugin::{model::OpenOptions, reader::LogFile};

const DEFAULT_EVENTS: u64 = 100_000;
const SMALL_EVENTS: u64 = 1_000;
const SEED: u64 = 0x7472_6169_6c77_6174;
const RUNS: usize = 3;
const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
/// Seconds from 2024-01-01T00:00Z to 2024-03-04T00:00Z, where the generated trail starts.
const TRAIL_START_SECS: u64 = (31 + 29 + 3) * 86_400;

/// A small fixed-seed generator (xorshift64*): the same files on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }
    fn uuid(&mut self) -> String {
        let mut hex = |n| self.chars(b"0123456789abcdef", n);
        format!("{}-{}-4{}-a{}-{}", hex(8), hex(4), hex(3), hex(3), hex(12))
    }
}

/// A stable id for a name, so that a principal keeps its id across records.
fn stable_id(prefix: &str, name: &str) -> String {
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{prefix}{}", Rng(seed | 1).chars(UPPER, 17))
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const TOKEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `(month, day, hour, minute, second)` of `secs` after 2024-01-01T00:00Z (valid within 2024).
fn calendar(secs: u64) -> (u64, u64, u64, u64, u64) {
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
mod templates {
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
struct Kind {
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
const KINDS: [Kind; 9] = [
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

const AGENTS: [&str; 4] = [
    "aws-cli/2.15.19 Python/3.11.6 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/s3api.get-object",
    "Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.12.2 Botocore/1.34.54",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
];

const USERS: [&str; 4] = ["ci-deploy", "ops-admin", "svc-backup", "audit-reader"];
const ROLES: [&str; 4] = ["PlatformAdmin", "DataPipeline", "ReadOnly", "eks-node-role"];
const TARGET_ROLES: [&str; 3] = ["CrossAccountAudit", "DeployTarget", "lambda-exec"];
const BUCKETS: [&str; 3] = ["app-assets", "data-lake-raw", "backups"];
const FUNCTIONS: [&str; 3] = ["ingest-orders", "resize-images", "nightly-report"];
const NETWORKS: [&str; 3] = ["203.0.113", "198.51.100", "192.0.2"];

/// `errorCode` and `errorMessage` of the one API call in twenty that fails.
#[rustfmt::skip]
const ERRORS: [(&str, &str); 3] = [
    ("AccessDenied", "User is not authorized to perform this operation: no identity-based policy allows it"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("ThrottlingException", "Rate exceeded"),
];

/// Fills templates for one record: each `$name` is drawn once and reused.
struct Filler<'a> {
    rng: &'a mut Rng,
    kind: &'a Kind,
    account: &'a str,
    region: &'a str,
    secs: u64,
    drawn: HashMap<String, String>,
}

impl Filler<'_> {
    /// Appends `template` to `out` with its line breaks removed and its `$name`s filled.
    fn fill(&mut self, template: &str, out: &mut String) {
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

    fn get(&mut self, name: &str) -> String {
        if let Some(value) = self.drawn.get(name) {
            return value.clone();
        }
        let value = self.draw(name);
        self.drawn.insert(name.to_owned(), value.clone());
        value
    }

    fn word(&mut self, words: &[&str]) -> String {
        self.rng.pick(words).to_string()
    }

    fn expand(&mut self, template: &str) -> String {
        let mut out = String::new();
        self.fill(template, &mut out);
        out
    }

    /// A value for `$name`: fixed by the record's place, drawn, or derived from other values.
    fn draw(&mut self, name: &str) -> String {
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
    fn draw_generic(&mut self, name: &str) -> String {
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
fn kind_for(mut roll: u64) -> &'static Kind {
    for kind in &KINDS {
        if roll < kind.percent {
            return kind;
        }
        roll -= kind.percent;
    }
    &KINDS[0]
}

/// Draws one record of the mix into `out`.
fn write_record(out: &mut String, rng: &mut Rng, account: &str, region: &str, secs: u64) {
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
struct Corpus {
    /// What `replay` is given: the bucket directory or the single file.
    arg: PathBuf,
    files: Vec<PathBuf>,
    events: u64,
    json_bytes: u64,
    gz_bytes: u64,
}

impl Corpus {
    /// Adds a log file of `count` records from the 5-minute window starting at `window_secs`.
    fn write_file(&mut self, path: &Path, rng: &mut Rng, window_secs: u64, count: u64) -> anyhow::Result<()> {
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
fn log_path(dir: &Path, account: &str, region: &str, window_secs: u64, suffix: &str) -> PathBuf {
    let (mo, d, h, mi, _) = calendar(window_secs);
    let name = format!("{account}_CloudTrail_{region}_2024{mo:02}{d:02}T{h:02}{mi:02}Z_{suffix}.json.gz");
    dir.join(format!(
        "AWSLogs/{account}/CloudTrail/{region}/2024/{mo:02}/{d:02}/{name}"
    ))
}

/// A trail bucket: every account and region delivers a file every five minutes.
fn generate_bucket(dir: &Path, events: u64, rng: &mut Rng) -> anyhow::Result<Corpus> {
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

fn generate_single(dir: &Path, name: &str, events: u64, rng: &mut Rng) -> anyhow::Result<Corpus> {
    let path = log_path(dir, ACCOUNTS[0], REGIONS[0], TRAIL_START_SECS, name);
    let mut corpus = Corpus {
        arg: path.clone(),
        ..Corpus::default()
    };
    corpus.write_file(&path, rng, TRAIL_START_SECS, events)?;
    Ok(corpus)
}

/// Wall times of repeated runs, fastest first.
struct Timing(Vec<Duration>);

impl Timing {
    fn best(&self) -> f64 {
        self.0.first().map_or(f64::NAN, Duration::as_secs_f64)
    }
    fn median(&self) -> f64 {
        self.0.get(self.0.len() / 2).map_or(f64::NAN, Duration::as_secs_f64)
    }
}

type Counted = anyhow::Result<u64>;

/// Times `RUNS` runs of `run`; each must count `expected` (events, or bytes for gunzip).
fn measure(label: &str, expected: u64, mut run: impl FnMut() -> Counted) -> anyhow::Result<Timing> {
    let mut times = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        eprintln!("  {label}: run {i}/{RUNS}");
        let started = Instant::now();
        let seen = run()?;
        times.push(started.elapsed());
        if seen != expected {
            bail!("{label}: counted {seen}, expected {expected}");
        }
    }
    times.sort();
    Ok(Timing(times))
}

/// Files read into memory once, so that the in-process stages measure no disk I/O.
type Inputs = Vec<(String, Vec<u8>)>;

/// Decompressed bytes.
fn gunzip(inputs: &Inputs) -> Counted {
    let mut bytes = 0;
    for (_, gz) in inputs {
        bytes += std::io::copy(&mut MultiGzDecoder::new(&gz[..]), &mut std::io::sink())?;
    }
    Ok(bytes)
}

/// The plugin's parser built natively; returns the events and how many it flagged. Each file's
/// bytes are copied first, as the wasm path copies them into the plugin's memory.
fn parse_native(inputs: &Inputs) -> anyhow::Result<(u64, u64)> {
    let (mut events, mut flagged) = (0, 0);
    for (key, bytes) in inputs {
        let opened = LogFile::open(bytes.clone(), key, OpenOptions::default());
        let mut file = opened.map_err(|e| anyhow!("{key}: {e}"))?;
        loop {
            let batch = file.next_batch(512).map_err(|e| anyhow!("{key}: {e}"))?;
            if batch.is_empty() {
                break;
            }
            events += batch.len() as u64;
            flagged += batch.iter().filter(|e| !e.problems.is_empty()).count() as u64;
        }
    }
    Ok((events, flagged))
}

fn parse_wasm(runtime: &PluginRuntime, inputs: &Inputs) -> Counted {
    let mut events = 0;
    for (key, bytes) in inputs {
        let (key, size) = (key.clone(), bytes.len() as u64);
        let meta = ObjectMeta {
            key,
            size,
            last_modified_ms: None,
        };
        let read = runtime.read_file(bytes, &meta, |_| Ok(()));
        events += read.map_err(|(_, failure)| anyhow!("{}: {failure}", meta.key))?.events;
    }
    Ok(events)
}

/// Set to a file path, turns this binary into the helper that runs one child (its arguments) and
/// writes `<wall seconds> <peak RSS KiB>` there. Linux counts into a child's peak RSS the peak of
/// the address space it replaced at exec, which after vfork is the parent's: so the parent must
/// be a small fresh process, not the benchmark holding its data.
const HELPER_ENV: &str = "TRAILWATCH_BENCH_PEAK_TO";

fn helper(report: &Path) -> anyhow::Result<ExitCode> {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let (program, args) = args.split_first().context("the helper needs a command")?;
    let started = Instant::now();
    let child = Command::new(program).args(args).env_remove(HELPER_ENV).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child and not yet reaped (std reaps only in `wait`, never on drop);
    // both pointers are to live locals.
    while unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } != pid {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting for the child");
        }
    }
    // Linux reports ru_maxrss in KiB.
    std::fs::write(
        report,
        format!("{} {}", started.elapsed().as_secs_f64(), usage.ru_maxrss),
    )?;
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs `command` through the helper, output to /dev/null; returns its wall time in seconds and
/// its peak RSS in KiB.
fn run_child(command: &Command, scratch: &Path) -> anyhow::Result<(f64, u64)> {
    let (report, stderr) = (scratch.join("peak.txt"), scratch.join("stderr.txt"));
    let mut helper = Command::new(std::env::current_exe()?);
    helper
        .env(HELPER_ENV, &report)
        .arg(command.get_program())
        .args(command.get_args());
    helper.stdout(File::create("/dev/null")?).stderr(File::create(&stderr)?);
    let status = helper.status()?;
    if !status.success() {
        let said = std::fs::read_to_string(&stderr).unwrap_or_default();
        bail!("{command:?} failed ({status}):\n{said}");
    }
    let report = std::fs::read_to_string(&report)?;
    let (wall, peak) = report.split_once(' ').context("the helper's report")?;
    Ok((wall.parse()?, peak.parse()?))
}

/// How to start the release binary.
struct Cli {
    bin: PathBuf,
    plugin_dir: PathBuf,
    scratch: PathBuf,
}

impl Cli {
    /// `trailwatch replay` over `corpus`, NDJSON to /dev/null; checks the summary's counts.
    /// Returns the wall time in seconds and the peak RSS in KiB.
    fn replay(&self, corpus: &Corpus, jobs: usize) -> anyhow::Result<(f64, u64)> {
        let summary = self.scratch.join("summary.json");
        let mut command = Command::new(&self.bin);
        command.arg("--plugin-dir").arg(&self.plugin_dir);
        command.arg("--cache-dir").arg(self.scratch.join("cache"));
        command.args(["replay", "--no-progress", "--jobs", &jobs.to_string()]);
        command.arg("--summary-json").arg(&summary).arg(&corpus.arg);
        let run = run_child(&command, &self.scratch)?;
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
        let (events, flagged) = (&summary["events"], &summary["flagged_events"]);
        if events.as_u64() != Some(corpus.events) || flagged.as_u64() != Some(0) {
            bail!("replay saw {events} events ({flagged} flagged), not {}", corpus.events);
        }
        Ok(run)
    }
}

/// `zcat FILES | jq -c '.Records[]' > /dev/null`.
fn jq_baseline(corpus: &Corpus) -> Counted {
    let mut zcat = Command::new("zcat");
    let mut zcat = zcat.args(&corpus.files).stdout(Stdio::piped()).spawn()?;
    let mut jq = Command::new("jq");
    jq.args(["-c", ".Records[]"])
        .stdin(zcat.stdout.take().context("zcat's stdout")?);
    let jq = jq.stdout(File::create("/dev/null")?).status()?;
    if !zcat.wait()?.success() || !jq.success() {
        bail!("zcat | jq failed");
    }
    Ok(corpus.events)
}

const PYTHON: &str = r#"
import gzip, json, sys
count = 0
with open(sys.argv[1]) as paths, open("/dev/null", "w") as out:
    for path in paths:
        with gzip.open(path.rstrip("\n"), "rb") as f:
            doc = json.load(f)
        for record in doc["Records"]:
            out.write(json.dumps(record))
            out.write("\n")
            count += 1
print(count)
"#;

/// The Python script over the files listed in `list`; returns the records it wrote.
fn python_baseline(script: &Path, list: &Path) -> Counted {
    let out = Command::new("python3")
        .arg(script)
        .arg(list)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("the Python baseline failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// The stages of the throughput table, in the order they run; `N` is the number of cores.
const STAGES: [&str; 7] = [
    "gunzip only (flate2, native)",
    "plugin parser built natively (`LogFile::next_batch`)",
    "plugin in wasmtime, in-process (`PluginRuntime::read_file`)",
    "`trailwatch replay --jobs 1`, NDJSON to /dev/null",
    "`trailwatch replay --jobs N`, NDJSON to /dev/null",
    "`zcat FILES \\| jq -c '.Records[]'` (two processes)",
    "Python: `gzip.open`, `json.load`, `json.dumps` per record",
];
const NATIVE: usize = 1;
const WASM: usize = 2;
const JOBS_1: usize = 3;
const JOBS_N: usize = 4;
const JQ: usize = 5;
const PYTHON_STAGE: usize = 6;

/// Timings of the stages in `STAGES` (`None`: the tool is not installed), and the peak RSS in
/// KiB of `replay --jobs 1` and `--jobs N` over the file set.
type Throughput = ([Option<Timing>; 7], [u64; 2]);

/// Measures every stage over the file set.
fn throughput(set: &Corpus, cli: &Cli, plugin: &Path, cores: usize) -> anyhow::Result<Throughput> {
    let read = |p: &PathBuf| Ok((p.display().to_string(), std::fs::read(p)?));
    let inputs: Inputs = set.files.iter().map(read).collect::<anyhow::Result<_>>()?;
    let (_, flagged) = parse_native(&inputs)?;
    if flagged > 0 {
        bail!("the parser flagged {flagged} generated records: the generator writes what it should not");
    }
    let gunzip = measure("gunzip", set.json_bytes, || gunzip(&inputs))?;
    let native = measure("native parser", set.events, || Ok(parse_native(&inputs)?.0))?;
    let runtime = PluginRuntime::from_file(plugin, &CompileCache::disabled(), Limits::default())?;
    let wasm = measure("plugin in wasmtime", set.events, || parse_wasm(&runtime, &inputs))?;
    drop((runtime, inputs));

    let mut peaks = [0; 2];
    let mut replay = |i: usize, jobs: usize| {
        measure(&format!("replay --jobs {jobs}"), set.events, || {
            peaks[i] = peaks[i].max(cli.replay(set, jobs)?.1);
            Ok(set.events)
        })
    };
    let (one, all) = (replay(0, 1)?, replay(1, cores)?);
    let installed = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    let jq = if installed("jq") && installed("zcat") {
        Some(measure("zcat | jq", set.events, || jq_baseline(set))?)
    } else {
        None
    };
    let (script, list) = (cli.scratch.join("baseline.py"), cli.scratch.join("files.txt"));
    std::fs::write(&script, PYTHON)?;
    let names: String = set.files.iter().map(|p| format!("{}\n", p.display())).collect();
    std::fs::write(&list, names)?;
    let python = measure("python", set.events, || python_baseline(&script, &list))?;
    let timings = [
        Some(gunzip),
        Some(native),
        Some(wasm),
        Some(one),
        Some(all),
        jq,
        Some(python),
    ];
    Ok((timings, peaks))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn print_throughput(set: &Corpus, timings: &[Option<Timing>; 7], cores: usize) {
    let (n, files, gz, json) = (set.events, set.files.len(), mb(set.gz_bytes), mb(set.json_bytes));
    let per_record = set.json_bytes / n.max(1);
    println!("File set: {n} events in {files} files, {gz:.1} MB gzip, {json:.1} MB JSON ({per_record} B/record);");
    println!("{cores} cores; best and median of {RUNS} runs; MB/s of decompressed JSON.\n");
    println!("| Stage | Threads | Best (s) | Median (s) | Events/s | MB/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, timing) in timings.iter().enumerate() {
        let stage = STAGES[i].replace("--jobs N", &format!("--jobs {cores}"));
        // `zcat | jq` is two processes.
        let threads = [1, 1, 1, 1, cores, 2, 1][i];
        match timing {
            Some(t) => {
                let (best, median, rate) = (t.best(), t.median(), n as f64 / t.best());
                let row = format!("| {stage} | {threads} | {best:.3} | {median:.3} | {rate:.0}");
                println!("{row} | {:.0} |", json / best);
            }
            None => println!("| {stage} | {threads} | – | – | not installed | – |"),
        }
    }
    // How many times faster stage `a` is than stage `b`, from their best runs.
    let ratio = |a: usize, b: usize| match (&timings[a], &timings[b]) {
        (Some(a), Some(b)) => format!("{:.2}", b.best() / a.best()),
        _ => "–".into(),
    };
    println!();
    println!("- wasm / native, same parser: {}", ratio(WASM, NATIVE));
    println!(
        "- `replay --jobs {cores}` / `replay --jobs 1`: {}",
        ratio(JOBS_N, JOBS_1)
    );
    println!("- `replay --jobs 1` / `zcat | jq`: {}", ratio(JOBS_1, JQ));
    println!("- `replay --jobs 1` / Python: {}", ratio(JOBS_1, PYTHON_STAGE));
}

/// A line of the memory table.
fn print_memory_row(what: &str, jobs: usize, corpus: &Corpus, wall: Option<f64>, peak_kib: u64) {
    let (events, gz, json) = (corpus.events, mb(corpus.gz_bytes), mb(corpus.json_bytes));
    let wall = wall.map_or("see above".to_owned(), |w| format!("{w:.2}"));
    let rss = peak_kib as f64 / 1024.0;
    println!("| {what} | {jobs} | {events} | {gz:.1} | {json:.1} | {rss:.0} | {wall} |");
}

fn main() -> anyhow::Result<ExitCode> {
    if let Some(report) = std::env::var_os(HELPER_ENV) {
        return helper(Path::new(&report));
    }
    let scale = std::env::var("TRAILWATCH_BENCH_EVENTS").ok();
    let events = match &scale {
        Some(v) => v
            .parse()
            .with_context(|| format!("TRAILWATCH_BENCH_EVENTS={v:?}: expected a number"))?,
        None => DEFAULT_EVENTS,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let plugin = plugin_dir.join(format!("trailwatch-core-{}.wasm", trailwatch_plugin::VERSION));
    if !plugin.is_file() {
        bail!(
            "{} is missing: build it with `cargo run -p xtask -- plugins`",
            plugin.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let scratch = tmp.path().to_owned();
    let cli = Cli {
        bin: env!("CARGO_BIN_EXE_trailwatch").into(),
        plugin_dir,
        scratch,
    };

    eprintln!(
        "generating {events} events and a file of {} in {}",
        2 * events,
        tmp.path().display()
    );
    let mut rng = Rng(SEED);
    let set = generate_bucket(&tmp.path().join("bucket"), events, &mut rng)?;
    let small = generate_single(&tmp.path().join("small"), "small", SMALL_EVENTS, &mut rng)?;
    let big = generate_single(&tmp.path().join("big"), "big", 2 * events, &mut rng)?;

    // The first run compiles the plugin into the cache, as a user's first run does.
    let (cold_start, _) = cli.replay(&small, 1)?;
    let (timings, peaks) = throughput(&set, &cli, &plugin, cores)?;
    eprintln!("  peak memory: small file, big file");
    let (small_wall, small_peak) = cli.replay(&small, 1)?;
    let (big_wall, big_peak) = cli.replay(&big, 1)?;

    let env = scale
        .map(|v| format!("TRAILWATCH_BENCH_EVENTS={v} "))
        .unwrap_or_default();
    println!("Command: `{env}cargo bench -p trailwatch --bench replay`\n");
    print_throughput(&set, &timings, cores);
    println!("- `replay` times include starting the process and loading the cached compiled plugin;");
    println!(
        "  the first run, which compiled it, took {:.2} s on the small file.\n",
        cold_start
    );
    println!("| `trailwatch replay` over | Jobs | Events | MB gzip | MB JSON | Peak RSS (MiB) | Wall (s) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    print_memory_row("small file", 1, &small, Some(small_wall), small_peak);
    print_memory_row("big file", 1, &big, Some(big_wall), big_peak);
    let files = format!("file set, {} files", set.files.len());
    print_memory_row(&files, 1, &set, None, peaks[0]);
    print_memory_row(&files, cores, &set, None, peaks[1]);
    Ok(ExitCode::SUCCESS)
}
