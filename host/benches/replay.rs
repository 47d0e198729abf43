//! The replay benchmark: `cargo bench -p trailwatch --bench replay`.
//!
//! Generates a deterministic CloudTrail file set laid out like a trail bucket (gzip, a realistic
//! mix of services and record sizes) plus one small and one big single file, then measures in
//! one run: gunzip alone, the plugin's parser built natively, the same parser inside wasmtime,
//! `trailwatch replay` end to end with one job and with every core, its peak memory on the small
//! and the big file, and what a user would otherwise run (`zcat | jq`, a Python script).
//! Markdown tables go to stdout, progress to stderr. Numbers compare only within one run.
//!
//! `TRAILWATCH_BENCH_EVENTS` sets the size of the file set (default 100 000 events); the big
//! file holds twice as many.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};
use serde_json::{json, Value};
use trailwatch::runtime::bindings::types::ObjectMeta;
use trailwatch::runtime::{cache::CompileCache, Limits, PluginRuntime};
use trailwatch_plugin::{model::OpenOptions, reader::LogFile};

const DEFAULT_EVENTS: u64 = 100_000;
const SEED: u64 = 0x7472_6169_6c77_6174;
const RUNS: usize = 3;
const SMALL_EVENTS: u64 = 1_000;
const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
/// Seconds from 2024-01-01T00:00Z to 2024-03-04T00:00Z, where the generated trail starts.
const TRAIL_START_SECS: u64 = (31 + 29 + 3) * 86_400;

/// A small, fixed-seed generator (xorshift64*): the same files on every machine.
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
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }
    fn upper(&mut self, len: usize) -> String {
        self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", len)
    }
    fn hex(&mut self, len: usize) -> String {
        self.chars(b"0123456789abcdef", len)
    }
    fn b64(&mut self, len: usize) -> String {
        self.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", len)
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        )
    }
    fn ip(&mut self) -> String {
        let net = *self.pick(&["203.0.113", "198.51.100", "192.0.2"]);
        format!("{net}.{}", self.range(1, 254))
    }
}

/// A stable id for a name, so the same principal keeps the same id across records.
fn stable_id(prefix: &str, name: &str) -> String {
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{prefix}{}", Rng(seed | 1).upper(17))
}

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

