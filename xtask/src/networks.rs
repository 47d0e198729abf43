//! The free source-network databases `demo` installs: ip-location-db's country database as
//! published (MaxMind format; from NRO's delegation files, CC BY 4.0 by NRO, the package CC0),
//! and an ASN database written here in MaxMind's format from ip-location-db's ASN ranges
//! (RouteViews and DB-IP, CC BY 4.0), which that project publishes as CSV only. Both come from
//! the npm registry; nothing is committed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;

/// The packages (pinned: the same files for everyone until someone moves the pin).
const COUNTRY: (&str, &str) = (
    "https://registry.npmjs.org/@ip-location-db/geo-whois-asn-country-mmdb/-/geo-whois-asn-country-mmdb-2.3.2026061719.tgz",
    "package/geo-whois-asn-country.mmdb",
);
const ASN: &str = "https://registry.npmjs.org/@ip-location-db/asn/-/asn-2.3.2026061719.tgz";
const ASN_FILES: [&str; 2] = ["package/asn-ipv4.csv", "package/asn-ipv6.csv"];

/// A GeoLite2-ASN-shaped record.
#[derive(serde::Serialize)]
struct AsnRecord<'a> {
    autonomous_system_number: u32,
    autonomous_system_organization: &'a str,
}

/// Installs the two databases in `dir` (once); returns (ASN, country) paths.
pub fn install(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (asn, country) = (dir.join("asn.mmdb"), dir.join("country.mmdb"));
    if !country.exists() {
        eprintln!("downloading the country database (ip-location-db, geo-whois-asn-country)");
        fetch(COUNTRY.0, &[COUNTRY.1], dir)?;
        std::fs::rename(dir.join(COUNTRY.1.trim_start_matches("package/")), &country)?;
    }
    if !asn.exists() {
        eprintln!("downloading the ASN ranges (ip-location-db, asn) and writing them as a MaxMind database");
        fetch(ASN, &ASN_FILES, dir)?;
        let csvs: Vec<PathBuf> = ASN_FILES
            .iter()
            .map(|f| dir.join(f.trim_start_matches("package/")))
            .collect();
        let tmp = dir.join("asn.mmdb.tmp");
        write_asn(&csvs, &tmp)?;
        std::fs::rename(&tmp, &asn)?;
        for csv in csvs {
            std::fs::remove_file(csv).ok();
        }
    }
    Ok((asn, country))
}

/// Downloads the tarball at `url` and extracts `members` into `dir` (Python's standard library:
/// the one tool the README asks a fresh machine for besides Rust).
pub(crate) fn fetch(url: &str, members: &[&str], dir: &Path) -> Result<()> {
    const SCRIPT: &str = r#"
import io, os, sys, tarfile, urllib.request
url, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
data = urllib.request.urlopen(url, timeout=120).read()
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
    for name in members:
        src = tar.extractfile(name)
        if src is None:
            sys.exit(f"{url}: no {name} in the package")
        with open(os.path.join(out, os.path.basename(name)), "wb") as f:
            f.write(src.read())
"#;
    let status = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(url)
        .arg(dir)
        .args(members)
        .status()
        .context("running python3 to download the databases")?;
    if !status.success() {
        bail!("downloading {url} failed ({status})");
    }
    Ok(())
}

/// The CIDR blocks (start, prefix length) that cover `first..=last` exactly, in order: the
/// largest block aligned at each start that does not pass `last`. (Written here: the writer
/// crate's own range conversion subtracts byte by byte without borrowing, and overflows on
/// ranges such as 1.0.16.0-1.1.0.255.)
fn blocks(mut first: u128, last: u128) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    loop {
        let mut size = first.trailing_zeros().min(128);
        let end = |size: u32| {
            if size == 128 {
                u128::MAX
            } else {
                first + ((1u128 << size) - 1)
            }
        };
        while end(size) > last {
            size -= 1;
        }
        out.push((first, (128 - size) as u8));
        let block_end = end(size);
        if block_end >= last {
            return out;
        }
        first = block_end + 1;
    }
}

