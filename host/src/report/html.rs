//! The report page: one HTML file with its styles, drawings (inline SVG) and a few lines of
//! script inside, so that it opens anywhere without a network.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::{Anomaly, IdentityEntry, IncidentEntry, ReportData, SourceEntry, DAY_MS};
use crate::output::scoring::severity;

/// Country outlines: code, name, label x, label y, path (see `world.tsv`'s header).
const WORLD: &str = include_str!("world.tsv");
/// The map's size in SVG units (one a degree).
const MAP_W: f64 = 360.0;
const MAP_H: f64 = 142.0;
/// MITRE ATT&CK tactics an incident can touch, in the kill chain's order, with their ids.
const TACTICS: [(&str, &str, &str); 8] = [
    ("initial-access", "TA0001", "Initial access"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege escalation"),
    ("defense-evasion", "TA0005", "Defense evasion"),
    ("credential-access", "TA0006", "Credential access"),
    ("discovery", "TA0007", "Discovery"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];
/// Incidents drawn in full (the strongest); the others are listed.
const INCIDENTS_SHOWN: usize = 100;
/// Identities shown in the activity table (those with anomalies first).
const IDENTITIES_SHOWN: usize = 40;
/// Networks listed under the map.
const NETWORKS_SHOWN: usize = 25;
/// Days drawn per identity (the latest).
const DAYS_SHOWN: i64 = 60;

/// Text safe in HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The last instant humantime writes (9999-12-31T23:59:59.999Z): later times are shown as it.
const LAST_MS: i64 = 253_402_300_799_999;

/// `2024-03-01 14:05:09 UTC`.
fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.clamp(0, LAST_MS) as u64);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", s.trim_end_matches('Z').replace('T', " "))
}

fn day(d: i64) -> String {
    time(d * DAY_MS)[..10].to_owned()
}

/// `12 345`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn pill(score: u8) -> String {
    let sev = severity(score);
    format!("<span class=\"pill {sev}\">{sev} · {score}</span>")
}

fn from(a: &Anomaly) -> String {
    let mut parts = Vec::new();
    if let Some(addr) = &a.address {
        parts.push(esc(addr));
    }
    if let Some(c) = &a.country {
        parts.push(esc(c));
    }
    match (a.asn, &a.org) {
        (Some(n), Some(o)) => parts.push(format!("AS{n} {}", esc(o))),
        (Some(n), None) => parts.push(format!("AS{n}")),
        _ => {}
    }
    parts.join(" · ")
}

fn reasons(a: &Anomaly) -> String {
    let mut out = String::from("<ul class=\"reasons\">");
    for (code, text) in &a.reasons {
        let _ = write!(out, "<li><code>{}</code> {}</li>", esc(code), esc(text));
    }
    out.push_str("</ul>");
    out
}

/// Renders the page; `generated_ms` is when, `origin` what it was made from (for the header).
pub fn render(data: &ReportData, generated_ms: i64, origin: &str) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let events: u64 = data.identities.iter().map(|(_, e)| e.events).sum();
    let anomalies: u64 = data.identities.iter().map(|(_, e)| e.anomalies).sum();
    let first = data.identities.iter().map(|(_, e)| e.first_ms).min();
    let last = data.identities.iter().map(|(_, e)| e.last_ms).max();
    let open = data.incidents.iter().filter(|i| i.incident.open).count();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>trailwatch report</title><style>{STYLE}</style></head><body>\
         <header><h1>trailwatch report</h1><p class=\"meta\">Made {} from {}.",
        time(generated_ms),
        esc(origin)
    );
    if let (Some(f), Some(l)) = (first, last) {
        let _ = write!(h, " Activity from {} to {}.", time(f), time(l));
    }
    let _ = write!(
        h,
        "</p><div class=\"totals\">\
         <div><b id=\"n-identities\">{}</b> identities</div>\
         <div><b id=\"n-events\">{}</b> events by them</div>\
         <div><b id=\"n-anomalies\">{}</b> anomalous</div>\
         <div><b id=\"n-incidents\">{}</b> incidents ({} open)</div></div>\
         <nav><a href=\"#incidents\">Incidents</a><a href=\"#map\">Where activity came from</a>\
         <a href=\"#identities\">Identities</a><a href=\"#anomalies\">Top anomalies</a></nav></header><main>",
        count(data.identities.len() as u64),
        count(events),
        count(anomalies),
        count(data.incidents.len() as u64),
        open
    );
    incidents(&mut h, &data.incidents);
    map(&mut h, &data.sources);
    identities(&mut h, &data.identities, generated_ms);
    top_anomalies(&mut h, &data.anomalies);
    let _ = write!(
        h,
        "</main><footer>Scores, reasons and incidents are trailwatch's (README, \"Pattern of life\"). \
         Map: Natural Earth 1:110m countries (public domain) through world-atlas (ISC).</footer>\
         <script>{SCRIPT}</script></body></html>"
    );
    h.push('\n');
    h
}

