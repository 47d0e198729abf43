//! A labelled pattern-of-life scenario: days of a small organisation's benign CloudTrail
//! activity with attack chains injected, written as a trail's log files, with the chain each
//! attack event belongs to. Deterministic for a seed.
//!
//! The organisation: people on the console and the CLI in office hours from the office or
//! home, an admin doing occasional IAM work, CI roles deploying around the clock from a CI
//! provider's network, Lambda functions and an EC2 instance calling from inside AWS, a security
//! scanner enumerating every six hours, and AWS services acting on their own.
//!
//! The chains (each by one victim, on its own day after the learning period): stolen keys used
//! from a new network for a discovery burst and S3 reads; privilege escalation through a new
//! access key for another user and an administrator policy; CloudTrail, GuardDuty and flow logs
//! turned off; snapshot and AMI sharing with another account and S3 object reads; a backdoor
//! role trusting another account; a console sign-in without MFA from a new country; an EC2
//! instance's role credentials used from outside AWS.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde_json::{json, Value};

pub const ACCOUNT: &str = "111122223333";
/// Midnight UTC of a Monday.
pub const START_MS: i64 = 1_709_510_400_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The networks the scenario's addresses belong to: (CIDR, ASN, organization, country).
pub const NETWORKS: &[(&str, u32, &str, &str)] = &[
    ("81.2.69.0/24", 64500, "Example Telecom", "GB"),
    ("86.10.0.0/16", 64501, "Home Broadband", "GB"),
    ("140.82.112.0/20", 64502, "Example CI", "US"),
    ("54.240.0.0/16", 16509, "Amazon", "US"),
    ("185.220.101.0/24", 64666, "Bulletproof Hosting", "NL"),
    ("45.155.204.0/24", 64667, "Anon VPS", "RU"),
    ("177.54.0.0/16", 64668, "Far Away ISP", "BR"),
];

/// An attack chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Chain {
    StolenKeys,
    PrivilegeEscalation,
    DefenseEvasion,
    Exfiltration,
    BackdoorRole,
    ConsoleWithoutMfa,
    InstanceCredentials,
}

impl Chain {
    pub const ALL: [Chain; 7] = [
        Chain::StolenKeys,
        Chain::PrivilegeEscalation,
        Chain::DefenseEvasion,
        Chain::Exfiltration,
        Chain::BackdoorRole,
        Chain::ConsoleWithoutMfa,
        Chain::InstanceCredentials,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Chain::StolenKeys => "stolen_keys_discovery",
            Chain::PrivilegeEscalation => "privilege_escalation",
            Chain::DefenseEvasion => "defense_evasion",
            Chain::Exfiltration => "exfiltration",
            Chain::BackdoorRole => "backdoor_role",
            Chain::ConsoleWithoutMfa => "console_without_mfa",
            Chain::InstanceCredentials => "instance_credentials_outside",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub days: u32,
    /// People (the first is the admin); chains take their victims from the others.
    pub people: usize,
    pub ci_roles: usize,
    pub lambdas: usize,
    pub chains: Vec<Chain>,
}

impl Scenario {
    /// Nine days, four people, one CI role, one function, two chains: the snapshot test's.
    pub fn small() -> Self {
        Scenario {
            seed: 7,
            days: 9,
            people: 4,
            ci_roles: 1,
            lambdas: 1,
            chains: vec![Chain::StolenKeys, Chain::DefenseEvasion],
        }
    }

    /// Four weeks of a bigger organisation with every chain: the evaluation's.
    pub fn full() -> Self {
        Scenario {
            seed: 42,
            days: 28,
            people: 12,
            ci_roles: 3,
            lambdas: 5,
            chains: Chain::ALL.to_vec(),
        }
    }
}

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    pub files: usize,
    pub events: usize,
    /// The chain of each attack event, by event id; every other event is benign.
    pub labels: BTreeMap<String, &'static str>,
    /// Identities that made calls.
    pub identities: usize,
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    fn id(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }

    fn key(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut s = prefix.to_owned();
        for _ in 0..16 {
            s.push(ALPHABET[self.below(32) as usize] as char);
        }
        s
    }
}