fn event_time(secs: u64) -> String {
    let (mo, d, h, mi, s) = calendar(secs);
    format!("2024-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Where records are made: one account and region, at one time.
struct Trail<'a> {
    rng: &'a mut Rng,
    account: &'a str,
    region: &'a str,
    secs: u64,
}

impl Trail<'_> {
    fn iam_user(&mut self) -> Value {
        let name = *self.rng.pick(&["ci-deploy", "ops-admin", "svc-backup", "audit-reader"]);
        json!({"type": "IAMUser", "principalId": stable_id("AIDA", name), "accountId": self.account,
            "arn": format!("arn:aws:iam::{}:user/{name}", self.account),
            "accessKeyId": stable_id("AKIA", name), "userName": name})
    }

    fn assumed_role(&mut self) -> Value {
        let role = *self.rng.pick(&[
            "PlatformAdmin",
            "DataPipeline",
            "ReadOnly",
            "eks-node-role",
            "lambda-exec",
        ]);
        let session = format!("{}-{}", role.to_lowercase(), self.rng.range(1000, 1200));
        let role_id = stable_id("AROA", role);
        json!({"type": "AssumedRole", "principalId": format!("{role_id}:{session}"),
            "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", self.account),
            "accountId": self.account, "accessKeyId": format!("ASIA{}", self.rng.upper(16)),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_id, "accountId": self.account,
                    "arn": format!("arn:aws:iam::{}:role/{role}", self.account), "userName": role},
                "webIdFederationData": {},
                "attributes": {"creationDate": event_time(self.secs - 900), "mfaAuthenticated": "false"}}})
    }

    fn service(&self, service: &str) -> Value {
        json!({"type": "AWSService", "invokedBy": service})
    }

    /// A person, a role or a service, in the proportions a busy account has.
    fn caller(&mut self, service: &str) -> Value {
        match self.rng.next() % 10 {
            0..=1 => self.iam_user(),
            2..=7 => self.assumed_role(),
            _ => self.service(service),
        }
    }

    fn user_agent(&mut self, command: &str) -> String {
        match self.rng.next() % 4 {
            0 => format!("aws-cli/2.15.19 Python/3.11.6 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/{command}"),
            1 => "Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.54".into(),
            2 => "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.39.1 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.8".into(),
            _ => "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36".into(),
        }
    }

    fn tls(&self, service: &str) -> Value {
        json!({"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": format!("{service}.{}.amazonaws.com", self.region)})
    }

    /// The fields every API call has.
    fn api_call(&mut self, source: &str, name: &str, identity: Value, read_only: bool) -> Value {
        let service = source.trim_end_matches(".amazonaws.com");
        let (ip, agent) = match identity["type"].as_str() {
            Some("AWSService") => (source.to_owned(), source.to_owned()),
            _ => (
                self.rng.ip(),
                self.user_agent(&format!("{service}.{}", name.to_lowercase())),
            ),
        };
        json!({"eventVersion": "1.09", "userIdentity": identity, "eventTime": event_time(self.secs),
            "eventSource": source, "eventName": name, "awsRegion": self.region,
            "sourceIPAddress": ip, "userAgent": agent, "requestParameters": null,
            "responseElements": null, "requestID": self.rng.uuid(), "eventID": self.rng.uuid(),
            "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": true,
            "recipientAccountId": self.account, "eventCategory": "Management",
            "tlsDetails": self.tls(service)})
    }

    fn s3_object(&mut self, get: bool) -> Value {
        let identity = self.caller("s3.amazonaws.com");
        let mut r = self.api_call(
            "s3.amazonaws.com",
            if get { "GetObject" } else { "PutObject" },
            identity,
            get,
        );
        let bucket = format!(
            "{}-{}",
            self.rng.pick(&["app-assets", "data-lake-raw", "backups"]),
            self.account
        );
        let key = format!(
            "year=2024/month=03/part-{:05}-{}.snappy.parquet",
            self.rng.range(0, 99_999),
            self.rng.uuid()
        );
        let bytes = self.rng.range(1_000, 50_000_000);
        r["requestID"] = self.rng.upper(16).into();
        r["requestParameters"] = json!({"bucketName": bucket, "key": key,
            "Host": format!("{bucket}.s3.{}.amazonaws.com", self.region)});
        if !get {
            r["responseElements"] = json!({"x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": format!("arn:aws:kms:{}:{}:key/{}", self.region, self.account, self.rng.uuid()),
                "x-amz-version-id": self.rng.b64(32)});
        }
        r["additionalEventData"] = json!({"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": if get { 0 } else { bytes }, "bytesTransferredOut": if get { bytes } else { 0 },
            "AuthenticationMethod": "AuthHeader", "x-amz-id-2": self.rng.b64(76)});
        r["resources"] = json!([{"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
            {"accountId": self.account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}]);
        r["managementEvent"] = false.into();
        r["eventCategory"] = "Data".into();
        r
    }

    fn ec2_describe(&mut self) -> Value {
        let identity = self.caller("autoscaling.amazonaws.com");
        let mut r = self.api_call("ec2.amazonaws.com", "DescribeInstances", identity, true);
        r["requestParameters"] = json!({"instancesSet": {}, "filterSet": {"items": [
            {"name": "tag:Environment", "valueSet": {"items": [{"value": "prod"}]}},
            {"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}, {"value": "pending"}]}}]}});
        r
    }

    fn ec2_run(&mut self) -> Value {
        let identity = self.assumed_role();
        let mut r = self.api_call("ec2.amazonaws.com", "RunInstances", identity, false);
        let (subnet, vpc) = (
            format!("subnet-{}", self.rng.hex(17)),
            format!("vpc-{}", self.rng.hex(17)),
        );
        let ip = format!("10.0.{}.{}", self.rng.range(0, 255), self.rng.range(1, 254));
        let group = json!({"items": [{"groupId": format!("sg-{}", self.rng.hex(17)), "groupName": "web-tier"}]});
        let eni = json!({"networkInterfaceId": format!("eni-{}", self.rng.hex(17)), "subnetId": subnet, "vpcId": vpc,
            "ownerId": self.account, "status": "in-use", "macAddress": "0a:1b:2c:3d:4e:5f", "privateIpAddress": ip,
            "sourceDestCheck": true, "interfaceType": "interface", "groupSet": group, "ipv6AddressesSet": {},
            "attachment": {"attachmentId": format!("eni-attach-{}", self.rng.hex(17)), "deviceIndex": 0,
                "status": "attaching", "attachTime": self.secs * 1000, "deleteOnTermination": true},
            "privateIpAddressesSet": {"item": [{"privateIpAddress": ip, "primary": true}]}, "tagSet": {}});
        let mut instance = json!({"instanceId": format!("i-{}", self.rng.hex(17)), "imageId": "ami-0c101f26f147fa7fd",
            "instanceState": {"code": 0, "name": "pending"}, "amiLaunchIndex": 0, "productCodes": {},
            "privateDnsName": format!("ip-{}.ec2.internal", ip.replace('.', "-")), "instanceType": "m6i.large",
            "launchTime": self.secs * 1000, "placement": {"availabilityZone": format!("{}a", self.region), "tenancy": "default"},
            "monitoring": {"state": "disabled"}, "subnetId": subnet, "vpcId": vpc, "privateIpAddress": ip,
            "stateReason": {"code": "pending", "message": "pending"}, "architecture": "x86_64", "rootDeviceType": "ebs",
            "rootDeviceName": "/dev/xvda", "blockDeviceMapping": {}, "virtualizationType": "hvm", "hypervisor": "xen",
            "groupSet": group, "sourceDestCheck": true, "networkInterfaceSet": {"items": [eni]}, "ebsOptimized": true,
            "enaSupport": true, "cpuOptions": {"coreCount": 1, "threadsPerCore": 2}, "enclaveOptions": {"enabled": false}});
        instance["metadataOptions"] = json!({"state": "pending", "httpTokens": "required", "httpPutResponseHopLimit": 2,
            "httpEndpoint": "enabled", "httpProtocolIpv4": "enabled", "instanceMetadataTags": "disabled"});
        r["requestParameters"] = json!({"instanceType": "m6i.large", "blockDeviceMapping": {},
            "instancesSet": {"items": [{"imageId": "ami-0c101f26f147fa7fd", "minCount": 1, "maxCount": 1}]},
            "monitoring": {"enabled": false}, "disableApiTermination": false, "clientToken": self.rng.uuid(),
            "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [{"key": "Name", "value": "web"}]}]}});
        r["responseElements"] = json!({"requestId": self.rng.uuid(), "reservationId": format!("r-{}", self.rng.hex(17)),
            "ownerId": self.account, "groupSet": {}, "instancesSet": {"items": [instance]}});
        r
    }

    fn iam(&mut self) -> Value {
        let identity = self.caller("cloudformation.amazonaws.com");
        let role = *self.rng.pick(&["lambda-exec", "DataPipeline", "eks-node-role"]);
        let arn = format!("arn:aws:iam::{}:role/{role}", self.account);
        let name = *self
            .rng
            .pick(&["GetRole", "ListAttachedRolePolicies", "AttachRolePolicy", "CreateRole"]);
        let mut r = self.api_call("iam.amazonaws.com", name, identity, name.starts_with(['G', 'L']));
        r["awsRegion"] = "us-east-1".into();
        r["requestParameters"] = match name {
            "AttachRolePolicy" => {
                json!({"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"})
            }
            _ => json!({"roleName": role}),
        };
        if name == "CreateRole" {
            let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
            r["requestParameters"]["assumeRolePolicyDocument"] = policy.into();
            r["responseElements"] = json!({"role": {"path": "/", "roleName": role, "roleId": stable_id("AROA", role),
                "arn": arn, "createDate": format!("Mar 4, 2024, {}:00:00 AM", self.rng.range(1, 11)),
                "assumeRolePolicyDocument": policy.replace('"', "%22")}});
        }
        r
    }

    fn assume_role(&mut self) -> Value {
        let identity = match self.rng.next() % 3 {
            0 => self.service("lambda.amazonaws.com"),
            _ => self.assumed_role(),
        };
        let mut r = self.api_call("sts.amazonaws.com", "AssumeRole", identity, true);
        let role = *self.rng.pick(&["CrossAccountAudit", "DeployTarget", "lambda-exec"]);
        let session = format!("session-{}", self.rng.hex(8));
        let role_arn = format!("arn:aws:iam::{}:role/{role}", self.account);
        r["requestParameters"] = json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600});
        r["responseElements"] = json!({"credentials": {"accessKeyId": format!("ASIA{}", self.rng.upper(16)),
                "sessionToken": format!("IQoJb3JpZ2luX2Vj{}", self.rng.b64(240)), "expiration": "Mar 4, 2024, 11:00:00 AM"},
            "assumedRoleUser": {"assumedRoleId": format!("{}:{session}", stable_id("AROA", role)),
                "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", self.account)}});
        r["resources"] = json!([{"accountId": self.account, "type": "AWS::IAM::Role", "ARN": role_arn}]);
        r["sharedEventID"] = self.rng.uuid().into();
        r
    }

    fn console_login(&mut self) -> Value {
        let identity = self.iam_user();
        let mut r = self.api_call("signin.amazonaws.com", "ConsoleLogin", identity, false);
        let ok = self.rng.chance(90);
        r["eventType"] = "AwsConsoleSignIn".into();
        r["responseElements"] = json!({"ConsoleLogin": if ok { "Success" } else { "Failure" }});
        r["additionalEventData"] = json!({"LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
            "MobileVersion": "No", "MFAUsed": "Yes"});
        r.as_object_mut().map(|o| o.remove("requestID"));
        if !ok {
            r["errorMessage"] = "Failed authentication".into();
        }
        r
    }

    fn lambda_invoke(&mut self) -> Value {
        let identity = match self.rng.next() % 2 {
            0 => self.service("events.amazonaws.com"),
            _ => self.assumed_role(),
        };
        let mut r = self.api_call("lambda.amazonaws.com", "Invoke", identity, false);
        let function = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region,
            self.account,
            self.rng.pick(&["ingest-orders", "resize-images", "nightly-report"])
        );
        r["requestParameters"] = json!({"functionName": function, "invocationType": "Event",
            "sourceArn": format!("arn:aws:events:{}:{}:rule/every-5-minutes", self.region, self.account)});
        r["additionalEventData"] = json!({"functionVersion": format!("{function}:$LATEST")});
        r["resources"] = json!([{"accountId": self.account, "type": "AWS::Lambda::Function", "ARN": function}]);
        r["managementEvent"] = false.into();
        r["eventCategory"] = "Data".into();
        r
    }

    fn kms_decrypt(&mut self) -> Value {
        let identity = self.caller("secretsmanager.amazonaws.com");
        let mut r = self.api_call("kms.amazonaws.com", "Decrypt", identity, true);
        let key = format!("arn:aws:kms:{}:{}:key/{}", self.region, self.account, self.rng.uuid());
        r["requestParameters"] = json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {
            "SecretARN": format!("arn:aws:secretsmanager:{}:{}:secret:prod/db-{}", self.region, self.account, self.rng.b64(6)),
            "SecretVersionId": self.rng.uuid()}});
        r["resources"] = json!([{"accountId": self.account, "type": "AWS::KMS::Key", "ARN": key}]);
        r
    }

    fn service_event(&mut self) -> Value {
        let key = self.rng.uuid();
        json!({"eventVersion": "1.09", "userIdentity": {"accountId": self.account, "invokedBy": "kms.amazonaws.com"},
            "eventTime": event_time(self.secs), "eventSource": "kms.amazonaws.com", "eventName": "RotateKey",
            "awsRegion": self.region, "sourceIPAddress": "kms.amazonaws.com", "userAgent": "kms.amazonaws.com",
            "requestParameters": null, "responseElements": null, "eventID": self.rng.uuid(), "readOnly": false,
            "resources": [{"accountId": self.account, "type": "AWS::KMS::Key",
                "ARN": format!("arn:aws:kms:{}:{}:key/{key}", self.region, self.account)}],
            "eventType": "AwsServiceEvent", "managementEvent": true, "recipientAccountId": self.account,
            "serviceEventDetails": {"keyId": key}, "eventCategory": "Management"})
    }

    /// One record of the mix; about one API call in twenty is refused.
    fn record(&mut self) -> Value {
        let mut r = match self.rng.next() % 100 {
            0..=24 => self.s3_object(true),
            25..=34 => self.s3_object(false),
            35..=46 => self.ec2_describe(),
            47..=49 => self.ec2_run(),
            50..=57 => self.iam(),
            58..=69 => self.assume_role(),
            70..=71 => self.console_login(),
            72..=79 => self.lambda_invoke(),
            80..=96 => self.kms_decrypt(),
            _ => self.service_event(),
        };
        if r["eventType"] == "AwsApiCall" && self.rng.chance(5) {
            let (code, message) = *self.rng.pick(&[
                (
                    "AccessDenied",
                    "User is not authorized to perform this operation because no identity-based policy allows it",
                ),
                (
                    "Client.UnauthorizedOperation",
                    "You are not authorized to perform this operation.",
                ),
                ("ThrottlingException", "Rate exceeded"),
            ]);
            r["errorCode"] = code.into();
            r["errorMessage"] = message.into();
            r["responseElements"] = Value::Null;
        }
        r
    }
}

/// The order CloudTrail writes a record's top-level keys in (`json!` sorts them).
const KEY_ORDER: [&str; 24] = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "sharedEventID",
    "serviceEventDetails",
    "eventCategory",
    "tlsDetails",
];

