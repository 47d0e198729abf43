//! The reasons an event stands out, with their points, and what each event teaches the
//! baselines.
//!
//! Baseline-based reasons (a network, country, user agent, region or API new to the identity,
//! an unusual hour, a call burst, a dormant identity back) are raised only once the identity is
//! past learning: its own baseline, or for a role's session that is still learning, the role's.
//! Their points are weighted by how established the baseline is and by how rare the value is
//! in the whole account (a network the account uses every day counts for less). Rules that need
//! no baseline: root usage, a console sign-in without MFA, an instance's credentials used from
//! outside AWS or against another account, one access key from two networks within minutes, a
//! penetration-testing distribution's user agent, the sensitive categories (weighted down when
//! the identity does this often), a discovery burst and a burst of denied calls.

use super::baseline::{self, AccountBaseline, AccountValue, IdentityBaseline, KeyUse, Seen};
use super::identity::{Identity, Kind};
use super::{Loaded, Observation, Reason, Settings, DAY, HOUR, MINUTE};
use crate::categorize::Action;
use crate::model::Outcome;

/// Autonomous systems that are Amazon's own: a call from them comes from inside AWS.
pub const AWS_ASNS: &[u32] = &[7224, 8987, 9059, 10124, 14618, 16509, 17493, 38895, 39111, 62785];

/// Calls that change who may read a copy of data: sharing a snapshot or an image with another
/// account, a bucket's policy or ACL.
pub const SHARING: &[&str] = &[
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
    "ModifyDBSnapshotAttribute",
    "ModifyDBClusterSnapshotAttribute",
    "PutBucketPolicy",
    "PutBucketAcl",
    "PutObjectAcl",
];

/// The window bursts are counted in.
pub const WINDOW_MS: i64 = 10 * MINUTE;
/// Distinct read APIs, over at least `DISCOVERY_SERVICES` services, in one window.
pub const DISCOVERY_READS: usize = 20;
pub const DISCOVERY_SERVICES: usize = 3;
/// Distinct APIs denied in one window.
pub const DENIED_APIS: usize = 6;
/// Two networks for one access key within this long.
pub const KEY_NETWORKS_MS: i64 = 10 * MINUTE;
/// An identity silent this long is dormant.
pub const DORMANT_MS: i64 = 30 * DAY;

fn reason(reasons: &mut Vec<Reason>, code: &'static str, points: f64, text: String) {
    let points = points.round().clamp(0.0, 100.0) as u8;
    if points > 0 {
        reasons.push(Reason { code, text, points });
    }
}

/// How much a value new to an identity counts, by how the account as a whole uses it.
fn rarity(seen: Option<&Seen>, account_events: u64) -> f64 {
    match seen {
        None => 1.0,
        Some(s) if s.n < 3 || (s.n as f64) < 0.001 * account_events as f64 => 0.7,
        Some(s) if (s.n as f64) < 0.05 * account_events as f64 => 0.4,
        Some(_) => 0.2,
    }
}

fn account_note(seen: Option<&Seen>) -> &'static str {
    if seen.is_none() {
        " (new to the account too)"
    } else {
        ""
    }
}

/// `n minutes`, or `1 minute`.
fn minutes(n: i64) -> String {
    if n == 1 {
        "1 minute".into()
    } else {
        format!("{n} minutes")
    }
}

/// The hour of the day (UTC) of `t`.
fn hour(t: i64) -> usize {
    (t.rem_euclid(DAY) / HOUR) as usize
}