/// An address in network `i` of `NETWORKS`.
fn address(rng: &mut Rng, i: usize) -> String {
    let (cidr, ..) = NETWORKS[i];
    let base: Vec<u8> = cidr
        .split('/')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    match cidr.split('/').nth(1).unwrap() {
        "24" => format!("{}.{}.{}.{}", base[0], base[1], base[2], 1 + rng.below(250)),
        "20" => format!(
            "{}.{}.{}.{}",
            base[0],
            base[1],
            base[2] + rng.below(16) as u8,
            1 + rng.below(250)
        ),
        _ => format!("{}.{}.{}.{}", base[0], base[1], rng.below(256), 1 + rng.below(250)),
    }
}

const OFFICE: usize = 0;
const HOME: usize = 1;
const CI: usize = 2;
const AWS: usize = 3;
const ATTACKER_NL: usize = 4;
const ATTACKER_RU: usize = 5;
const ATTACKER_BR: usize = 6;

const CONSOLE_AGENT: &str = "AWS Internal";
const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
const CLI: &str = "aws-cli/2.15.10 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/";
const TERRAFORM: &str =
    "APN/1.0 HashiCorp/1.0 Terraform/1.6.6 (+https://www.terraform.io) terraform-provider-aws/5.31.0";
const BOTO3: &str =
    "Boto3/1.34.11 md/Botocore#1.34.11 ua/2.0 os/linux#5.10 lang/python#3.12.1 exec-env/AWS_Lambda_python3.12";

/// Read calls people make, by service.
const PEOPLE_READS: &[(&str, &str)] = &[
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeVolumes"),
    ("ec2", "DescribeSecurityGroups"),
    ("s3", "ListBuckets"),
    ("s3", "GetBucketLocation"),
    ("cloudwatch", "GetMetricData"),
    ("cloudwatch", "DescribeAlarms"),
    ("logs", "DescribeLogGroups"),
    ("logs", "FilterLogEvents"),
    ("lambda", "ListFunctions"),
    ("lambda", "GetFunction"),
    ("rds", "DescribeDBInstances"),
    ("dynamodb", "ListTables"),
    ("dynamodb", "DescribeTable"),
    ("iam", "GetUser"),
    ("sts", "GetCallerIdentity"),
    ("cloudformation", "DescribeStacks"),
    ("ecs", "ListClusters"),
];

/// Changes people make now and then.
const PEOPLE_WRITES: &[(&str, &str)] = &[
    ("ec2", "StartInstances"),
    ("ec2", "StopInstances"),
    ("ec2", "CreateTags"),
    ("lambda", "UpdateFunctionConfiguration"),
    ("cloudwatch", "PutMetricAlarm"),
];