fn write_record(out: &mut Vec<u8>, record: &Value) -> anyhow::Result<()> {
    let Value::Object(map) = record else {
        bail!("a record must be an object")
    };
    out.push(b'{');
    let mut written = 0;
    for key in KEY_ORDER {
        if let Some(value) = map.get(key) {
            if written > 0 {
                out.push(b',');
            }
            write!(out, "\"{key}\":")?;
            serde_json::to_writer(&mut *out, value)?;
            written += 1;
        }
    }
    if written != map.len() {
        bail!(
            "a generated record has a key missing from KEY_ORDER: {:?}",
            map.keys().collect::<Vec<_>>()
        );
    }
    out.push(b'}');
    Ok(())
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

/// Writes one log file of `count` records in the 5-minute window starting at `window_secs`.
fn write_log_file(
    path: &Path,
    rng: &mut Rng,
    account: &str,
    region: &str,
    window_secs: u64,
    count: u64,
    corpus: &mut Corpus,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().context("a log file path has a directory")?)?;
    let mut gz = GzEncoder::new(BufWriter::new(File::create(path)?), Compression::default());
    let mut buf = Vec::with_capacity(8 << 10);
    buf.extend_from_slice(b"{\"Records\":[");
    for i in 0..count {
        if i > 0 {
            buf.push(b',');
        }
        let secs = window_secs + rng.range(0, 299);
        let record = Trail {
            rng: &mut *rng,
            account,
            region,
            secs,
        }
        .record();
        write_record(&mut buf, &record)?;
        corpus.json_bytes += buf.len() as u64;
        gz.write_all(&buf)?;
        buf.clear();
    }
    gz.write_all(b"]}")?;
    corpus.json_bytes += 2;
    gz.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all().ok();
    corpus.events += count;
    corpus.gz_bytes += std::fs::metadata(path)?.len();
    corpus.files.push(path.to_owned());
    Ok(())
}

