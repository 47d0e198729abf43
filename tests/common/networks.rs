//! Test databases for source-network lookups.

use std::path::{Path, PathBuf};

use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;

/// A GeoLite2-ASN record: the number a uint32.
#[derive(serde::Serialize)]
struct Asn32 {
    autonomous_system_number: u32,
    autonomous_system_organization: &'static str,
}

/// The same record as other writers store it: the number a uint64.
#[derive(serde::Serialize)]
struct Asn64 {
    autonomous_system_number: u64,
    autonomous_system_organization: &'static str,
}

/// An ip-location-db country record.
#[derive(serde::Serialize)]
struct Country {
    country_code: &'static str,
}

fn database(name: &str) -> Database {
    let mut db = Database::default();
    db.metadata.binary_format_major_version = 2;
    db.metadata.database_type = format!("trailwatch-test-{name}");
    db
}

fn save(db: &Database, path: PathBuf) -> PathBuf {
    db.write_to(std::fs::File::create(&path).unwrap()).unwrap();
    path
}

fn network(text: &str) -> IpAddrWithMask {
    text.parse().unwrap()
}

/// An ASN and a country database in MaxMind's format, shaped as GeoLite2-ASN and
/// ip-location-db's country file shape their records, for two public networks:
/// 54.240.0.0/16 (AS16509 "Example Cloud", US) and 81.2.69.0/24 (AS64500 "Example Telecom", GB).
pub fn databases(dir: &Path) -> (PathBuf, PathBuf) {
    let mut asn = database("asn");
    let cloud = asn
        .insert_value(Asn32 {
            autonomous_system_number: 16509,
            autonomous_system_organization: "Example Cloud",
        })
        .unwrap();
    asn.insert_node(network("54.240.0.0/16"), cloud);
    let telecom = asn
        .insert_value(Asn64 {
            autonomous_system_number: 64500,
            autonomous_system_organization: "Example Telecom",
        })
        .unwrap();
    asn.insert_node(network("81.2.69.0/24"), telecom);

    let mut country = database("country");
    let us = country.insert_value(Country { country_code: "US" }).unwrap();
    country.insert_node(network("54.240.0.0/16"), us);
    let gb = country.insert_value(Country { country_code: "GB" }).unwrap();
    country.insert_node(network("81.2.69.0/24"), gb);

    (
        save(&asn, dir.join("asn.mmdb")),
        save(&country, dir.join("country.mmdb")),
    )
}

/// An ASN and a country database for `networks`: (CIDR, ASN, organization, country).
pub fn databases_for(dir: &Path, networks: &[(&str, u32, &'static str, &'static str)]) -> (PathBuf, PathBuf) {
    let mut asn = database("asn");
    let mut country = database("country");
    for (cidr, number, org, code) in networks {
        let a = asn
            .insert_value(Asn32 {
                autonomous_system_number: *number,
                autonomous_system_organization: org,
            })
            .unwrap();
        asn.insert_node(network(cidr), a);
        let c = country.insert_value(Country { country_code: code }).unwrap();
        country.insert_node(network(cidr), c);
    }
    (
        save(&asn, dir.join("asn.mmdb")),
        save(&country, dir.join("country.mmdb")),
    )
}
