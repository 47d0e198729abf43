//! Tests keep the README's generated tables equal to what the plugin has (test builds only).

/// Keeps the README's block `<!-- name -->…<!-- /name -->` equal to `table`; with
/// `TRAILWATCH_BLESS=1`, writes it instead.
pub fn assert_block(name: &str, table: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (open, close) = (format!("<!-- {name} -->\n"), format!("<!-- /{name} -->"));
    let start = readme
        .find(&open)
        .unwrap_or_else(|| panic!("the README's {name} block"))
        + open.len();
    let end = readme[start..].find(&close).expect("its end") + start;
    if std::env::var_os("TRAILWATCH_BLESS").is_some() {
        std::fs::write(path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert_eq!(
        &readme[start..end],
        table,
        "README.md's {name} differ from the plugin's: run TRAILWATCH_BLESS=1 cargo test -p trailwatch-plugin readme"
    );
}