/// A trail bucket: `AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<stamp>_<rand>.json.gz`.
fn generate_bucket(dir: &Path, events: u64, rng: &mut Rng) -> anyhow::Result<Corpus> {
    let mut corpus = Corpus {
        arg: dir.to_owned(),
        ..Corpus::default()
    };
    let mut n = 0_u64;
    while corpus.events < events {
        let (account, region) = (ACCOUNTS[n as usize % 2], REGIONS[n as usize / 2 % 3]);
        let window = TRAIL_START_SECS + n / 6 * 300;
        let (mo, d, h, mi, _) = calendar(window);
        let name = format!(
            "{account}_CloudTrail_{region}_2024{mo:02}{d:02}T{h:02}{mi:02}Z_{}.json.gz",
            rng.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 16)
        );
        let path = dir.join(format!(
            "AWSLogs/{account}/CloudTrail/{region}/2024/{mo:02}/{d:02}/{name}"
        ));
        let count = rng.range(100, 1000);
        write_log_file(&path, rng, account, region, window, count, &mut corpus)?;
        n += 1;
    }
    corpus.files.sort();
    Ok(corpus)
}

fn generate_single(path: &Path, events: u64, rng: &mut Rng) -> anyhow::Result<Corpus> {
    let mut corpus = Corpus {
        arg: path.to_owned(),
        ..Corpus::default()
    };
    write_log_file(
        path,
        rng,
        ACCOUNTS[0],
        REGIONS[0],
        TRAIL_START_SECS,
        events,
        &mut corpus,
    )?;
    Ok(corpus)
}

