//! minisign keys and signatures for the plugin trust policy's tests, made with the minisign crate
//! (what `cargo run -p xtask -- plugins --sign` uses).

use std::path::{Path, PathBuf};

/// A key pair: the public key's base64 line (for `[plugin] trusted_keys`), its ID, the secret key.
pub struct Key {
    pub public: String,
    pub id: String,
    secret: minisign::SecretKey,
}

impl Key {
    pub fn new() -> Self {
        let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let boxed = pk.to_box().unwrap().into_string();
        let id = boxed.lines().next().unwrap().rsplit(' ').next().unwrap().to_owned();
        Key {
            public: pk.to_base64(),
            id,
            secret: sk,
        }
    }

    /// Writes `<file>.minisig`, a signature of `file` as it is now (written beside it, then
    /// renamed into place, as an operator's copy would land).
    pub fn sign(&self, file: &Path) -> PathBuf {
        let bytes = std::fs::read(file).unwrap();
        let sig = minisign::sign(
            None,
            &self.secret,
            std::io::Cursor::new(bytes),
            Some("test release"),
            None,
        )
        .unwrap()
        .into_string();
        let out = signature_path(file);
        let staged = out.with_extension("part");
        std::fs::write(&staged, sig).unwrap();
        std::fs::rename(&staged, &out).unwrap();
        out
    }
}

/// `<file>.minisig`.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// The `[plugin]` table of a trust policy with these keys and pinned hashes.
pub fn policy(keys: &[&Key], pinned: &[&str]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("{:?}", k.public)).collect();
    let pinned: Vec<String> = pinned.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[plugin]\nrequire_signature = true\ntrusted_keys = [{}]\npinned_sha256 = [{}]\n",
        keys.join(", "),
        pinned.join(", ")
    )
}