/// The reasons `ev` stands out, judged against what was learned before it. Updates the
/// identity's burst window.
pub fn judge(settings: &Settings, loaded: &mut Loaded, id: &Identity, ev: &Observation, t: i64) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let api = ev.api();
    let name = ev.event_name.as_deref().unwrap_or("(no name)");
    let account = id.account.as_deref().and_then(|a| loaded.accounts.get(a));
    // How the account uses the event's value of a kind.
    let value = |kind: &str| -> Option<Seen> { loaded.values.get(ev.value_key(kind)?).map(|x| x.seen()) };
    let established = |b: &&IdentityBaseline| b.established(t, settings.learning_ms, settings.learning_events);
    let own = loaded.identities.get(&id.key);
    let base = own.filter(established).or_else(|| {
        id.parent
            .as_ref()
            .and_then(|p| loaded.identities.get(p))
            .filter(established)
    });
    // How the identity used the event's API (looked up once).
    let api_seen = base.and_then(|b| b.apis.get(api)).copied();
    let habitual_api = api_seen.is_some_and(|s| s.n >= 3);
    let established_now = base.is_some();

    if let Some(b) = base {
        let e = if b.events >= 4 * u64::from(settings.learning_events) {
            1.0
        } else {
            0.8
        };
        let acct_events = account.map_or(0, |a| a.events);
        if let Some(asn) = ev.public_asn() {
            if !b.asns.contains_key(&asn) {
                let seen = value("asn");
                let seen = seen.as_ref();
                let org = ev
                    .network
                    .as_ref()
                    .and_then(|n| n.as_org.as_deref())
                    .unwrap_or("unknown organization");
                reason(
                    &mut reasons,
                    "new_asn_for_identity",
                    45.0 * e * rarity(seen, acct_events),
                    format!(
                        "first call from AS{asn} ({org}) for this identity{}",
                        account_note(seen)
                    ),
                );
            }
        }
        if let Some(country) = ev.country() {
            if !b.countries.contains_key(country) {
                let seen = value("country");
                let seen = seen.as_ref();
                reason(
                    &mut reasons,
                    "new_country_for_identity",
                    35.0 * e * rarity(seen, acct_events),
                    format!(
                        "first call from country {country} for this identity{}",
                        account_note(seen)
                    ),
                );
            }
        }
        if let Some(family) = ev.prepared.agent_family.as_deref() {
            if !b.agents.contains_key(family) {
                let seen = value("agent");
                let seen = seen.as_ref();
                reason(
                    &mut reasons,
                    "new_user_agent_for_identity",
                    10.0 * e * rarity(seen, acct_events),
                    format!(
                        "first call with user agent {family} for this identity{}",
                        account_note(seen)
                    ),
                );
            }
        }
        if let Some(region) = ev.region.as_deref() {
            if !b.regions.contains_key(region) {
                let seen = value("region");
                let seen = seen.as_ref();
                reason(
                    &mut reasons,
                    "new_region_for_identity",
                    15.0 * e * rarity(seen, acct_events),
                    format!("first call in region {region} for this identity{}", account_note(seen)),
                );
            }
        }
        match api_seen {
            None => {
                let seen = value("api");
                let seen = seen.as_ref();
                let weight = if ev.read_only { 8.0 } else { 15.0 };
                reason(
                    &mut reasons,
                    "new_api_for_identity",
                    weight * e * rarity(seen, acct_events),
                    format!("first {name} call by this identity{}", account_note(seen)),
                );
            }
            Some(s) if s.n <= 2 && b.events >= 200 => reason(
                &mut reasons,
                "rare_api_for_identity",
                5.0 * e,
                format!("{name} is rare for this identity ({} of {} calls)", s.n, b.events),
            ),
            Some(_) => {}
        }
        let h = hour(t);
        let near = b.hours[h] + b.hours[(h + 1) % 24] + b.hours[(h + 23) % 24];
        if b.events >= 200 && near * 200 < b.events {
            reason(
                &mut reasons,
                "unusual_hour",
                15.0 * e,
                format!("a call at {h:02}:00 UTC, an hour this identity is almost never active"),
            );
        }
        if let Some(own) = own {
            if t - own.last >= DORMANT_MS && own.events > 0 {
                reason(
                    &mut reasons,
                    "dormant_identity",
                    25.0,
                    format!("first call after {} days without any", (t - own.last) / DAY),
                );
            }
        }
        let minute_calls = match own {
            Some(o) if o.minute == t.div_euclid(MINUTE) => o.minute_calls + 1,
            _ => 1,
        };
        let usual = b.events / b.active_minutes.max(1);
        let burst_at = (10 * usual).max(100);
        if minute_calls == burst_at {
            reason(
                &mut reasons,
                "call_burst",
                20.0,
                format!("{minute_calls} calls within a minute; this identity usually makes {usual}"),
            );
        }
    }

    // Rules that need no baseline.
    let principal = ev.principal.as_ref();
    let service_event = ev.event_type.as_deref() == Some("AwsServiceEvent");
    let invoked = principal.and_then(|p| p.invoked_by.as_deref()).is_some();
    if id.kind == Kind::Root && !service_event && !invoked {
        reason(&mut reasons, "root_usage", 45.0, format!("the root user called {name}"));
    }
    if ev.event_name.as_deref() == Some("ConsoleLogin")
        && ev.outcome == Outcome::Success
        && principal.and_then(|p| p.mfa_authenticated) == Some(false)
        && matches!(id.kind, Kind::User | Kind::Root)
    {
        reason(
            &mut reasons,
            "console_login_without_mfa",
            55.0,
            "a console sign-in without MFA".into(),
        );
    }
    if id.is_instance_session() {
        if let Some(asn) = ev.public_asn().filter(|a| !AWS_ASNS.contains(a)) {
            reason(
                &mut reasons,
                "instance_credentials_outside_aws",
                70.0,
                format!("an EC2 instance's role credentials used from outside AWS (AS{asn})"),
            );
        }
        let caller = principal.and_then(|p| p.account_id.as_deref());
        if let (Some(caller), Some(recipient)) = (caller, ev.recipient_account_id.as_deref()) {
            if caller != recipient {
                reason(
                    &mut reasons,
                    "instance_credentials_other_account",
                    60.0,
                    format!("an EC2 instance's role credentials of account {caller} used in account {recipient}"),
                );
            }
        }
    }
    if let (Some(key), Some(asn)) = (super::access_key(ev), ev.public_asn()) {
        if let Some(last) = loaded.keys.get(key) {
            let apart = (t - last.t).abs();
            let countries_differ = match (&last.country, ev.country()) {
                (Some(a), Some(b)) => a != b,
                _ => true,
            };
            if last.asn != asn
                && apart <= KEY_NETWORKS_MS
                && countries_differ
                && !AWS_ASNS.contains(&asn)
                && !AWS_ASNS.contains(&last.asn)
            {
                reason(
                    &mut reasons,
                    "access_key_two_networks",
                    50.0,
                    format!(
                        "access key {key} used from AS{} and AS{asn} within {}",
                        last.asn,
                        minutes(apart / MINUTE + 1)
                    ),
                );
            }
        }
    }
    if ev.prepared.pentest {
        reason(
            &mut reasons,
            "pentest_user_agent",
            50.0,
            "a user agent of a penetration-testing distribution".into(),
        );
    }
    let flags = ev.category.flags;
    let mut sensitive = |on: bool, code: &'static str, points: f64, what: &str| {
        if !on {
            return;
        }
        let mut points = points;
        let mut text = format!("{name}: {what}");
        if habitual_api {
            points *= 0.4;
            text.push_str(" (this identity does this regularly)");
        }
        if ev.outcome != Outcome::Success {
            points *= 0.5;
            text.push_str(" (attempted; the call failed)");
        }
        reason(&mut reasons, code, points, text);
    };
    sensitive(
        flags.logging_tampering,
        "logging_tampering",
        55.0,
        "logging or monitoring turned off or narrowed",
    );
    sensitive(
        flags.protection_weakened,
        "protection_weakened",
        35.0,
        "a protection turned off or weakened",
    );
    sensitive(
        flags.network_exposure,
        "network_exposure",
        30.0,
        "something opened to the world",
    );
    sensitive(
        flags.credential_creation,
        "credential_creation",
        25.0,
        "long-lived credentials created",
    );
    sensitive(
        flags.permission_change,
        "permission_change",
        20.0,
        "a change of permissions",
    );
    sensitive(
        SHARING.contains(&name),
        "data_sharing",
        30.0,
        "who may read a snapshot, image or bucket changed (how data is taken out of an account)",
    );

    // Bursts, in the identity's own ten-minute window.
    let new = || IdentityBaseline::new(t);
    baseline::update(&mut loaded.identities, &id.key, new, |own| {
        // The window only moves forward: a late event (files of several regions or accounts read
        // one after the other) is not counted in a window it does not belong to, nor resets it.
        let at = t.div_euclid(WINDOW_MS);
        if at > own.window.at {
            own.window = baseline::Window {
                at,
                ..Default::default()
            };
        }
        let current = at == own.window.at;
        let w = &mut own.window;
        let mut bursts = Vec::new();
        if current {
            w.calls += 1;
        }
        if current && ev.category.action == Action::Read && w.reads.len() < baseline::MAX_WINDOW_NAMES {
            if !w.reads.contains(api) {
                w.reads.insert(api.to_owned());
            }
            if !w.services.contains(&ev.category.service) {
                w.services.insert(ev.category.service.clone());
            }
            if w.reads.len() >= DISCOVERY_READS
                && w.services.len() >= DISCOVERY_SERVICES
                && w.reads.len() as u64 * 10 >= w.calls * 8
                && w.raised.insert("discovery_burst".into())
            {
                bursts.push((
                    "discovery_burst",
                    40.0,
                    format!(
                        "{} distinct read calls over {} services within ten minutes (enumeration)",
                        w.reads.len(),
                        w.services.len()
                    ),
                ));
            }
        }
        if current && ev.outcome == Outcome::Denied && w.denied.len() < baseline::MAX_WINDOW_NAMES {
            w.denied.insert(api.to_owned());
            if w.denied.len() >= DENIED_APIS && w.raised.insert("denied_burst".into()) {
                bursts.push((
                    "denied_burst",
                    40.0,
                    format!("{} distinct calls denied within ten minutes", w.denied.len()),
                ));
            }
        }
        for (code, points, text) in bursts {
            let habit = own.habits.entry(code.into()).or_default();
            *habit += 1;
            if established_now && *habit > 3 {
                reason(
                    &mut reasons,
                    code,
                    points * 0.25,
                    format!("{text}; usual for this identity"),
                );
            } else {
                reason(&mut reasons, code, points, text);
            }
        }
    });

    // A chain: what stands out soon after an anomaly of the same identity.
    let others: u32 = reasons.iter().map(|r| u32::from(r.points)).sum();
    if let Some(Some(open)) = loaded.incidents.get(&id.key) {
        if others >= 15 && t - open.last <= settings.incident_gap_ms {
            reason(
                &mut reasons,
                "follows_anomaly",
                25.0,
                format!(
                    "{} minutes after another anomaly of this identity",
                    (t - open.last).max(0) / MINUTE
                ),
            );
        }
    }
    reasons
}