/// Wall times of repeated runs.
struct Timing(Vec<Duration>);

impl Timing {
    fn best(&self) -> f64 {
        self.0.iter().min().map_or(f64::NAN, Duration::as_secs_f64)
    }
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        v.get(v.len() / 2).map_or(f64::NAN, Duration::as_secs_f64)
    }
}

/// Runs `run` `RUNS` times on a fresh `prepare()` (not timed); each run must see `events`.
fn measure<P>(
    label: &str,
    events: u64,
    mut prepare: impl FnMut() -> P,
    mut run: impl FnMut(P) -> anyhow::Result<u64>,
) -> anyhow::Result<Timing> {
    let mut times = Vec::with_capacity(RUNS);
    for i in 0..RUNS {
        eprintln!("  {label}: run {}/{RUNS}", i + 1);
        let input = prepare();
        let started = Instant::now();
        let seen = run(input)?;
        times.push(started.elapsed());
        if seen != events {
            bail!("{label}: saw {seen} events, expected {events}");
        }
    }
    Ok(Timing(times))
}

fn gunzip(inputs: &[(String, Vec<u8>)]) -> anyhow::Result<u64> {
    let mut bytes = 0;
    let mut buf = vec![0; 256 << 10];
    for (_, gz) in inputs {
        let mut decoder = MultiGzDecoder::new(&gz[..]);
        loop {
            match decoder.read(&mut buf)? {
                0 => break,
                n => bytes += n as u64,
            }
        }
    }
    Ok(bytes)
}

