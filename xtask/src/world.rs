//! The world map of `trailwatch report`: country outlines as SVG paths, written once into
//! `host/src/report/world.tsv` (committed, ~90 KB) from world-atlas's 1:110m countries
//! (TopoJSON; ISC licence, from Natural Earth's public-domain data), with each country's
//! ISO 3166-1 alpha-2 code from i18n-iso-countries' code table (MIT), both from the npm
//! registry. `cargo run -p xtask -- world-map` writes it again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

const ATLAS: (&str, &str) = (
    "https://registry.npmjs.org/world-atlas/-/world-atlas-2.0.2.tgz",
    "package/countries-110m.json",
);
const CODES: (&str, &str) = (
    "https://registry.npmjs.org/i18n-iso-countries/-/i18n-iso-countries-7.14.0.tgz",
    "package/codes.json",
);

/// The map's extent: longitude -180..180, latitude 84..-58 (Antarctica left out), one SVG unit
/// a degree, rounded to a tenth.
const NORTH: f64 = 84.0;
const SOUTH: f64 = -58.0;

/// Downloads both packages into `work` and writes the table to `out`.
pub fn write(work: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(work)?;
    crate::networks::fetch(ATLAS.0, &[ATLAS.1], work)?;
    crate::networks::fetch(CODES.0, &[CODES.1], work)?;
    let atlas: Value = serde_json::from_slice(&std::fs::read(work.join("countries-110m.json"))?)?;
    let codes: Value = serde_json::from_slice(&std::fs::read(work.join("codes.json"))?)?;
    // numeric → alpha-2
    let mut alpha2 = HashMap::new();
    for row in codes.as_array().context("codes.json: not a list")? {
        let (a2, num) = (row[0].as_str().unwrap_or(""), row[2].as_str().unwrap_or(""));
        alpha2.insert(num.to_owned(), a2.to_owned());
    }
    let scale = &atlas["transform"]["scale"];
    let translate = &atlas["transform"]["translate"];
    let (sx, sy) = (scale[0].as_f64().unwrap_or(1.0), scale[1].as_f64().unwrap_or(1.0));
    let (tx, ty) = (
        translate[0].as_f64().unwrap_or(0.0),
        translate[1].as_f64().unwrap_or(0.0),
    );
    // Arcs: delta-encoded quantized positions → absolute (lon, lat).
    let arcs: Vec<Vec<(f64, f64)>> = atlas["arcs"]
        .as_array()
        .context("no arcs")?
        .iter()
        .map(|arc| {
            let (mut x, mut y) = (0i64, 0i64);
            arc.as_array()
                .map(|pts| {
                    pts.iter()
                        .map(|p| {
                            x += p[0].as_i64().unwrap_or(0);
                            y += p[1].as_i64().unwrap_or(0);
                            (x as f64 * sx + tx, y as f64 * sy + ty)
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let ring = |indices: &Value| -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for i in indices.as_array().into_iter().flatten() {
            let i = i.as_i64().unwrap_or(0);
            let mut arc = if i >= 0 {
                arcs[i as usize].clone()
            } else {
                let mut a = arcs[(!i) as usize].clone();
                a.reverse();
                a
            };
            if !pts.is_empty() {
                arc.remove(0);
            }
            pts.extend(arc);
        }
        pts
    };
    let mut table = String::from(
        "# trailwatch report world map: alpha-2 code, name, label x, label y, SVG path (x = longitude + 180, y = 84 - latitude).\n\
         # From world-atlas 2.0.2 countries-110m (ISC; Natural Earth, public domain) and i18n-iso-countries 7.14.0 codes (MIT).\n\
         # Written by `cargo run -p xtask -- world-map`.\n",
    );
    let mut written = 0;
    for g in atlas["objects"]["countries"]["geometries"]
        .as_array()
        .context("no countries")?
    {
        let id = g["id"].as_str().unwrap_or("");
        let name = g["properties"]["name"].as_str().unwrap_or("");
        let Some(code) = alpha2.get(id) else {
            // A few areas (Kosovo, Somaliland, N. Cyprus) have no ISO code; lookups never name them.
            continue;
        };
        let polygons: Vec<&Value> = match g["type"].as_str() {
            Some("Polygon") => vec![&g["arcs"]],
            Some("MultiPolygon") => g["arcs"].as_array().into_iter().flatten().collect(),
            _ => continue,
        };
        let mut path = String::new();
        let mut best: (f64, f64, f64) = (0.0, 0.0, -1.0);
        for polygon in polygons {
            for (n, r) in polygon.as_array().into_iter().flatten().enumerate() {
                let pts = ring(r);
                if pts.iter().all(|p| p.1 < SOUTH) {
                    continue;
                }
                let mut last = (i64::MIN, i64::MIN);
                let mut first = true;
                for &(lon, lat) in &pts {
                    let q = (
                        ((lon + 180.0) * 10.0).round() as i64,
                        ((NORTH - lat.max(SOUTH)) * 10.0).round() as i64,
                    );
                    if q == last {
                        continue;
                    }
                    // A ring crossing the antimeridian goes on from the map's other edge.
                    let jump = !first && (q.0 - last.0).abs() > 1800;
                    let _ = write!(
                        path,
                        "{}{} {}",
                        if first || jump { "M" } else { "L" },
                        tenth(q.0),
                        tenth(q.1)
                    );
                    last = q;
                    first = false;
                }
                path.push('Z');
                if n == 0 {
                    let (cx, cy, area) = centroid(&pts);
                    if area > best.2 {
                        best = (cx, cy, area);
                    }
                }
            }
        }
        if path.is_empty() {
            continue;
        }
        let (x, y) = (best.0 + 180.0, NORTH - best.1);
        let _ = writeln!(table, "{code}\t{name}\t{x:.1}\t{y:.1}\t{path}");
        written += 1;
    }
    if written < 150 {
        bail!("only {written} countries written; the atlas or the codes changed shape");
    }
    std::fs::write(out, table).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} ({written} countries)", out.display());
    Ok(())
}

/// A tenth as text without a trailing `.0`.
fn tenth(v: i64) -> String {
    if v % 10 == 0 {
        (v / 10).to_string()
    } else {
        format!("{}.{}", v / 10, (v % 10).abs()).replace("-0.", "-0.")
    }
}

/// A ring's centroid and area (shoelace, in degrees).
fn centroid(pts: &[(f64, f64)]) -> (f64, f64, f64) {
    // Longitudes unwrapped across the antimeridian, the result brought back into range.
    let mut shift = 0.0;
    let mut unwrapped: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for (i, &(x, y)) in pts.iter().enumerate() {
        if i > 0 {
            let prev = pts[i - 1].0;
            if x - prev > 180.0 {
                shift -= 360.0;
            } else if prev - x > 180.0 {
                shift += 360.0;
            }
        }
        unwrapped.push((x + shift, y));
    }
    let (x, y, area) = shoelace(&unwrapped);
    ((x + 180.0).rem_euclid(360.0) - 180.0, y, area)
}

fn shoelace(pts: &[(f64, f64)]) -> (f64, f64, f64) {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for w in pts.windows(2) {
        let (x0, y0, x1, y1) = (w[0].0, w[0].1, w[1].0, w[1].1);
        let c = x0 * y1 - x1 * y0;
        a += c;
        cx += (x0 + x1) * c;
        cy += (y0 + y1) * c;
    }
    if a.abs() < 1e-9 {
        let n = pts.len().max(1) as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
        return (sx / n, sy / n, 0.0);
    }
    (cx / (3.0 * a), cy / (3.0 * a), (a / 2.0).abs())
}