fn learn_identity(b: &mut IdentityBaseline, ev: &Observation, api: &str, family: Option<&str>, t: i64) {
    b.events += 1;
    b.first = b.first.min(t);
    b.last = b.last.max(t);
    baseline::see_str(&mut b.apis, api, t, baseline::MAX_APIS);
    if let Some(asn) = ev.public_asn() {
        baseline::see(&mut b.asns, asn, t, baseline::MAX_NETWORKS);
    }
    if let Some(c) = ev.country() {
        baseline::see_str(&mut b.countries, c, t, baseline::MAX_COUNTRIES);
    }
    if let Some(f) = family {
        baseline::see_str(&mut b.agents, f, t, baseline::MAX_AGENTS);
    }
    if let Some(r) = ev.region.as_deref() {
        baseline::see_str(&mut b.regions, r, t, baseline::MAX_REGIONS);
    }
    b.hours[hour(t)] += 1;
    match ev.outcome {
        Outcome::Success => {}
        Outcome::Failure => b.failed += 1,
        Outcome::Denied => b.denied += 1,
    }
    // As the window: only forward.
    let minute = t.div_euclid(MINUTE);
    if minute > b.minute {
        b.minute = minute;
        b.minute_calls = 0;
        b.active_minutes += 1;
    }
    if minute == b.minute {
        b.minute_calls += 1;
    }
}