/// The plugin's parser built natively; returns the events and how many the parser flagged.
fn parse_native(inputs: Vec<(String, Vec<u8>)>) -> anyhow::Result<(u64, u64)> {
    let (mut events, mut flagged) = (0, 0);
    for (key, bytes) in inputs {
        let mut file = LogFile::open(bytes, &key, OpenOptions::default()).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        loop {
            let batch = file.next_batch(512).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
            if batch.is_empty() {
                break;
            }
            events += batch.len() as u64;
            flagged += batch.iter().filter(|e| !e.problems.is_empty()).count() as u64;
        }
    }
    Ok((events, flagged))
}

fn parse_wasm(runtime: &PluginRuntime, inputs: &[(String, Vec<u8>)]) -> anyhow::Result<u64> {
    let mut events = 0;
    for (key, bytes) in inputs {
        let meta = ObjectMeta {
            key: key.clone(),
            size: bytes.len() as u64,
            last_modified_ms: None,
        };
        let report = runtime
            .read_file(bytes, &meta, |_| Ok(()))
            .map_err(|(_, failure)| anyhow::anyhow!("{key}: {failure}"))?;
        events += report.events;
    }
    Ok(events)
}

/// One finished child: wall time, peak resident memory and exit code.
struct ChildRun {
    wall: Duration,
    peak_rss_kib: u64,
    code: Option<i32>,
}

/// Runs `command` to its end and reads its peak RSS from `wait4`: exact, unlike polling /proc.
fn run_child(command: &mut Command) -> anyhow::Result<ChildRun> {
    let started = Instant::now();
    let child = command.spawn().with_context(|| format!("starting {command:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std only reaps in `wait`, never on drop);
        // both pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting for the child");
        }
    }
    let wall = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Linux reports ru_maxrss in KiB.
    Ok(ChildRun {
        wall,
        peak_rss_kib: usage.ru_maxrss as u64,
        code,
    })
}

/// How to start the release binary.
struct Cli {
    bin: PathBuf,
    plugin_dir: PathBuf,
    cache_dir: PathBuf,
    scratch: PathBuf,
}