/// What a scanner enumerates.
const SCANNER_READS: &[(&str, &str)] = &[
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeSnapshots"),
    ("ec2", "DescribeImages"),
    ("ec2", "DescribeVolumes"),
    ("ec2", "DescribeFlowLogs"),
    ("s3", "ListBuckets"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketAcl"),
    ("s3", "GetBucketEncryption"),
    ("s3", "GetBucketVersioning"),
    ("s3", "GetPublicAccessBlock"),
    ("iam", "ListUsers"),
    ("iam", "ListRoles"),
    ("iam", "ListPolicies"),
    ("iam", "GetAccountPasswordPolicy"),
    ("iam", "ListAccessKeys"),
    ("iam", "GetAccountSummary"),
    ("iam", "ListMFADevices"),
    ("cloudtrail", "DescribeTrails"),
    ("cloudtrail", "GetTrailStatus"),
    ("cloudtrail", "GetEventSelectors"),
    ("guardduty", "ListDetectors"),
    ("guardduty", "GetDetector"),
    ("kms", "ListKeys"),
    ("kms", "GetKeyRotationStatus"),
    ("rds", "DescribeDBInstances"),
    ("rds", "DescribeDBSnapshots"),
    ("lambda", "ListFunctions"),
    ("config", "DescribeConfigurationRecorders"),
];

/// The calls a discovery burst makes.
const DISCOVERY: &[(&str, &str)] = &[
    ("iam", "ListUsers"),
    ("iam", "ListRoles"),
    ("iam", "ListGroups"),
    ("iam", "ListPolicies"),
    ("iam", "GetAccountAuthorizationDetails"),
    ("iam", "ListAttachedUserPolicies"),
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeRegions"),
    ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeSnapshots"),
    ("ec2", "DescribeKeyPairs"),
    ("s3", "ListBuckets"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketAcl"),
    ("lambda", "ListFunctions"),
    ("lambda", "GetFunction"),
    ("rds", "DescribeDBInstances"),
    ("rds", "DescribeDBClusters"),
    ("secretsmanager", "ListSecrets"),
    ("ssm", "DescribeParameters"),
    ("kms", "ListKeys"),
    ("dynamodb", "ListTables"),
    ("sns", "ListTopics"),
    ("sqs", "ListQueues"),
    ("cloudtrail", "DescribeTrails"),
];

/// Who calls.
#[derive(Clone)]
struct Who {
    identity: Value,
}

impl Who {
    fn user(rng: &mut Rng, name: &str, long_term: bool, mfa: bool) -> Who {
        let mut identity = json!({
            "type": "IAMUser",
            "principalId": rng.key("AIDA"),
            "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            "accountId": ACCOUNT,
            "accessKeyId": if long_term { rng.key("AKIA") } else { rng.key("ASIA") },
            "userName": name,
        });
        if !long_term {
            identity["sessionContext"] = json!({"attributes": {"creationDate": "2024-03-04T08:00:00Z", "mfaAuthenticated": if mfa { "true" } else { "false" }}});
        }
        Who { identity }
    }

    fn role(rng: &mut Rng, role: &str, session: &str) -> Who {
        let role_id = rng.key("AROA");
        Who {
            identity: json!({
                "type": "AssumedRole",
                "principalId": format!("{role_id}:{session}"),
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
                "accountId": ACCOUNT,
                "accessKeyId": rng.key("ASIA"),
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT, "userName": role},
                    "attributes": {"creationDate": "2024-03-04T00:00:00Z", "mfaAuthenticated": "false"}
                }
            }),
        }
    }
}

/// The events being generated, with their labels.
struct Events {
    rng: Rng,
    list: Vec<(i64, Value)>,
    labels: BTreeMap<String, &'static str>,
    identities: std::collections::BTreeSet<String>,
}

impl Events {
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        t: i64,
        who: &Who,
        service: &str,
        name: &str,
        ip: &str,
        agent: &str,
        params: Value,
        label: Option<&'static str>,
    ) -> String {
        let id = self.rng.id();
        let read = ["Describe", "List", "Get", "Head", "Lookup", "Filter"]
            .iter()
            .any(|p| name.starts_with(p));
        let mut record = json!({
            "eventVersion": "1.09",
            "userIdentity": who.identity,
            "eventTime": time(t),
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": name,
            "awsRegion": "eu-west-2",
            "sourceIPAddress": ip,
            "userAgent": agent,
            "requestParameters": params,
            "responseElements": null,
            "requestID": self.rng.id(),
            "eventID": id,
            "readOnly": read,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        });
        if service == "s3" && name == "GetObject" {
            record["eventCategory"] = json!("Data");
            record["managementEvent"] = json!(false);
        }
        if let Some(arn) = who.identity["arn"].as_str() {
            self.identities.insert(arn.to_owned());
        }
        if let Some(label) = label {
            self.labels.insert(id.clone(), label);
        }
        self.list.push((t, record));
        id
    }

    fn console_login(&mut self, t: i64, user: &str, ip: &str, mfa: bool, label: Option<&'static str>) {
        let id = self.rng.id();
        let record = json!({
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": self.rng.key("AIDA"), "arn": format!("arn:aws:iam::{ACCOUNT}:user/{user}"), "accountId": ACCOUNT, "userName": user},
            "eventTime": time(t),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": ip,
            "userAgent": BROWSER,
            "requestParameters": null,
            "responseElements": {"ConsoleLogin": "Success"},
            "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": if mfa { "Yes" } else { "No" }},
            "eventID": id,
            "readOnly": false,
            "eventType": "AwsConsoleSignIn",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        });
        if let Some(label) = label {
            self.labels.insert(id, label);
        }
        self.list.push((t, record));
    }

    /// A call by an AWS service on its own (no identity of the account).
    fn service_event(&mut self, t: i64) {
        let id = self.rng.id();
        self.list.push((
            t,
            json!({
                "eventVersion": "1.09",
                "userIdentity": {"type": "AWSService", "invokedBy": "s3.amazonaws.com"},
                "eventTime": time(t),
                "eventSource": "kms.amazonaws.com",
                "eventName": "Decrypt",
                "awsRegion": "eu-west-2",
                "sourceIPAddress": "s3.amazonaws.com",
                "userAgent": "s3.amazonaws.com",
                "requestParameters": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                "responseElements": null,
                "eventID": id,
                "readOnly": true,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": ACCOUNT,
                "eventCategory": "Management",
            }),
        ));
    }
}