/// Learns from `ev`: the identity's baseline, its role's, its account's, its access key's.
pub fn learn(loaded: &mut Loaded, id: &Identity, ev: &Observation, t: i64) {
    let api = ev.api();
    let family = ev.prepared.agent_family.as_deref();
    let new = || IdentityBaseline::new(t);
    baseline::update(&mut loaded.identities, &id.key, new, |b| {
        learn_identity(b, ev, api, family, t)
    });
    if let Some(parent) = &id.parent {
        // The role's window is never judged: keep it empty.
        baseline::update(&mut loaded.identities, parent, new, |b| {
            learn_identity(b, ev, api, family, t)
        });
    }
    if let Some(account) = &id.account {
        baseline::update(
            &mut loaded.accounts,
            account,
            || AccountBaseline::new(t),
            |a| a.events += 1,
        );
        for (_, key) in ev.prepared.values.iter() {
            let new = || AccountValue {
                v: baseline::VERSION,
                n: 0,
                t,
            };
            baseline::update(&mut loaded.values, key, new, |v| {
                v.n += 1;
                v.t = v.t.max(t);
            });
        }
    }
    if let (Some(key), Some(asn)) = (super::access_key(ev), ev.public_asn()) {
        let country = ev.country();
        let new = || KeyUse {
            v: baseline::VERSION,
            ..KeyUse::default()
        };
        baseline::update(&mut loaded.keys, key, new, |k| {
            k.t = t;
            k.asn = asn;
            if k.country.as_deref() != country {
                k.country = country.map(str::to_owned);
            }
        });
    }
}