impl Cli {
    /// `trailwatch replay` over `corpus`, NDJSON to /dev/null; checks the summary's event count.
    fn replay(&self, corpus: &Corpus, jobs: usize) -> anyhow::Result<ChildRun> {
        let (summary, stderr) = (self.scratch.join("summary.json"), self.scratch.join("stderr.txt"));
        let run = run_child(
            Command::new(&self.bin)
                .arg("--plugin-dir")
                .arg(&self.plugin_dir)
                .arg("--cache-dir")
                .arg(&self.cache_dir)
                .args(["replay", "--no-progress", "--jobs", &jobs.to_string(), "--summary-json"])
                .arg(&summary)
                .arg(&corpus.arg)
                .stdout(File::create("/dev/null")?)
                .stderr(File::create(&stderr)?),
        )?;
        if run.code != Some(0) {
            let said = std::fs::read_to_string(&stderr).unwrap_or_default();
            bail!("trailwatch replay exited with {:?}:\n{said}", run.code);
        }
        let summary: Value = serde_json::from_slice(&std::fs::read(&summary)?)?;
        if summary["events"].as_u64() != Some(corpus.events) || summary["flagged_events"].as_u64() != Some(0) {
            bail!(
                "trailwatch replay saw {} events ({} flagged), expected {}",
                summary["events"],
                summary["flagged_events"],
                corpus.events
            );
        }
        Ok(run)
    }
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `zcat FILES | jq -c '.Records[]' > /dev/null`.
fn jq_baseline(corpus: &Corpus) -> anyhow::Result<u64> {
    let mut zcat = Command::new("zcat")
        .args(&corpus.files)
        .stdout(Stdio::piped())
        .spawn()?;
    let pipe = zcat.stdout.take().context("zcat's stdout")?;
    let jq = Command::new("jq")
        .args(["-c", ".Records[]"])
        .stdin(pipe)
        .stdout(File::create("/dev/null")?)
        .status()?;
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

fn python_baseline(script: &Path, list: &Path) -> anyhow::Result<u64> {
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

/// One line of the throughput table.
struct Row {
    stage: String,
    threads: usize,
    timing: Option<Timing>,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn print_throughput(set: &Corpus, rows: &[Row]) {
    println!("| Stage | Threads | Best (s) | Median (s) | Events/s | MB/s of JSON |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        match &row.timing {
            Some(t) => println!(
                "| {} | {} | {:.3} | {:.3} | {:.0} | {:.0} |",
                row.stage,
                row.threads,
                t.best(),
                t.median(),
                set.events as f64 / t.best(),
                mb(set.json_bytes) / t.best()
            ),
            None => println!(
                "| {} | {} | – | – | not run (not on PATH) | – |",
                row.stage, row.threads
            ),
        }
    }
}

/// Events per second of the row named `stage`, from its best run.
fn rate(rows: &[Row], set: &Corpus, stage: &str) -> Option<f64> {
    let row = rows.iter().find(|r| r.stage.starts_with(stage))?;
    Some(set.events as f64 / row.timing.as_ref()?.best())
}

fn main() -> anyhow::Result<()> {
    let events = match std::env::var("TRAILWATCH_BENCH_EVENTS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("TRAILWATCH_BENCH_EVENTS={v:?}: expected a number of events"))?,
        Err(_) => DEFAULT_EVENTS,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the host crate is in a workspace")?;
    let plugin_dir = workspace.join("plugins");
    let plugin = plugin_dir.join(format!("trailwatch-core-{}.wasm", trailwatch_plugin::VERSION));
    if !plugin.is_file() {
        bail!(
            "{} is missing: build the plugin first with `cargo run -p xtask -- plugins`",
            plugin.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let cli = Cli {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_trailwatch")),
        plugin_dir,
        cache_dir: tmp.path().join("cache"),
        scratch: tmp.path().to_owned(),
    };

    eprintln!(
        "generating {events} events (and a file of {}) in {}",
        2 * events,
        tmp.path().display()
    );
    let mut rng = Rng(SEED);
    let set = generate_bucket(&tmp.path().join("bucket"), events, &mut rng)?;
    let single = tmp
        .path()
        .join("single/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/04");
    let small = generate_single(
        &single.join("111122223333_CloudTrail_us-east-1_20240304T0000Z_small.json.gz"),
        SMALL_EVENTS,
        &mut rng,
    )?;
    let big = generate_single(
        &single.join("111122223333_CloudTrail_us-east-1_20240304T0000Z_big.json.gz"),
        2 * events,
        &mut rng,
    )?;
    let inputs: Vec<(String, Vec<u8>)> = set
        .files
        .iter()
        .map(|p| Ok((p.display().to_string(), std::fs::read(p)?)))
        .collect::<anyhow::Result<_>>()?;

    let mut rows = Vec::new();
    let t = measure("gunzip", set.json_bytes, || (), |()| gunzip(&inputs))?;
    rows.push(Row {
        stage: "gunzip only (flate2, native)".into(),
        threads: 1,
        timing: Some(t),
    });
    let (_, flagged) = parse_native(inputs.clone())?;
    if flagged > 0 {
        bail!("the parser flagged {flagged} generated records: the generator writes something it should not");
    }
    let t = measure("native", set.events, || inputs.clone(), |i| Ok(parse_native(i)?.0))?;
    rows.push(Row {
        stage: "plugin parser, native (`LogFile::next_batch`)".into(),
        threads: 1,
        timing: Some(t),
    });
    let started = Instant::now();
    let runtime = PluginRuntime::from_file(
        &cli.plugin_dir.join(plugin.file_name().context("a file name")?),
        &CompileCache::disabled(),
        Limits::default(),
    )?;
    let compile_secs = started.elapsed().as_secs_f64();
    let t = measure("wasm", set.events, || (), |()| parse_wasm(&runtime, &inputs))?;
    rows.push(Row {
        stage: "plugin in wasmtime, in-process (`PluginRuntime::read_file`)".into(),
        threads: 1,
        timing: Some(t),
    });
    drop(runtime);

    cli.replay(&small, 1)?; // fills the compile cache, as any run after the first finds it
    let mut set_peaks = Vec::new();
    for jobs in [1, cores] {
        let mut peak = 0;
        let t = measure(
            &format!("replay --jobs {jobs}"),
            set.events,
            || (),
            |()| {
                let run = cli.replay(&set, jobs)?;
                peak = peak.max(run.peak_rss_kib);
                Ok(set.events)
            },
        )?;
        rows.push(Row {
            stage: format!("`trailwatch replay --jobs {jobs}` (NDJSON to /dev/null)"),
            threads: jobs,
            timing: Some(t),
        });
        set_peaks.push((jobs, peak));
    }
    let jq = if on_path("jq") && on_path("zcat") {
        Some(measure("zcat | jq", set.events, || (), |()| jq_baseline(&set))?)
    } else {
        None
    };
    rows.push(Row {
        stage: "`zcat FILES | jq -c '.Records[]'`".into(),
        threads: 2,
        timing: jq,
    });
    let (script, list) = (tmp.path().join("baseline.py"), tmp.path().join("files.txt"));
    std::fs::write(&script, PYTHON)?;
    std::fs::write(
        &list,
        set.files
            .iter()
            .map(|p| format!("{}\n", p.display()))
            .collect::<String>(),
    )?;
    let t = measure("python", set.events, || (), |()| python_baseline(&script, &list))?;
    rows.push(Row {
        stage: "Python `gzip` + `json.load` + `json.dumps` per record".into(),
        threads: 1,
        timing: Some(t),
    });

    eprintln!("  peak memory: small file, big file");
    let small_run = cli.replay(&small, 1)?;
    let big_run = cli.replay(&big, 1)?;

    println!(
        "Command: `{}cargo bench -p trailwatch --bench replay`",
        match std::env::var("TRAILWATCH_BENCH_EVENTS") {
            Ok(v) => format!("TRAILWATCH_BENCH_EVENTS={v} "),
            Err(_) => String::new(),
        }
    );
    println!();
    println!("File set: {} events in {} files ({:.1} MB gzip, {:.1} MB JSON, {:.0} bytes per record); {cores} cores; best and median of {RUNS} runs.",
        set.events, set.files.len(), mb(set.gz_bytes), mb(set.json_bytes), set.json_bytes as f64 / set.events as f64);
    println!();
    print_throughput(&set, &rows);
    println!();
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map_or("–".to_owned(), |(a, b)| format!("{:.2}", a / b));
    let one = rate(&rows, &set, "`trailwatch replay --jobs 1`");
    println!(
        "- wasm / native (same parser): {}",
        ratio(
            rate(&rows, &set, "plugin in wasmtime"),
            rate(&rows, &set, "plugin parser, native")
        )
    );
    println!(
        "- `replay --jobs {cores}` / `--jobs 1`: {}",
        ratio(rate(&rows, &set, &format!("`trailwatch replay --jobs {cores}`")), one)
    );
    println!(
        "- `replay --jobs 1` / `zcat | jq`: {}",
        ratio(one, rate(&rows, &set, "`zcat"))
    );
    println!(
        "- `replay --jobs 1` / Python: {}",
        ratio(one, rate(&rows, &set, "Python"))
    );
    println!("- plugin compile without the cache (in-process, once): {compile_secs:.2} s; `replay` times include process start and loading the cached compile.");
    println!();
    println!("| `trailwatch replay` input | Jobs | Events | MB gzip | MB JSON | Peak RSS (MiB) | Wall (s) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, corpus, jobs, run) in [("small file", &small, 1, &small_run), ("big file", &big, 1, &big_run)] {
        println!(
            "| {name} | {jobs} | {} | {:.1} | {:.1} | {:.0} | {:.2} |",
            corpus.events,
            mb(corpus.gz_bytes),
            mb(corpus.json_bytes),
            run.peak_rss_kib as f64 / 1024.0,
            run.wall.as_secs_f64()
        );
    }
    for (jobs, peak) in set_peaks {
        println!(
            "| file set ({} files) | {jobs} | {} | {:.1} | {:.1} | {:.0} | see above |",
            set.files.len(),
            set.events,
            mb(set.gz_bytes),
            mb(set.json_bytes),
            peak as f64 / 1024.0
        );
    }
    Ok(())
}