fn time(t: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(t as u64)).to_string()
}

fn people_names(n: usize) -> Vec<String> {
    const NAMES: [&str; 16] = [
        "admin", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken", "lena", "mia",
        "nick", "olga", "pat",
    ];
    (0..n)
        .map(|i| NAMES.get(i).map_or_else(|| format!("person{i}"), |s| (*s).to_owned()))
        .collect()
}

/// A person's working day: a console sign-in, then console and CLI calls in office hours.
fn person_day(ev: &mut Events, day: i64, name: &str, admin: bool, habits: &[(&str, &str)], cli_key: &Who) {
    let rng = &mut ev.rng;
    let from_home = rng.chance(0.15);
    let ip = address(rng, if from_home { HOME } else { OFFICE });
    let start = START_MS + day * DAY + 8 * HOUR + rng.below(90) as i64 * MINUTE;
    let calls = 40 + rng.below(60) as i64;
    let console = Who::user(rng, name, false, true);
    let uses_cli = rng.chance(0.3);
    ev.console_login(start, name, &ip, true, None);
    for i in 0..calls {
        let t = start + MINUTE + i * (8 * HOUR / calls) + ev.rng.below(120_000) as i64;
        let (service, call) = if ev.rng.chance(0.06) {
            *ev.rng.pick(PEOPLE_WRITES)
        } else {
            *ev.rng.pick(habits)
        };
        let (who, agent) = if uses_cli && ev.rng.chance(0.4) {
            (cli_key, CLI)
        } else {
            (&console, CONSOLE_AGENT)
        };
        let who = who.clone();
        ev.call(t, &who, service, call, &ip, agent, json!({}), None);
    }
    if admin && ev.rng.chance(0.25) {
        // Occasional IAM work: a new user with a policy and an access key.
        let t = start + 3 * HOUR;
        let user = format!("svc-{}", ev.rng.below(1000));
        for (i, call) in ["CreateUser", "AttachUserPolicy", "CreateAccessKey", "ListAccessKeys"]
            .iter()
            .enumerate()
        {
            let params = json!({"userName": user, "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"});
            ev.call(t + i as i64 * 40_000, cli_key, "iam", call, &ip, CLI, params, None);
        }
    }
}

/// One CI run: a new session deploying.
fn ci_run(ev: &mut Events, t: i64, role: &str) {
    let session = format!("gha-run-{}", ev.rng.below(1_000_000));
    let who = Who::role(&mut ev.rng, role, &session);
    let ip = address(&mut ev.rng, CI);
    let agent = if ev.rng.chance(0.5) { TERRAFORM } else { CLI };
    let calls: &[(&str, &str)] = &[
        ("sts", "GetCallerIdentity"),
        ("cloudformation", "DescribeStacks"),
        ("cloudformation", "GetTemplate"),
        ("s3", "ListBuckets"),
        ("lambda", "GetFunction"),
        ("lambda", "UpdateFunctionCode"),
        ("lambda", "PublishVersion"),
        ("ecr", "GetAuthorizationToken"),
        ("ecr", "DescribeRepositories"),
        ("ecs", "DescribeServices"),
        ("ecs", "UpdateService"),
    ];
    let n = 15 + ev.rng.below(25) as i64;
    for i in 0..n {
        let (service, call) = *ev.rng.pick(calls);
        ev.call(t + i * 4_000, &who, service, call, &ip, agent, json!({}), None);
    }
}

