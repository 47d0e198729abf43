//! Scoring end to end on small made-up streams: what an established identity's baseline
//! raises, the rules that need none, incidents and the sweep.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::*;
use crate::categorize::{categorize, Input};

const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % DAY;
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

/// A call by `arn` (an IAM user unless `kind` says otherwise).
fn call(kind: &str, arn: &str, source: &str, name: &str, t: i64) -> Observation<'static> {
    let category = categorize(&Input {
        event_source: Some(source),
        event_name: Some(name),
        event_type: Some("AwsApiCall"),
        ..Input::default()
    });
    let read_only = category.action == crate::categorize::Action::Read;
    Observation {
        event_id: Some(format!("{name}-{t}").into()),
        event_time_ms: Some(t),
        event_source: Some(source.to_owned().into()),
        event_name: Some(name.to_owned().into()),
        read_only,
        category,
        event_type: Some("AwsApiCall".into()),
        region: Some("us-east-1".into()),
        recipient_account_id: Some("111122223333".into()),
        principal: Some(Principal {
            identity_type: Some(Cow::Owned(kind.into())),
            arn: Some(Cow::Owned(arn.into())),
            account_id: Some(Cow::Borrowed("111122223333")),
            access_key_id: Some(Cow::Owned(format!(
                "AKIA{}",
                arn.rsplit('/').next().unwrap_or("").to_uppercase()
            ))),
            ..Principal::default()
        }),
        source_address: Some("198.51.100.7".into()),
        source_kind: SourceKind::Ip,
        network: Some(std::rc::Rc::new(Network {
            scope: "public".into(),
            asn: Some(64500),
            as_org: Some("Office ISP".into()),
            country: Some("DE".into()),
        })),
        user_agent: Some("aws-cli/2.13.0 Python/3.11.4".into()),
        error_code: None,
        outcome: Outcome::Success,
        prepared: Default::default(),
    }
}