/// Writes ip-location-db's ASN ranges (`first,last,asn,organization`) as an IPv6 MaxMind
/// database whose IPv4 part sits at `::/96`, where readers look IPv4 addresses up.
fn write_asn(csvs: &[PathBuf], out: &Path) -> Result<()> {
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.binary_format_major_version = 2;
    db.metadata.database_type = "ip-location-db-ASN".into();
    db.metadata.languages = vec!["en".into()];
    db.metadata.build_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    db.metadata.description.insert(
        "en".into(),
        "ASN ranges of ip-location-db (RouteViews and DB-IP, CC BY 4.0), written by trailwatch's xtask".into(),
    );
    let mut records = HashMap::new();
    let mut ranges = 0usize;
    for csv in csvs {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(csv)
            .with_context(|| format!("reading {}", csv.display()))?;
        for (line, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{}: line {}", csv.display(), line + 1))?;
            let field = |i: usize| row.get(i).unwrap_or("");
            let parse = |text: &str| -> Result<IpAddr> {
                text.parse()
                    .with_context(|| format!("{}: line {}: {text:?} is no address", csv.display(), line + 1))
            };
            let (first, last): (u128, u128) = match (parse(field(0))?, parse(field(1))?) {
                (IpAddr::V4(a), IpAddr::V4(b)) => (a.to_ipv6_compatible().into(), b.to_ipv6_compatible().into()),
                (IpAddr::V6(a), IpAddr::V6(b)) => (a.into(), b.into()),
                (a, b) => bail!(
                    "{}: line {}: {a} and {b} are not of one IP version",
                    csv.display(),
                    line + 1
                ),
            };
            if first > last {
                bail!("{}: line {}: the range runs backwards", csv.display(), line + 1);
            }
            let number: u32 = field(2)
                .parse()
                .with_context(|| format!("{}: line {}: {:?} is no AS number", csv.display(), line + 1, field(2)))?;
            let key = (number, field(3).to_owned());
            let data = match records.get(&key) {
                Some(data) => *data,
                None => {
                    let data = db
                        .insert_value(AsnRecord {
                            autonomous_system_number: number,
                            autonomous_system_organization: &key.1,
                        })
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    records.insert(key, data);
                    data
                }
            };
            for (start, prefix) in blocks(first, last) {
                db.insert_node(IpAddrWithMask::new(IpAddr::V6(start.into()), prefix), data);
            }
            ranges += 1;
        }
    }
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    db.write_to(std::io::BufWriter::new(file))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
    eprintln!(
        "wrote {} ({ranges} ranges, {} autonomous systems)",
        out.display(),
        records.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::blocks;

    fn v4(text: &str) -> u128 {
        u128::from(text.parse::<std::net::Ipv4Addr>().unwrap().to_ipv6_compatible())
    }

    #[test]
    fn ranges_become_the_blocks_that_cover_them_exactly() {
        assert_eq!(blocks(v4("1.0.0.0"), v4("1.0.0.255")), vec![(v4("1.0.0.0"), 120)]);
        assert_eq!(
            blocks(v4("1.0.16.0"), v4("1.1.0.255")),
            vec![
                (v4("1.0.16.0"), 116),
                (v4("1.0.32.0"), 115),
                (v4("1.0.64.0"), 114),
                (v4("1.0.128.0"), 113),
                (v4("1.1.0.0"), 120),
            ]
        );
        assert_eq!(blocks(v4("1.2.3.4"), v4("1.2.3.4")), vec![(v4("1.2.3.4"), 128)]);
        assert_eq!(blocks(0, u128::MAX), vec![(0, 0)]);
        let v6 = |t: &str| u128::from(t.parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(
            blocks(v6("2600:1f18::"), v6("2600:1f1f:ffff:ffff:ffff:ffff:ffff:ffff")),
            vec![(v6("2600:1f18::"), 29)]
        );
    }
}