/// An attack chain by `victim` at `t`.
fn chain(ev: &mut Events, chain: Chain, t: i64, victim: &str) {
    let label = Some(chain.name());
    let ip_nl = address(&mut ev.rng, ATTACKER_NL);
    let ip_ru = address(&mut ev.rng, ATTACKER_RU);
    let stolen = Who::user(&mut ev.rng, victim, true, false);
    let agent = "aws-cli/2.13.0 Python/3.11.4 Linux/6.1.0 exe/x86_64.debian.12";
    match chain {
        Chain::StolenKeys => {
            ev.call(t, &stolen, "sts", "GetCallerIdentity", &ip_nl, agent, json!({}), label);
            for (i, (service, call)) in DISCOVERY.iter().enumerate() {
                ev.call(
                    t + MINUTE + i as i64 * 5_000,
                    &stolen,
                    service,
                    call,
                    &ip_nl,
                    agent,
                    json!({}),
                    label,
                );
            }
            for i in 0..5 {
                let params = json!({"bucketName": "finance-exports", "key": format!("2024/q{i}.csv")});
                ev.call(
                    t + 6 * MINUTE + i * 2_000,
                    &stolen,
                    "s3",
                    "GetObject",
                    &ip_nl,
                    agent,
                    params,
                    label,
                );
            }
        }
        Chain::PrivilegeEscalation => {
            ev.call(
                t,
                &stolen,
                "iam",
                "ListAttachedUserPolicies",
                &ip_ru,
                agent,
                json!({"userName": victim}),
                label,
            );
            ev.call(
                t + MINUTE,
                &stolen,
                "iam",
                "CreateAccessKey",
                &ip_ru,
                agent,
                json!({"userName": "admin"}),
                label,
            );
            let params = json!({"userName": victim, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
            ev.call(
                t + 2 * MINUTE,
                &stolen,
                "iam",
                "AttachUserPolicy",
                &ip_ru,
                agent,
                params,
                label,
            );
            ev.call(
                t + 3 * MINUTE,
                &stolen,
                "iam",
                "CreateLoginProfile",
                &ip_ru,
                agent,
                json!({"userName": victim}),
                label,
            );
        }
        Chain::DefenseEvasion => {
            ev.call(
                t,
                &stolen,
                "cloudtrail",
                "DescribeTrails",
                &ip_nl,
                agent,
                json!({}),
                label,
            );
            ev.call(
                t + MINUTE,
                &stolen,
                "cloudtrail",
                "StopLogging",
                &ip_nl,
                agent,
                json!({"name": "main"}),
                label,
            );
            ev.call(
                t + 2 * MINUTE,
                &stolen,
                "guardduty",
                "DeleteDetector",
                &ip_nl,
                agent,
                json!({"detectorId": "12abc34d567e8fa901bc2d34e56789f0"}),
                label,
            );
            ev.call(
                t + 3 * MINUTE,
                &stolen,
                "ec2",
                "DeleteFlowLogs",
                &ip_nl,
                agent,
                json!({"DeleteFlowLogsRequest": {"FlowLogId": {"tag": 1, "content": "fl-0123456789abcdef0"}}}),
                label,
            );
        }
        Chain::Exfiltration => {
            ev.call(t, &stolen, "ec2", "DescribeSnapshots", &ip_ru, agent, json!({}), label);
            ev.call(
                t + MINUTE,
                &stolen,
                "ec2",
                "CreateSnapshot",
                &ip_ru,
                agent,
                json!({"volumeId": "vol-0123456789abcdef0"}),
                label,
            );
            let share = json!({"snapshotId": "snap-0123456789abcdef0", "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}});
            ev.call(
                t + 5 * MINUTE,
                &stolen,
                "ec2",
                "ModifySnapshotAttribute",
                &ip_ru,
                agent,
                share,
                label,
            );
            let ami = json!({"imageId": "ami-0123456789abcdef0", "launchPermission": {"add": {"items": [{"userId": "999988887777"}]}}});
            ev.call(
                t + 6 * MINUTE,
                &stolen,
                "ec2",
                "ModifyImageAttribute",
                &ip_ru,
                agent,
                ami,
                label,
            );
            for i in 0..10 {
                let params = json!({"bucketName": "customer-data", "key": format!("export/{i}.parquet")});
                ev.call(
                    t + 7 * MINUTE + i * 1_000,
                    &stolen,
                    "s3",
                    "GetObject",
                    &ip_ru,
                    agent,
                    params,
                    label,
                );
            }
        }
        Chain::BackdoorRole => {
            let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}]}"#;
            let params = json!({"roleName": "support-access", "assumeRolePolicyDocument": trust});
            ev.call(t, &stolen, "iam", "CreateRole", &ip_nl, agent, params, label);
            let attach =
                json!({"roleName": "support-access", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
            ev.call(
                t + MINUTE,
                &stolen,
                "iam",
                "AttachRolePolicy",
                &ip_nl,
                agent,
                attach,
                label,
            );
            let update = json!({"roleName": "support-access", "policyDocument": trust});
            ev.call(
                t + 2 * MINUTE,
                &stolen,
                "iam",
                "UpdateAssumeRolePolicy",
                &ip_nl,
                agent,
                update,
                label,
            );
        }
        Chain::ConsoleWithoutMfa => {
            let ip = address(&mut ev.rng, ATTACKER_BR);
            ev.console_login(t, victim, &ip, false, label);
            let console = Who::user(&mut ev.rng, victim, false, false);
            for (i, (service, call)) in [
                ("iam", "ListUsers"),
                ("secretsmanager", "ListSecrets"),
                ("secretsmanager", "GetSecretValue"),
            ]
            .iter()
            .enumerate()
            {
                ev.call(
                    t + (i as i64 + 1) * MINUTE,
                    &console,
                    service,
                    call,
                    &ip,
                    CONSOLE_AGENT,
                    json!({}),
                    label,
                );
            }
        }
        Chain::InstanceCredentials => {
            let instance = Who::role(&mut ev.rng, "web", "i-0a1b2c3d4e5f60718");
            for (i, (service, call)) in [
                ("sts", "GetCallerIdentity"),
                ("s3", "ListBuckets"),
                ("ec2", "DescribeInstances"),
                ("iam", "ListRoles"),
            ]
            .iter()
            .enumerate()
            {
                ev.call(
                    t + i as i64 * MINUTE,
                    &instance,
                    service,
                    call,
                    &ip_nl,
                    agent,
                    json!({}),
                    label,
                );
            }
        }
    }
}

/// Writes `scenario` as a trail's log files under `dir`, one file per region and quarter hour.
pub fn write(dir: &Path, scenario: &Scenario) -> Written {
    let mut ev = Events {
        rng: Rng(scenario.seed),
        list: Vec::new(),
        labels: BTreeMap::new(),
        identities: Default::default(),
    };
    let people = people_names(scenario.people);
    let habits: Vec<Vec<(&str, &str)>> = (0..people.len())
        .map(|_| (0..8).map(|_| *ev.rng.pick(PEOPLE_READS)).collect())
        .collect();
    let cli_keys: Vec<Who> = people.iter().map(|p| Who::user(&mut ev.rng, p, true, false)).collect();
    let instance = Who::role(&mut ev.rng, "web", "i-0a1b2c3d4e5f60718");
    let scanner_role = "audit-scanner";
    for day in 0..i64::from(scenario.days) {
        let weekday = day % 7 < 5;
        if weekday {
            for (i, name) in people.iter().enumerate() {
                if ev.rng.chance(0.9) {
                    person_day(&mut ev, day, name, i == 0, &habits[i], &cli_keys[i]);
                }
            }
        }
        for role in 0..scenario.ci_roles {
            for hour in 0..24 {
                if ev.rng.chance(0.5) {
                    let t = START_MS + day * DAY + hour * HOUR + ev.rng.below(50) as i64 * MINUTE;
                    ci_run(&mut ev, t, &format!("ci-deploy-{role}"));
                }
            }
        }
        for f in 0..scenario.lambdas {
            let name = format!("orders-fn-{f}");
            let who = Who::role(&mut ev.rng, &format!("lambda-{name}"), &name);
            let mut t = START_MS + day * DAY + ev.rng.below(600) as i64 * 1000;
            while t < START_MS + (day + 1) * DAY {
                let ip = address(&mut ev.rng, AWS);
                let (service, call) = *ev.rng.pick(&[
                    ("dynamodb", "DescribeTable"),
                    ("sqs", "GetQueueAttributes"),
                    ("kms", "Decrypt"),
                    ("ssm", "GetParameter"),
                    ("secretsmanager", "GetSecretValue"),
                ]);
                ev.call(t, &who, service, call, &ip, BOTO3, json!({}), None);
                t += (3 + ev.rng.below(8) as i64) * MINUTE;
            }
        }
        let mut t = START_MS + day * DAY;
        while t < START_MS + (day + 1) * DAY {
            let ip = address(&mut ev.rng, AWS);
            let (service, call) = *ev.rng.pick(&[
                ("ssm", "UpdateInstanceInformation"),
                ("ec2", "DescribeTags"),
                ("s3", "ListBuckets"),
                ("monitoring", "PutMetricData"),
            ]);
            ev.call(
                t,
                &instance,
                service,
                call,
                &ip,
                "aws-sdk-java/1.12.600 Linux/5.10 OpenJDK_64-Bit_Server_VM/17",
                json!({}),
                None,
            );
            t += (4 + ev.rng.below(4) as i64) * MINUTE;
        }
        for run in 0..4 {
            let t = START_MS + day * DAY + run * 6 * HOUR + 30 * MINUTE;
            let who = Who::role(&mut ev.rng, scanner_role, &format!("scan-{day}-{run}"));
            let ip = address(&mut ev.rng, AWS);
            for (i, (service, call)) in SCANNER_READS.iter().enumerate() {
                ev.call(
                    t + i as i64 * 3_000,
                    &who,
                    service,
                    call,
                    &ip,
                    "Boto3/1.34.11 Python/3.11 prowler/3.11",
                    json!({}),
                    None,
                );
            }
        }
        for _ in 0..20 {
            let t = START_MS + day * DAY + ev.rng.below(DAY as u64) as i64;
            ev.service_event(t);
        }
    }
    // The chains, after the learning period, each on its own day (at night for some).
    let victims: Vec<&String> = people.iter().skip(1).collect();
    for (i, c) in scenario.chains.iter().enumerate() {
        let day = i64::from(scenario.days) - 1 - (i as i64 % (i64::from(scenario.days) - 8).max(1));
        let hour = [22, 10, 3, 14, 1, 19, 11][i % 7];
        let t = START_MS + day * DAY + hour * HOUR + 7 * MINUTE;
        let victim = victims[i % victims.len()].clone();
        chain(&mut ev, *c, t, &victim);
    }

    ev.list.sort_by_key(|(t, _)| *t);
    let mut written = Written {
        events: ev.list.len(),
        identities: ev.identities.len(),
        ..Written::default()
    };
    let mut files: BTreeMap<(String, i64), Vec<Value>> = BTreeMap::new();
    for (t, record) in ev.list {
        let region = record["awsRegion"].as_str().unwrap_or("us-east-1").to_owned();
        files.entry((region, t / (15 * MINUTE))).or_default().push(record);
    }
    for ((region, quarter), records) in files {
        let t = quarter * 15 * MINUTE;
        let stamp = time(t);
        let (date, clock) = (&stamp[..10], &stamp[11..16]);
        let day_dir = dir.join(format!(
            "AWSLogs/{ACCOUNT}/CloudTrail/{region}/{}",
            date.replace('-', "/")
        ));
        std::fs::create_dir_all(&day_dir).unwrap();
        let name = format!(
            "{ACCOUNT}_CloudTrail_{region}_{}T{}Z_{:016x}.json.gz",
            date.replace('-', ""),
            clock.replace(':', ""),
            quarter
        );
        let body = serde_json::to_vec(&json!({ "Records": records })).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        std::fs::write(day_dir.join(name), gz.finish().unwrap()).unwrap();
        written.files += 1;
    }
    written.labels = ev.labels;
    written
}