fn from(mut ev: Observation<'static>, asn: u32, country: &str) -> Observation<'static> {
    ev.network = Some(std::rc::Rc::new(Network {
        scope: "public".into(),
        asn: Some(asn),
        as_org: Some("Elsewhere Hosting".into()),
        country: Some(country.into()),
    }));
    ev
}

/// Scores batches one after the other, keeping the entries as a host would.
struct Host {
    settings: Settings,
    entries: BTreeMap<String, Vec<u8>>,
    /// Keys asked for, all batches together.
    asked: usize,
    /// Writes stored, all batches and sweeps together.
    written: usize,
    /// The instance holds its writes (`memory::hold`): flushed before each sweep.
    holding: bool,
}

impl Host {
    fn new() -> Self {
        Host {
            settings: Settings::default(),
            entries: BTreeMap::new(),
            asked: 0,
            written: 0,
            holding: false,
        }
    }

    fn score(&mut self, events: Vec<Observation<'static>>) -> Scored {
        let mut batch = Batch::new(self.settings, events);
        let mut given = Vec::new();
        loop {
            match batch.next(given) {
                Step::Needs(keys) => {
                    self.asked += keys.len();
                    given = keys
                        .iter()
                        .filter_map(|k| self.entries.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                }
                Step::Done(scored) => {
                    self.apply(&scored.writes);
                    return scored;
                }
            }
        }
    }

    /// Stores `writes`; counts them.
    fn apply(&mut self, writes: &[Write]) {
        self.written += writes.len();
        for (k, v) in writes {
            match v {
                Some(v) => self.entries.insert(k.clone(), v.clone()),
                None => self.entries.remove(k),
            };
        }
    }

    fn sweep(&mut self, now: i64) -> Vec<Incident> {
        if self.holding {
            // The sweep reads every entry: what the instance holds changed goes first.
            self.apply(&memory::flush(""));
        }
        let entries = self.entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (writes, incidents) = sweep(&self.settings, now, entries);
        self.apply(&writes);
        incidents
    }

    /// Alice's ordinary work: 10 days, 12 calls a day in office hours, from her office.
    fn learn_alice(&mut self) {
        let apis = [
            ("ec2.amazonaws.com", "DescribeInstances"),
            ("s3.amazonaws.com", "ListBuckets"),
            ("ec2.amazonaws.com", "StartInstances"),
            ("iam.amazonaws.com", "GetUser"),
        ];
        let mut events = Vec::new();
        for day in 0..10 {
            for i in 0..12 {
                let (source, name) = apis[i % apis.len()];
                events.push(call(
                    "IAMUser",
                    ALICE,
                    source,
                    name,
                    T0 + day * DAY + 9 * HOUR + i as i64 * 20 * MINUTE,
                ));
            }
        }
        let scored = self.score(events);
        assert!(
            scored.verdicts.iter().all(|v| !v.anomalous),
            "{:?}",
            scored.verdicts.iter().find(|v| v.anomalous)
        );
        assert!(scored.incidents.is_empty());
    }
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code).collect()
}

#[test]
fn an_established_identity_from_a_new_network_is_anomalous_and_a_learning_one_is_not() {
    let mut host = Host::new();
    // Bob is new: everything about him is new, and nothing is raised while he is learning.
    let bob = "arn:aws:iam::111122223333:user/bob";
    let scored = host.score(vec![from(
        call("IAMUser", bob, "ec2.amazonaws.com", "DescribeVpcs", T0),
        64777,
        "AR",
    )]);
    assert_eq!(scored.verdicts[0].score, 0, "{:?}", scored.verdicts[0]);
    assert_eq!(scored.verdicts[0].identity, bob);

    host.learn_alice();
    let t = T0 + 10 * DAY + 10 * HOUR;
    let usual = host.score(vec![call(
        "IAMUser",
        ALICE,
        "ec2.amazonaws.com",
        "DescribeInstances",
        t,
    )]);
    assert_eq!(usual.verdicts[0].score, 0, "{:?}", usual.verdicts[0]);
    let odd = host.score(vec![from(
        call(
            "IAMUser",
            ALICE,
            "ec2.amazonaws.com",
            "DescribeInstances",
            t + 30 * MINUTE,
        ),
        64999,
        "BR",
    )]);
    let v = &odd.verdicts[0];
    assert!(v.anomalous, "{v:?}");
    assert_eq!(codes(v), vec!["new_asn_for_identity", "new_country_for_identity"]);
    assert!(
        v.reasons[0].text.contains("AS64999 (Elsewhere Hosting)"),
        "{}",
        v.reasons[0].text
    );
    assert!(v.reasons[0].text.contains("new to the account too"));
    // A single anomaly below 75 is held, not an incident yet.
    assert!(odd.incidents.is_empty());
    assert_eq!(v.incident, None);
    // Once learned, the same network is not new any more.
    let again = host.score(vec![from(
        call(
            "IAMUser",
            ALICE,
            "ec2.amazonaws.com",
            "DescribeInstances",
            t + 31 * MINUTE,
        ),
        64999,
        "BR",
    )]);
    assert!(!again.verdicts[0]
        .reasons
        .iter()
        .any(|r| r.code == "new_asn_for_identity"));
}

#[test]
fn stolen_keys_then_discovery_then_tampering_become_one_incident_that_grows_and_closes() {
    let mut host = Host::new();
    host.learn_alice();
    let t = T0 + 10 * DAY + 22 * HOUR;
    let mut events = vec![from(
        call("IAMUser", ALICE, "sts.amazonaws.com", "GetCallerIdentity", t),
        64999,
        "BR",
    )];
    // Enumeration across services.
    let services = ["iam", "ec2", "s3", "lambda", "rds"];
    for i in 0..24 {
        let service = services[i % services.len()];
        let name = format!("List{}Things{i}", service.to_uppercase());
        events.push(from(
            call(
                "IAMUser",
                ALICE,
                &format!("{service}.amazonaws.com"),
                &name,
                t + MINUTE + i as i64 * 1000,
            ),
            64999,
            "BR",
        ));
    }
    events.push(from(
        call(
            "IAMUser",
            ALICE,
            "cloudtrail.amazonaws.com",
            "StopLogging",
            t + 5 * MINUTE,
        ),
        64999,
        "BR",
    ));
    let scored = host.score(events);
    let burst = scored
        .verdicts
        .iter()
        .find(|v| v.reasons.iter().any(|r| r.code == "discovery_burst"))
        .unwrap_or_else(|| {
            panic!(
                "a discovery burst: {:#?}",
                scored.verdicts.iter().map(codes).collect::<Vec<_>>()
            )
        });
    assert!(burst.anomalous, "{burst:?}");
    assert!(codes(burst).contains(&"follows_anomaly"), "{burst:?}");
    let stop = scored.verdicts.last().unwrap();
    assert!(stop.anomalous, "{stop:?}");
    assert_eq!(stop.reasons[0].code, "logging_tampering");
    // Reported at the second anomaly, updated at the third.
    assert_eq!(scored.incidents.len(), 2, "{:#?}", scored.incidents);
    let first = &scored.incidents[0];
    let last = &scored.incidents[1];
    assert_eq!(first.id, last.id);
    assert_eq!((first.revision, last.revision), (1, 2));
    assert!(first.open && last.open);
    assert_eq!(last.identity, ALICE);
    assert_eq!(last.anomalies, 3);
    assert_eq!(last.tactics, vec!["initial-access", "defense-evasion", "discovery"]);
    assert!(last.change.contains("new stage defense-evasion"), "{}", last.change);
    assert!(
        last.summary
            .starts_with(&format!("{ALICE}: 3 anomalies over 5 minutes")),
        "{}",
        last.summary
    );
    assert!(last.summary.contains("from BR, AS64999"), "{}", last.summary);
    assert_eq!(last.events.len(), 3);
    assert_eq!(stop.incident.as_deref(), Some(last.id.as_str()));
    assert!(last.score >= stop.score);

    // Quiet for the gap: the sweep closes it, once.
    assert!(host.sweep(t + HOUR).is_empty());
    let closed = host.sweep(t + 5 * MINUTE + 3 * HOUR);
    assert_eq!(closed.len(), 1);
    assert!(!closed[0].open);
    assert_eq!(closed[0].revision, 3);
    assert!(closed[0].change.starts_with("closed"));
    assert!(host.sweep(t + 4 * HOUR).is_empty());
}

#[test]
fn rules_that_need_no_baseline() {
    let mut host = Host::new();
    let t = T0;
    // Root, signing in to the console without MFA.
    let mut login = call(
        "Root",
        "arn:aws:iam::111122223333:root",
        "signin.amazonaws.com",
        "ConsoleLogin",
        t,
    );
    login.principal.as_mut().unwrap().mfa_authenticated = Some(false);
    login.event_type = Some("AwsConsoleSignIn".into());
    let v = &host.score(vec![login]).verdicts[0];
    assert_eq!(codes(v), vec!["console_login_without_mfa", "root_usage"]);
    assert!(v.anomalous && v.score >= 75, "{v:?}");

    // An instance's credentials from outside AWS, and in another account.
    let role = "arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0";
    let mut ev = call("AssumedRole", role, "s3.amazonaws.com", "ListBuckets", t);
    ev.recipient_account_id = Some("999988887777".into());
    let v = &host.score(vec![ev]).verdicts[0];
    assert_eq!(
        codes(v),
        vec!["instance_credentials_outside_aws", "instance_credentials_other_account"]
    );
    // From inside AWS, in its own account: nothing.
    let ev = from(
        call("AssumedRole", role, "s3.amazonaws.com", "ListBuckets", t),
        16509,
        "US",
    );
    assert_eq!(host.score(vec![ev]).verdicts[0].score, 0);

    // One access key from two countries within minutes.
    let carol = "arn:aws:iam::111122223333:user/carol";
    let a = call("IAMUser", carol, "ec2.amazonaws.com", "DescribeInstances", t);
    let b = from(
        call(
            "IAMUser",
            carol,
            "ec2.amazonaws.com",
            "DescribeInstances",
            t + 3 * MINUTE,
        ),
        64999,
        "BR",
    );
    let scored = host.score(vec![a, b]);
    assert_eq!(scored.verdicts[0].score, 0);
    assert_eq!(codes(&scored.verdicts[1]), vec!["access_key_two_networks"]);

    // A pentest distribution, and six distinct denied calls.
    let dave = "arn:aws:iam::111122223333:user/dave";
    let mut ev = call("IAMUser", dave, "iam.amazonaws.com", "ListUsers", t);
    ev.user_agent = Some("aws-cli/1.16 Python/3.7 Linux/5.4.0-kali3-amd64".into());
    assert_eq!(codes(&host.score(vec![ev]).verdicts[0]), vec!["pentest_user_agent"]);
    let erin = "arn:aws:iam::111122223333:user/erin";
    let denied: Vec<Observation<'static>> = (0..6)
        .map(|i| {
            let mut ev = call(
                "IAMUser",
                erin,
                "iam.amazonaws.com",
                &format!("ListThing{i}"),
                t + 1000 * i,
            );
            ev.outcome = Outcome::Denied;
            ev
        })
        .collect();
    let scored = host.score(denied);
    assert!(scored.verdicts[..5].iter().all(|v| v.score == 0));
    assert_eq!(codes(&scored.verdicts[5]), vec!["denied_burst"]);
}

#[test]
fn sensitive_calls_count_for_less_when_habitual_and_service_events_are_not_scored() {
    let mut host = Host::new();
    let admin = "arn:aws:iam::111122223333:user/admin";
    let first = host.score(vec![call(
        "IAMUser",
        admin,
        "iam.amazonaws.com",
        "AttachUserPolicy",
        T0,
    )]);
    assert_eq!(codes(&first.verdicts[0]), vec!["permission_change"]);
    let full = first.verdicts[0].reasons[0].points;
    let mut events = Vec::new();
    for day in 0..10 {
        for i in 0..10 {
            events.push(call(
                "IAMUser",
                admin,
                "iam.amazonaws.com",
                "AttachUserPolicy",
                T0 + day * DAY + i * HOUR,
            ));
        }
    }
    let later = host.score(events);
    let last = later.verdicts.last().unwrap();
    assert!(last.reasons[0].points < full, "{last:?}");
    assert!(last.reasons[0].text.contains("regularly"));

    let mut service = call("AWSService", "", "kms.amazonaws.com", "Decrypt", T0);
    service.principal.as_mut().unwrap().arn = None;
    let v = &host.score(vec![service]).verdicts[0];
    assert_eq!(v, &Verdict::default());
}

#[test]
fn a_batch_asks_once_for_what_it_reads_and_scoring_is_deterministic() {
    let events = vec![call(
        "AssumedRole",
        "arn:aws:sts::111122223333:assumed-role/ci/build-1",
        "s3.amazonaws.com",
        "ListBuckets",
        T0,
    )];
    let mut batch = Batch::new(Settings::default(), events.clone());
    let Step::Needs(keys) = batch.next(Vec::new()) else {
        panic!("asks first")
    };
    assert_eq!(
        keys,
        vec![
            "a/111122223333",
            "i/arn:aws:sts::111122223333:assumed-role/ci",
            "i/arn:aws:sts::111122223333:assumed-role/ci/build-1",
            "k/AKIABUILD-1",
            "n/arn:aws:sts::111122223333:assumed-role/ci/build-1",
            "v/111122223333/agent/aws-cli",
            "v/111122223333/api/s3:ListBuckets",
            "v/111122223333/asn/64500",
            "v/111122223333/country/DE",
            "v/111122223333/region/us-east-1",
        ]
    );
    let Step::Done(one) = batch.next(Vec::new()) else {
        panic!("then done")
    };
    let mut again = Host::new();
    assert_eq!(again.score(events), one);
    // The session and its role both learned; the session is forgotten sooner.
    assert!(again
        .entries
        .contains_key("i/arn:aws:sts::111122223333:assumed-role/ci"));
    again.sweep(T0 + 3 * DAY);
    assert!(again
        .entries
        .contains_key("i/arn:aws:sts::111122223333:assumed-role/ci"));
    assert!(!again
        .entries
        .contains_key("i/arn:aws:sts::111122223333:assumed-role/ci/build-1"));
}

#[test]
fn the_sweep_forgets_identities_not_seen_for_the_forgetting_period() {
    let mut host = Host::new();
    host.learn_alice();
    assert!(host.sweep(T0 + 20 * DAY).is_empty());
    assert!(host.entries.contains_key(&format!("i/{ALICE}")));
    // An access key's last network is kept for a day only.
    assert!(!host.entries.keys().any(|k| k.starts_with("k/")));
    host.sweep(T0 + 120 * DAY);
    assert!(
        !host.entries.keys().any(|k| k.starts_with("i/")),
        "{:?}",
        host.entries.keys()
    );
    assert!(!host.entries.keys().any(|k| k.starts_with("k/")));
}

#[test]
fn an_entry_this_plugin_cannot_read_is_never_overwritten() {
    let mut host = Host::new();
    let key = format!("i/{ALICE}");
    host.entries
        .insert(key.clone(), br#"{"v":99,"from":"a newer plugin"}"#.to_vec());
    let scored = host.score(vec![call(
        "IAMUser",
        ALICE,
        "ec2.amazonaws.com",
        "DescribeInstances",
        T0,
    )]);
    assert_eq!(scored.verdicts[0].identity, ALICE);
    assert_eq!(host.entries[&key], br#"{"v":99,"from":"a newer plugin"}"#.to_vec());
    assert!(!scored.writes.iter().any(|(k, _)| *k == key));
}

#[test]
fn a_late_event_does_not_reset_the_burst_window() {
    let mut host = Host::new();
    let erin = "arn:aws:iam::111122223333:user/erin";
    let denied = |i: i64, t: i64| {
        let mut ev = call("IAMUser", erin, "iam.amazonaws.com", &format!("ListThing{i}"), t);
        ev.outcome = Outcome::Denied;
        ev
    };
    let t = T0 + HOUR;
    // Three denied calls, one from an earlier window (another region's file read late), three more.
    let events = vec![
        denied(0, t),
        denied(1, t + 1000),
        denied(2, t + 2000),
        denied(9, t - HOUR),
        denied(3, t + 3000),
        denied(4, t + 4000),
        denied(5, t + 5000),
    ];
    let scored = host.score(events);
    assert_eq!(codes(&scored.verdicts[6]), vec!["denied_burst"]);
    assert!(scored.verdicts[..6].iter().all(|v| v.score == 0));
}

#[test]
fn an_incident_links_anomalies_of_separate_batches() {
    let mut host = Host::new();
    host.learn_alice();
    let t = T0 + 10 * DAY + 22 * HOUR;
    let first = host.score(vec![from(
        call("IAMUser", ALICE, "sts.amazonaws.com", "GetCallerIdentity", t),
        64999,
        "BR",
    )]);
    assert!(first.verdicts[0].anomalous && first.incidents.is_empty());
    assert!(
        host.entries.contains_key(&format!("n/{ALICE}")),
        "the held incident is stored"
    );
    let stored: Option<super::baseline::OpenIncident> = super::baseline::read(&host.entries[&format!("n/{ALICE}")]);
    assert!(stored.as_ref().is_some_and(|o| o.anomalies == 1), "{stored:?}");
    let second = host.score(vec![from(
        call("IAMUser", ALICE, "cloudtrail.amazonaws.com", "StopLogging", t + MINUTE),
        64999,
        "BR",
    )]);
    assert!(second.verdicts[0].anomalous, "{:?}", second.verdicts[0]);
    let after: Option<super::baseline::OpenIncident> = super::baseline::read(&host.entries[&format!("n/{ALICE}")]);
    assert_eq!(second.incidents.len(), 1, "{:?} {after:?}", second.incidents);
    assert_eq!(second.incidents[0].anomalies, 2);
}

#[test]
fn an_open_incident_round_trips() {
    let o = super::baseline::OpenIncident {
        id: "inc-1".into(),
        remaining: 0.5,
        top: (60, "x".into()),
        ..Default::default()
    };
    let bytes = super::baseline::write(&o);
    assert_eq!(super::baseline::read::<super::baseline::OpenIncident>(&bytes), Some(o));
}

#[test]
fn how_the_account_uses_a_value_is_learned_across_batches() {
    let mut host = Host::new();
    let bob = "arn:aws:iam::111122223333:user/bob";
    host.score(vec![call("IAMUser", bob, "ec2.amazonaws.com", "DescribeVpcs", T0)]);
    host.score(vec![call(
        "IAMUser",
        bob,
        "ec2.amazonaws.com",
        "DescribeVpcs",
        T0 + MINUTE,
    )]);
    let key = "v/111122223333/api/vpc:DescribeVpcs";
    let value: Option<super::baseline::AccountValue> = super::baseline::read(&host.entries[key]);
    assert_eq!(value.map(|v| v.n), Some(2));
    // A network the account knows is not "new to the account too" for another identity.
    host.learn_alice();
    let t = T0 + 10 * DAY + 10 * HOUR;
    host.score(vec![from(
        call("IAMUser", bob, "ec2.amazonaws.com", "DescribeVpcs", t),
        64999,
        "BR",
    )]);
    let v = &host
        .score(vec![from(
            call(
                "IAMUser",
                ALICE,
                "ec2.amazonaws.com",
                "DescribeInstances",
                t + 30 * MINUTE,
            ),
            64999,
            "BR",
        )])
        .verdicts[0];
    let asn = v
        .reasons
        .iter()
        .find(|r| r.code == "new_asn_for_identity")
        .expect("new network");
    assert!(!asn.text.contains("new to the account"), "{}", asn.text);
}

/// Alice's and Bob's days, an attack on Alice's keys, sweeps between: the batches as files.
const BOB: &str = "arn:aws:iam::111122223333:user/bob";

fn days_then_an_attack() -> Vec<Vec<Observation<'static>>> {
    let apis = [
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("s3.amazonaws.com", "ListBuckets"),
        ("iam.amazonaws.com", "GetUser"),
    ];
    let mut batches = Vec::new();
    for day in 0..10 {
        let mut events = Vec::new();
        for i in 0..12 {
            let (source, name) = apis[i % apis.len()];
            let t = T0 + day * DAY + 9 * HOUR + i as i64 * 20 * MINUTE;
            events.push(call("IAMUser", ALICE, source, name, t));
            events.push(call("IAMUser", BOB, source, name, t + MINUTE));
        }
        batches.push(events);
    }
    let t = T0 + 10 * DAY + 22 * HOUR;
    let mut attack = vec![from(
        call("IAMUser", ALICE, "sts.amazonaws.com", "GetCallerIdentity", t),
        64999,
        "BR",
    )];
    for i in 0..20 {
        let name = format!("ListThings{i}");
        attack.push(from(
            call("IAMUser", ALICE, "iam.amazonaws.com", &name, t + MINUTE + i * 1000),
            64999,
            "BR",
        ));
    }
    batches.push(attack);
    batches.push(vec![from(
        call(
            "IAMUser",
            ALICE,
            "cloudtrail.amazonaws.com",
            "StopLogging",
            t + 10 * MINUTE,
        ),
        64999,
        "BR",
    )]);
    // Bob from a network new to him: a reason only against his established baseline.
    batches.push(vec![from(
        call("IAMUser", BOB, "ec2.amazonaws.com", "DescribeInstances", t + 4 * HOUR),
        64999,
        "BR",
    )]);
    batches
}

/// Scores the batches, sweeping every other one and at the end; what came out.
fn replay(host: &mut Host, batches: &[Vec<Observation<'static>>]) -> Vec<(Scored, Vec<Incident>)> {
    let mut out = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let scored = host.score(batch.clone());
        let now = batch.iter().filter_map(|e| e.event_time_ms).max().unwrap_or(T0);
        let closed = if i % 2 == 1 || i + 1 == batches.len() {
            host.sweep(now)
        } else {
            Vec::new()
        };
        out.push((scored, closed));
    }
    out
}

#[test]
fn an_instance_that_remembers_entries_scores_and_writes_the_same_and_asks_for_less() {
    let batches = days_then_an_attack();
    let mut asking = Host::new();
    let expected = replay(&mut asking, &batches);
    // Bob's baseline in a form this plugin cannot read (a newer plugin's): judged as new by
    // every batch, never written.
    let unreadable = || {
        let mut host = Host::new();
        host.entries.insert(format!("i/{BOB}"), vec![99, 1, 2, 3]);
        host
    };
    let mut asking_past = unreadable();
    let expected_past = replay(&mut asking_past, &batches);
    assert_ne!(expected_past, expected, "Bob, always new, is judged otherwise");
    assert!(
        expected.iter().any(|(s, _)| !s.incidents.is_empty()),
        "the stream makes an incident"
    );
    assert!(expected.iter().any(|(_, c)| !c.is_empty()), "and the sweep closes it");

    memory::remember(64 << 20);
    let mut remembering = Host::new();
    let got = replay(&mut remembering, &batches);
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!(g == e, "batch {i} differs");
    }
    assert_eq!(got.len(), expected.len());
    assert_eq!(remembering.entries, asking.entries);
    assert!(
        remembering.asked * 3 < asking.asked,
        "asked for {} keys remembering, {} not",
        remembering.asked,
        asking.asked
    );

    memory::remember(64 << 20);
    let mut remembering_past = unreadable();
    assert!(replay(&mut remembering_past, &batches) == expected_past);
    assert_eq!(remembering_past.entries, asking_past.entries);

    // A budget too small to hold anything: asked every time, the same results.
    memory::remember(1);
    let mut small = Host::new();
    assert_eq!(replay(&mut small, &batches), expected);
    assert_eq!(small.asked, asking.asked);

    // The host drops a batch's writes (its file is read again) and says so: the batch is
    // scored again as the first time.
    memory::remember(64 << 20);
    let mut again = Host::new();
    let before = again.entries.clone();
    let first = again.score(batches[0].clone());
    again.entries = before;
    memory::forget();
    assert_eq!(again.score(batches[0].clone()), first);
    assert_eq!(replay(&mut again, &batches[1..]), expected[1..]);
    assert_eq!(again.entries, asking.entries);
}

#[test]
fn an_instance_that_holds_its_writes_scores_the_same_and_flushes_what_a_host_would_store() {
    let batches = days_then_an_attack();
    let mut writing = Host::new();
    let expected = replay(&mut writing, &batches);
    let judged = |out: &[(Scored, Vec<Incident>)]| -> Vec<(Vec<Verdict>, Vec<Incident>, Vec<Incident>)> {
        out.iter()
            .map(|(s, closed)| (s.verdicts.clone(), s.incidents.clone(), closed.clone()))
            .collect()
    };
    // A budget that holds everything, one that is reached every few batches (an identity's
    // baseline counts as 64 KiB), one reached by every batch.
    for budget in [64 << 20, 200 << 10, 1] {
        memory::remember(budget);
        memory::hold();
        let mut holding = Host::new();
        holding.holding = true;
        let got = replay(&mut holding, &batches);
        assert!(judged(&got) == judged(&expected), "budget {budget}: the scores differ");
        holding.apply(&memory::flush(""));
        assert_eq!(holding.entries, writing.entries, "budget {budget}");
        assert!(memory::flush("").is_empty(), "budget {budget}: flushed twice");
        if budget == 64 << 20 {
            assert!(
                got.iter().all(|(s, _)| s.writes.is_empty()),
                "nothing handed over early"
            );
            assert!(
                holding.written < writing.written,
                "{} writes held, {} not",
                holding.written,
                writing.written
            );
        }
    }

    // A flush by prefix hands over only that part; an incident closed by a batch goes as a
    // removal; what was never stored and is gone is not written.
    memory::remember(64 << 20);
    memory::hold();
    let mut host = Host::new();
    for batch in &batches {
        host.score(batch.clone());
    }
    let incidents = memory::flush("n/");
    assert!(!incidents.is_empty() && incidents.iter().all(|(k, _)| k.starts_with("n/")));
    assert!(memory::flush("n/").is_empty());
    let rest = memory::flush("");
    assert!(rest.iter().any(|(k, _)| k.starts_with("i/")) && rest.iter().all(|(k, _)| !k.starts_with("n/")));
    // Forgetting drops what was held.
    host.score(batches[0].clone());
    memory::forget();
    assert!(memory::flush("").is_empty());
}