fn incidents(h: &mut String, incidents: &[IncidentEntry]) {
    h.push_str("<section id=\"incidents\"><h2>Incidents</h2>");
    if incidents.is_empty() {
        h.push_str("<p class=\"empty\">No incident: no identity's anomalies formed a chain.</p>");
    }
    for entry in incidents.iter().take(INCIDENTS_SHOWN) {
        let i = &entry.incident;
        let _ = write!(
            h,
            "<article class=\"incident\" id=\"{id}\" data-incident=\"{id}\"><header>{pill} <b>{id}</b> \
             <span class=\"status {status}\">{status}</span> <span class=\"who\">{who}</span></header>\
             <p class=\"summary\">{summary}</p><p class=\"meta\">{first} → {last} ({dur}), {n} anomalies, revision {rev}: {change}</p>",
            id = esc(&i.id),
            pill = pill(i.score),
            status = if i.open { "open" } else { "closed" },
            who = esc(&i.identity),
            summary = esc(&i.summary),
            first = time(i.first_ms),
            last = time(i.last_ms),
            dur = duration(i.last_ms.saturating_sub(i.first_ms)),
            n = i.anomalies,
            rev = i.revision,
            change = esc(&i.change),
        );
        h.push_str("<ol class=\"chain\">");
        for (name, id, label) in TACTICS {
            let on = i.tactics.iter().any(|t| t == name);
            let _ = write!(
                h,
                "<li class=\"tactic{}\" title=\"MITRE ATT&amp;CK {id}\">{label}</li>",
                if on { " on" } else { "" }
            );
        }
        h.push_str("</ol>");
        timeline(h, entry);
        if !entry.events.is_empty() {
            h.push_str("<table class=\"events\"><thead><tr><th>Time</th><th>Call</th><th>From</th><th>Score</th><th>Why</th></tr></thead><tbody>");
            for a in &entry.events {
                let _ = write!(
                    h,
                    "<tr data-event=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&a.event_id),
                    time(a.time_ms),
                    esc(&a.api),
                    from(a),
                    pill(a.score),
                    reasons(a)
                );
            }
            h.push_str("</tbody></table>");
        }
        let missing = i.event_ids.len().saturating_sub(entry.events.len());
        if missing > 0 {
            let _ = write!(
                h,
                "<p class=\"meta\">{missing} of its events are listed by id only (scored before the report kept them): {}</p>",
                esc(&i
                    .event_ids
                    .iter()
                    .filter(|id| !entry.events.iter().any(|e| &e.event_id == *id))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "))
            );
        }
        h.push_str("</article>");
    }
    if incidents.len() > INCIDENTS_SHOWN {
        let _ = write!(
            h,
            "<p class=\"meta\">{} weaker incidents not drawn: {}</p>",
            incidents.len() - INCIDENTS_SHOWN,
            incidents[INCIDENTS_SHOWN..]
                .iter()
                .map(|e| format!(
                    "{} ({}, {})",
                    esc(&e.incident.id),
                    e.incident.score,
                    esc(&e.incident.identity)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    h.push_str("</section>");
}

/// An incident's events on a time axis: one mark per event, its call written by it.
fn timeline(h: &mut String, entry: &IncidentEntry) {
    let events = &entry.events;
    if events.is_empty() {
        return;
    }
    let (w, left, right) = (960.0, 20.0, 220.0);
    let first = events.iter().map(|e| e.time_ms).min().unwrap_or(0);
    let last = events.iter().map(|e| e.time_ms).max().unwrap_or(0);
    let span = last.saturating_sub(first).max(1) as f64;
    let rows = events.len().min(12);
    let height = 40.0 + 18.0 * rows as f64;
    let _ = write!(
        h,
        "<svg class=\"timeline\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"timeline of {}\">\
         <line x1=\"{left}\" y1=\"24\" x2=\"{}\" y2=\"24\" class=\"axis\"/>\
         <text x=\"{left}\" y=\"14\" class=\"tick\">{}</text><text x=\"{}\" y=\"14\" class=\"tick\" text-anchor=\"end\">{}</text>",
        esc(&entry.incident.id),
        w - right,
        time(first),
        w - right,
        time(last)
    );
    for (n, e) in events.iter().enumerate() {
        let x = left + e.time_ms.saturating_sub(first) as f64 / span * (w - left - right);
        let row = n % rows;
        let y = 40.0 + 18.0 * row as f64;
        let sev = severity(e.score);
        let _ = write!(
            h,
            "<g class=\"mark {sev}\"><title>{} {} — score {}</title><line x1=\"{x:.1}\" y1=\"24\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <circle cx=\"{x:.1}\" cy=\"24\" r=\"5\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            time(e.time_ms),
            esc(&e.api),
            e.score,
            y - 4.0,
            x + 4.0,
            y,
            esc(e.api.split(':').nth(1).unwrap_or(&e.api))
        );
    }
    h.push_str("</svg>");
}

fn map(h: &mut String, sources: &[SourceEntry]) {
    let mut by_country: HashMap<&str, (u64, u64)> = HashMap::new();
    for s in sources {
        if let Some(c) = &s.country {
            let e = by_country.entry(c.as_str()).or_default();
            e.0 += s.events;
            e.1 += s.anomalies;
        }
    }
    let max = by_country.values().map(|v| v.0).max().unwrap_or(0);
    let _ = write!(
        h,
        "<section id=\"map\"><h2>Where activity came from</h2>\
         <svg class=\"world\" viewBox=\"0 0 {MAP_W} {MAP_H}\" role=\"img\" aria-label=\"world map of source countries\">\
         <rect width=\"{MAP_W}\" height=\"{MAP_H}\" class=\"sea\"/>"
    );
    let mut marks = String::new();
    let mut drawn = 0usize;
    for line in WORLD.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split('\t');
        let (Some(code), Some(name), Some(x), Some(y), Some(path)) = (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let (events, anomalous) = by_country.get(code).copied().unwrap_or((0, 0));
        let fill = if events == 0 {
            "#e5e7eb".to_owned()
        } else {
            shade((events as f64).ln_1p() / (max as f64).ln_1p().max(1e-9))
        };
        let _ = write!(
            h,
            "<path d=\"{path}\" fill=\"{fill}\" data-cc=\"{code}\" class=\"country{}\"><title>{} ({code}): {} events, {} anomalous</title></path>",
            if anomalous > 0 { " anomalous" } else { "" },
            esc(name),
            count(events),
            count(anomalous)
        );
        drawn += 1;
        if anomalous > 0 {
            let r = 1.5 + (anomalous as f64).sqrt().min(6.0);
            let _ = write!(
                marks,
                "<circle class=\"hot\" data-cc=\"{code}\" cx=\"{x}\" cy=\"{y}\" r=\"{r:.1}\"><title>{}: {} anomalous events</title></circle>",
                esc(name),
                count(anomalous)
            );
        }
    }
    let _ = write!(h, "{marks}</svg>");
    let _ = write!(
        h,
        "<p class=\"legend\"><span class=\"swatch low\"></span>few events <span class=\"swatch high\"></span>many events \
         <span class=\"dot\"></span>anomalous sources ({drawn} countries drawn). Addresses without a country: private, \
         AWS-internal, or not in the country database.</p>"
    );
    h.push_str("<table class=\"networks\"><thead><tr><th>Country</th><th>Network</th><th>Events</th><th>Anomalous</th><th>Last seen</th></tr></thead><tbody>");
    let mut shown: Vec<&SourceEntry> = sources.iter().collect();
    // Anomalous networks first, then by events.
    shown.sort_by(|a, b| (b.anomalies > 0).cmp(&(a.anomalies > 0)).then(b.events.cmp(&a.events)));
    for s in shown.into_iter().take(NETWORKS_SHOWN) {
        let network = match (s.asn, &s.org) {
            (Some(n), Some(o)) => format!("AS{n} {}", esc(o)),
            (Some(n), None) => format!("AS{n}"),
            _ => format!("({} addresses)", esc(&s.scope)),
        };
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{}</td><td>{network}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if s.anomalies > 0 { "anomalous" } else { "" },
            esc(s.country.as_deref().unwrap_or("—")),
            count(s.events),
            count(s.anomalies),
            time(s.last_ms)
        );
    }
    h.push_str("</tbody></table></section>");
}

/// A blue from light (0) to dark (1).
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(199.0, 30.0),
        mix(221.0, 78.0),
        mix(240.0, 140.0)
    )
}

fn identities(h: &mut String, identities: &[(String, IdentityEntry)], generated_ms: i64) {
    // The latest day of activity, but never after the report was made (an event stamped in the
    // future must not push everyone's days out of the window).
    let last_day = identities
        .iter()
        .filter_map(|(_, e)| e.days.keys().next_back())
        .max()
        .copied()
        .unwrap_or(0)
        .min(generated_ms.div_euclid(DAY_MS));
    let first_day = identities
        .iter()
        .filter_map(|(_, e)| e.days.keys().next())
        .min()
        .copied()
        .unwrap_or(0)
        .max(last_day - DAYS_SHOWN + 1);
    let days = (last_day - first_day + 1).max(1);
    let mut shown: Vec<&(String, IdentityEntry)> = identities.iter().collect();
    shown.sort_by(|a, b| {
        b.1.anomalies
            .cmp(&a.1.anomalies)
            .then(b.1.max_score.cmp(&a.1.max_score))
            .then(b.1.events.cmp(&a.1.events))
    });
    let _ = write!(
        h,
        "<section id=\"identities\"><h2>Identities</h2><p class=\"meta\">Calls per day from {} to {} \
         (bars; red: anomalous calls), the {} most anomalous or active of {} identities.</p>\
         <input type=\"search\" class=\"filter\" data-table=\"identity-table\" placeholder=\"Filter identities\">\
         <table id=\"identity-table\"><thead><tr><th>Identity</th><th>Events</th><th>Anomalous</th><th>Top score</th><th>Activity</th><th>Seen</th></tr></thead><tbody>",
        day(first_day),
        day(last_day),
        shown.len().min(IDENTITIES_SHOWN),
        identities.len()
    );
    for (name, e) in shown.into_iter().take(IDENTITIES_SHOWN) {
        let peak = e
            .days
            .range(first_day..=last_day)
            .map(|(_, d)| d.0)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let bar_w = 240.0 / days as f64;
        let mut svg = String::from("<svg class=\"strip\" viewBox=\"0 0 240 24\" preserveAspectRatio=\"none\">");
        for (d, (n, a)) in e.days.range(first_day..=last_day) {
            let x = (d - first_day) as f64 * bar_w;
            let bh = 2.0 + 22.0 * (*n as f64).ln_1p() / peak.ln_1p();
            let _ = write!(
                svg,
                "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" class=\"{}\"><title>{}: {n} calls, {a} anomalous</title></rect>",
                24.0 - bh,
                (bar_w - 0.3).max(0.3),
                if *a > 0 { "bad" } else { "ok" },
                day(*d)
            );
        }
        svg.push_str("</svg>");
        let _ = write!(
            h,
            "<tr class=\"{}\"><td class=\"who\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{svg}</td><td>{} → {}</td></tr>",
            if e.anomalies > 0 { "anomalous" } else { "" },
            esc(name),
            count(e.events),
            count(e.anomalies),
            if e.anomalies > 0 { pill(e.max_score) } else { "—".to_owned() },
            &time(e.first_ms)[..10],
            &time(e.last_ms)[..10]
        );
    }
    h.push_str("</tbody></table></section>");
}

fn top_anomalies(h: &mut String, anomalies: &[Anomaly]) {
    let _ = write!(
        h,
        "<section id=\"anomalies\"><h2>Top anomalies</h2>\
         <input type=\"search\" class=\"filter\" data-table=\"anomaly-table\" placeholder=\"Filter anomalies\">\
         <table id=\"anomaly-table\"><thead><tr><th>Score</th><th>Time</th><th>Identity</th><th>Call</th><th>From</th><th>Why</th><th>Incident</th></tr></thead><tbody>"
    );
    if anomalies.is_empty() {
        h.push_str("<tr><td colspan=\"7\" class=\"empty\">No anomalous event.</td></tr>");
    }
    let mut by_incident: BTreeMap<&str, usize> = BTreeMap::new();
    for a in anomalies {
        if let Some(i) = &a.incident {
            *by_incident.entry(i.as_str()).or_default() += 1;
        }
        let _ = write!(
            h,
            "<tr data-event=\"{}\" data-cc=\"{}\"><td>{}</td><td>{}</td><td class=\"who\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.event_id),
            esc(a.country.as_deref().unwrap_or("")),
            pill(a.score),
            time(a.time_ms),
            esc(&a.identity),
            esc(&a.api),
            from(a),
            reasons(a),
            a.incident
                .as_deref()
                .map(|i| format!("<a href=\"#{0}\">{0}</a>", esc(i)))
                .unwrap_or_default()
        );
    }
    h.push_str("</tbody></table></section>");
}

const STYLE: &str = r#"
:root{--fg:#1f2933;--muted:#616e7c;--line:#d9e2ec;--low:#9aa5b1;--medium:#f0b429;--high:#e66a1f;--critical:#c81e1e}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:#f7f9fb}
header{background:#102a43;color:#f0f4f8;padding:16px 28px}header h1{margin:0 0 4px;font-size:22px}
header .meta{color:#bcccdc;margin:0 0 10px}.totals{display:flex;gap:28px;flex-wrap:wrap}.totals b{font-size:20px;display:block}
nav{margin-top:10px}nav a{color:#9fb3c8;margin-right:18px;text-decoration:none}
main{padding:8px 28px 28px;max-width:1280px}section{margin-top:22px}h2{font-size:18px;border-bottom:2px solid var(--line);padding-bottom:4px}
table{border-collapse:collapse;width:100%;background:#fff;margin-top:8px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.who{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
code{font-size:12px}.meta{color:var(--muted)}.empty{color:var(--muted);font-style:italic}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;color:#fff;white-space:nowrap}
.pill.low{background:var(--low)}.pill.medium{background:var(--medium);color:#1f2933}.pill.high{background:var(--high)}.pill.critical{background:var(--critical)}
.incident{background:#fff;border:1px solid var(--line);border-left:5px solid var(--critical);border-radius:4px;padding:10px 14px;margin:12px 0}
.incident header{background:none;color:var(--fg);padding:0}.status{font-size:12px;border:1px solid var(--line);border-radius:3px;padding:0 6px}
.status.open{border-color:var(--critical);color:var(--critical)}.summary{font-size:15px;margin:6px 0}
.chain{list-style:none;display:flex;flex-wrap:wrap;gap:4px;padding:0;margin:8px 0}
.tactic{padding:2px 10px;background:#f0f4f8;color:#9aa5b1;font-size:12px;clip-path:polygon(0 0,92% 0,100% 50%,92% 100%,0 100%,8% 50%)}
.tactic.on{background:var(--critical);color:#fff;font-weight:600}
svg.timeline{width:100%;max-width:960px;display:block;background:#fbfcfd;border:1px solid var(--line);margin:6px 0}
.timeline .axis{stroke:#829ab1;stroke-width:2}.timeline .tick{font-size:11px;fill:var(--muted)}.timeline text{font-size:11px}
.mark line{stroke:#bcccdc}.mark circle{stroke:#fff;stroke-width:1.5}.mark.low circle{fill:var(--low)}.mark.medium circle{fill:var(--medium)}
.mark.high circle{fill:var(--high)}.mark.critical circle{fill:var(--critical)}
svg.world{width:100%;background:#fff;border:1px solid var(--line)}.sea{fill:#f4f8fc}
.country{stroke:#fff;stroke-width:.2}.country.anomalous{stroke:var(--critical);stroke-width:.5}.country:hover{stroke:#102a43;stroke-width:.6}
.hot{fill:var(--critical);fill-opacity:.75;stroke:#fff;stroke-width:.3}
.legend .swatch{display:inline-block;width:14px;height:10px;margin:0 4px 0 10px}.swatch.low{background:#c7ddf0}.swatch.high{background:#1e4e8c}
.legend .dot{display:inline-block;width:10px;height:10px;border-radius:5px;background:var(--critical);margin:0 4px 0 10px}
tr.anomalous td:first-child{border-left:3px solid var(--critical)}svg.strip{width:240px;height:24px;background:#f7f9fb}
.strip .ok{fill:#627d98}.strip .bad{fill:var(--critical)}.reasons{margin:0;padding-left:16px}
.filter{margin-top:6px;padding:4px 8px;width:320px;border:1px solid var(--line);border-radius:3px}
footer{padding:12px 28px;color:var(--muted);font-size:12px}
"#;

/// Filters of the two long tables; marks the page ready (the browser test waits for it).
const SCRIPT: &str = r#"
function filterRows(table, keep) {
  table.querySelectorAll('tbody tr').forEach(function (row) { row.hidden = !keep(row); });
}
document.querySelectorAll('input.filter').forEach(function (input) {
  var table = document.getElementById(input.dataset.table);
  input.addEventListener('input', function () {
    var q = input.value.toLowerCase();
    filterRows(table, function (row) { return q === '' || row.textContent.toLowerCase().indexOf(q) >= 0; });
  });
});
// A country's dot shows the anomalies from that country (by code, not by text).
document.querySelectorAll('svg.world .hot').forEach(function (dot) {
  dot.addEventListener('click', function () {
    var input = document.querySelector('input[data-table=anomaly-table]');
    input.value = '';
    input.placeholder = 'Anomalies from ' + dot.dataset.cc + ' (type to filter otherwise)';
    filterRows(document.getElementById('anomaly-table'), function (row) { return row.dataset.cc === dot.dataset.cc; });
    document.getElementById('anomalies').scrollIntoView();
  });
});
document.body.dataset.ready = 'yes';
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_numbers_grouped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(count(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(count(999), "999");
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(duration(3_720_000), "1 h 2 min");
    }

    fn hostile() -> ReportData {
        let evil = "<script>alert(1)</script>\"'&";
        let anomaly = Anomaly {
            event_id: format!("id{evil}"),
            time_ms: 1_700_000_000_000,
            identity: format!("arn:aws:iam::1:user/{evil}"),
            api: format!("iam:{evil}"),
            address: Some(evil.into()),
            country: Some(evil.into()),
            asn: Some(1),
            org: Some(evil.into()),
            score: 80,
            reasons: vec![(evil.into(), evil.into())],
            incident: Some(format!("inc-{evil}")),
        };
        let mut days = BTreeMap::new();
        days.insert(1_700_000_000_000 / DAY_MS, (3, 1));
        // An event stamped far in the future, past what a date can be written as.
        days.insert(i64::MAX / DAY_MS, (1, 0));
        ReportData {
            identities: vec![(
                anomaly.identity.clone(),
                IdentityEntry {
                    account: Some(evil.into()),
                    events: 4,
                    anomalies: 1,
                    max_score: 80,
                    first_ms: 1_700_000_000_000,
                    last_ms: i64::MAX,
                    days,
                    recent: vec![anomaly.clone()],
                },
            )],
            sources: vec![SourceEntry {
                country: Some(evil.into()),
                scope: evil.into(),
                asn: Some(1),
                org: Some(evil.into()),
                events: 4,
                anomalies: 1,
                last_ms: 1_700_000_000_000,
            }],
            anomalies: vec![anomaly.clone()],
            incidents: vec![IncidentEntry {
                incident: super::super::IncidentView {
                    id: format!("inc-{evil}"),
                    revision: 1,
                    identity: anomaly.identity.clone(),
                    account: None,
                    open: true,
                    summary: evil.into(),
                    change: evil.into(),
                    first_ms: 1_700_000_000_000,
                    last_ms: 1_700_000_000_000,
                    score: 80,
                    tactics: vec![evil.into(), "discovery".into()],
                    reasons: vec![evil.into()],
                    event_ids: vec![anomaly.event_id.clone(), evil.into()],
                    anomalies: 2,
                    countries: vec![evil.into()],
                    asns: vec![1],
                },
                events: vec![anomaly],
            }],
        }
    }

    #[test]
    fn text_from_events_cannot_make_markup_and_far_future_times_do_not_break_the_page() {
        let page = render(&hostile(), 1_700_000_100_000, "<b>origin</b>");
        // The page's own script is the only one; every hostile string came out escaped.
        assert_eq!(page.matches("<script>").count(), 1, "only the page's own script");
        assert!(!page.contains("alert(1)</script>"));
        assert!(!page.contains("<b>origin</b>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        // The identity's bar of the day it was active is drawn: the future day did not move the
        // window past it.
        assert!(page.contains("3 calls, 1 anomalous"), "the active day's bar");
        assert!(
            page.contains("9999-12-31"),
            "a time past 9999 is written as the last one"
        );
    }

    #[test]
    fn the_world_table_has_the_countries_lookups_name() {
        let codes: Vec<&str> = WORLD
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .collect();
        for c in ["US", "DE", "CN", "RU", "BR", "AU", "IN", "NL", "GB", "FR"] {
            assert!(codes.contains(&c), "{c} missing from world.tsv");
        }
        assert!(codes.len() > 150);
    }
}
