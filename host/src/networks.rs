//! Where activity comes from: the network (autonomous system number and organization) and the
//! country of an event's source address, from MaxMind-format databases (`.mmdb`) the user points
//! to: GeoLite2-ASN and GeoLite2-Country, DB-IP, or ip-location-db's files all work.
//!
//! Only a source that is an IP address is looked up, and only a public one: private ranges
//! (RFC 1918, carrier-grade NAT, IPv6 unique local), loopback, link-local and reserved ranges
//! (documentation, multicast, unspecified, `240.0.0.0/4`) are classified as such. A source that
//! is a service name or `AWS Internal` is not an address: the event's `source_kind` says so, and
//! it gets no `source_network`.
//!
//! The host does this (the lookups read a database file); it is I/O on the event's behalf, not a
//! decision: the pattern of life judges what the network means.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use maxminddb::Reader;
use serde::{Deserialize, Serialize};

/// Why a database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    #[error("cannot read the {what} database {path}: {message}")]
    Open {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
}

/// What kind of address a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// A routable address: looked up.
    Public,
    /// RFC 1918, carrier-grade NAT (`100.64.0.0/10`), IPv6 unique local (`fc00::/7`).
    Private,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Documentation, multicast, unspecified, broadcast and `240.0.0.0/4`: never a real caller.
    Reserved,
}

/// The `source_network` member of an event's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceNetwork {
    pub scope: Scope,
    /// The autonomous system the address belongs to, when the ASN database knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Its organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
    /// ISO 3166-1 alpha-2, when the country database knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A GeoLite2-ASN (and DB-IP, ip-location-db) record. The number is read as any unsigned
/// width: GeoLite2 stores a uint32, other writers a uint64.
#[derive(Deserialize)]
struct AsnRecord {
    autonomous_system_number: Option<serde_json::Value>,
    autonomous_system_organization: Option<String>,
}

/// A country record: GeoLite2-Country / DB-IP (`country.iso_code`) or ip-location-db
/// (`country_code`).
#[derive(Deserialize)]
struct CountryRecord {
    country: Option<IsoCode>,
    country_code: Option<String>,
}

#[derive(Deserialize)]
struct IsoCode {
    iso_code: Option<String>,
}

/// The databases, opened once and shared by every reader.
pub struct Networks {
    asn: Option<Reader<Vec<u8>>>,
    country: Option<Reader<Vec<u8>>>,
    /// What the configuration named, for `trailwatch` to say what it uses.
    pub description: String,
    /// Addresses looked up by any file so far, shared by the readers: a trail's sources recur
    /// from file to file. Emptied when it reaches [`SHARED_ENTRIES`].
    shared: Mutex<HashMap<String, Option<SourceNetwork>>>,
}

/// Addresses the shared cache holds at most (a few MiB).
const SHARED_ENTRIES: usize = 65_536;

impl std::fmt::Debug for Networks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

fn open(what: &'static str, path: &Path) -> Result<Reader<Vec<u8>>, NetworksError> {
    let failed = |message: String| NetworksError::Open {
        what,
        path: path.to_owned(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let reader = Reader::from_source(bytes).map_err(|e| failed(format!("not a MaxMind DB file: {e}")))?;
    Ok(reader)
}

impl Networks {
    /// Opens the ASN and country databases named; `None` when neither is.
    pub fn open(asn: Option<&Path>, country: Option<&Path>) -> Result<Option<Networks>, NetworksError> {
        if asn.is_none() && country.is_none() {
            return Ok(None);
        }
        let describe = |what: &str, path: Option<&Path>, reader: &Option<Reader<Vec<u8>>>| match (path, reader) {
            (Some(path), Some(r)) => format!("{what} {} ({})", path.display(), r.metadata().database_type),
            _ => format!("no {what} database"),
        };
        let asn_reader = asn.map(|p| open("ASN", p)).transpose()?;
        let country_reader = country.map(|p| open("country", p)).transpose()?;
        let description = format!(
            "{}; {}",
            describe("ASN", asn, &asn_reader),
            describe("country", country, &country_reader)
        );
        Ok(Some(Networks {
            asn: asn_reader,
            country: country_reader,
            description,
            shared: Mutex::default(),
        }))
    }

    /// The network of `source`, when it is an IP address.
    pub fn lookup(&self, source: &str) -> Option<SourceNetwork> {
        let address: IpAddr = source.trim().parse().ok()?;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let scope = scope(address);
        let mut network = SourceNetwork {
            scope,
            asn: None,
            as_org: None,
            country: None,
        };
        if scope != Scope::Public {
            return Some(network);
        }
        // A record the database lacks, or cannot decode, leaves the member out rather than the
        // event: one odd entry of a database is no reason to lose an event.
        if let Some(Ok(Some(r))) = self
            .asn
            .as_ref()
            .map(|db| db.lookup(address).and_then(|l| l.decode::<AsnRecord>()))
        {
            network.asn = r
                .autonomous_system_number
                .and_then(|n| n.as_u64())
                .and_then(|n| u32::try_from(n).ok());
            network.as_org = r.autonomous_system_organization;
        }
        if let Some(Ok(Some(r))) = self
            .country
            .as_ref()
            .map(|db| db.lookup(address).and_then(|l| l.decode::<CountryRecord>()))
        {
            network.country = r.country_code.or_else(|| r.country.and_then(|c| c.iso_code));
        }
        Some(network)
    }
}

/// Looks sources up once per file (a file's events come from few addresses), and once across
/// files through the shared cache.
pub struct Cache<'a> {
    networks: &'a Networks,
    seen: HashMap<String, Option<SourceNetwork>>,
}

impl<'a> Cache<'a> {
    pub fn new(networks: &'a Networks) -> Self {
        Cache {
            networks,
            seen: HashMap::new(),
        }
    }

    /// As [`Networks::lookup`], remembered.
    pub fn lookup(&mut self, source: &str) -> Option<&SourceNetwork> {
        if !self.seen.contains_key(source) {
            let found = self.networks.lookup_shared(source);
            self.seen.insert(source.to_owned(), found);
        }
        self.seen.get(source).and_then(Option::as_ref)
    }
}

impl Networks {
    /// As [`Networks::lookup`], through the cache the readers share.
    fn lookup_shared(&self, source: &str) -> Option<SourceNetwork> {
        if let Some(found) = self.shared.lock().ok().and_then(|s| s.get(source).cloned()) {
            return found;
        }
        let found = self.lookup(source);
        if let Ok(mut shared) = self.shared.lock() {
            if shared.len() >= SHARED_ENTRIES {
                shared.clear();
            }
            shared.insert(source.to_owned(), found.clone());
        }
        found
    }
}

/// What kind of address `address` is.
pub fn scope(address: IpAddr) -> Scope {
    match address {
        IpAddr::V4(v4) => scope_v4(v4),
        IpAddr::V6(v6) => scope_v6(v6),
    }
}

fn scope_v4(a: Ipv4Addr) -> Scope {
    let [first, second, ..] = a.octets();
    if a.is_loopback() {
        Scope::Loopback
    } else if a.is_link_local() {
        Scope::LinkLocal
    } else if a.is_private() || (first == 100 && (64..128).contains(&second)) {
        Scope::Private
    } else if a.is_documentation()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || first >= 240
        || first == 0
        || (first == 198 && (18..20).contains(&second))
    {
        Scope::Reserved
    } else {
        Scope::Public
    }
}

fn scope_v6(a: Ipv6Addr) -> Scope {
    let first = a.segments()[0];
    if a.is_loopback() {
        Scope::Loopback
    } else if a.is_unicast_link_local() {
        Scope::LinkLocal
    } else if a.is_unique_local() {
        Scope::Private
    } else if a.is_unspecified() || a.is_multicast() || (first == 0x2001 && a.segments()[1] == 0x0db8) {
        Scope::Reserved
    } else {
        Scope::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Scope {
        scope(text.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified_before_any_lookup() {
        assert_eq!(of("10.1.2.3"), Scope::Private);
        assert_eq!(of("172.16.0.1"), Scope::Private);
        assert_eq!(of("192.168.1.1"), Scope::Private);
        assert_eq!(of("100.64.0.1"), Scope::Private);
        assert_eq!(of("fd00::1"), Scope::Private);
        assert_eq!(of("127.0.0.1"), Scope::Loopback);
        assert_eq!(of("::1"), Scope::Loopback);
        assert_eq!(of("169.254.169.254"), Scope::LinkLocal);
        assert_eq!(of("fe80::1"), Scope::LinkLocal);
        assert_eq!(of("198.51.100.7"), Scope::Reserved);
        assert_eq!(of("2001:db8::1"), Scope::Reserved);
        assert_eq!(of("0.0.0.0"), Scope::Reserved);
        assert_eq!(of("250.1.1.1"), Scope::Reserved);
        assert_eq!(of("54.240.197.233"), Scope::Public);
        assert_eq!(of("2600:1f18::1"), Scope::Public);
        assert_eq!(of("100.128.0.1"), Scope::Public);
    }

    #[test]
    fn names_are_not_addresses_and_mapped_addresses_are_ipv4() {
        let none = Networks {
            asn: None,
            country: None,
            description: String::new(),
            shared: Mutex::default(),
        };
        assert_eq!(none.lookup("ec2.amazonaws.com"), None);
        assert_eq!(none.lookup("AWS Internal"), None);
        assert_eq!(none.lookup("::ffff:10.0.0.1").map(|n| n.scope), Some(Scope::Private));
        let public = none.lookup("54.240.197.233").unwrap();
        assert_eq!((public.scope, public.asn, public.country), (Scope::Public, None, None));
    }
}
