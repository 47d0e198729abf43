//! Which plugins may run: `[plugin] require_signature = true` accepts a plugin file only when its
//! SHA-256 is pinned (`pinned_sha256`) or when `<file>.minisig` beside it is a minisign signature
//! of its bytes by one of `trusted_keys`. The plugin built into the binary is part of the binary
//! and trusted as it is.
//!
//! The bytes checked are the bytes compiled: a file is read once, and a signature or pin is
//! checked against what was read, before it is compiled.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};

/// A minisign public key, with the ID minisign shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// minisign's key ID: the key's 8 ID bytes as a little-endian number, 16 upper-case hex digits.
    pub id: String,
    key: PublicKey,
}

impl TrustedKey {
    /// A key as `minisign -G` writes it: the base64 line (`RW…`), or the whole `.pub` file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let key = PublicKey::from_base64(line)
            .map_err(|e| format!("not a minisign public key (the base64 line of a minisign .pub file): {e}"))?;
        let id = key_id(line).ok_or_else(|| "not a minisign public key".to_owned())?;
        Ok(TrustedKey { id, key })
    }
}

/// minisign's key ID of a base64 key or signature line: its bytes 2..10 (after the algorithm).
fn key_id(base64_line: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_line.trim())
        .ok()?;
    let id: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}

/// The trust policy: plugins from a directory must be pinned or signed by a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Keys whose minisign signatures are accepted.
    pub keys: Vec<TrustedKey>,
    /// SHA-256 hashes (lower-case hex) of plugin files accepted as they are.
    pub pinned: Vec<String>,
}

/// Where the signature of a plugin file is looked for: the file's name with `.minisig` added,
/// as `minisign -S -m FILE` writes it.
pub fn signature_path(plugin: &Path) -> PathBuf {
    let mut name = plugin.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

impl TrustPolicy {
    /// Whether the plugin file at `path`, whose bytes hash to `sha256`, may be used; `Ok` says
    /// why (for logs and `trailwatch plugin`), `Err` why not.
    pub fn check(&self, path: &Path, bytes: &[u8], sha256: &str) -> Result<String, String> {
        if self.pinned.iter().any(|p| p == sha256) {
            return Ok(format!("its SHA-256 {sha256} is pinned in [plugin] pinned_sha256"));
        }
        let sig_path = signature_path(path);
        let sig_text = match read_signature(&sig_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "refused by the trust policy ([plugin] require_signature = true): no signature {} \
                     and its SHA-256 {sha256} is not in pinned_sha256",
                    sig_path.display()
                ))
            }
            Err(e) => {
                return Err(format!(
                    "refused by the trust policy: cannot read {}: {e}",
                    sig_path.display()
                ))
            }
        };
        let signature = Signature::decode(&sig_text).map_err(|e| {
            format!(
                "refused by the trust policy: {} is not a minisign signature: {e}",
                sig_path.display()
            )
        })?;
        let signed_by = sig_text.lines().nth(1).and_then(key_id);
        let Some(key) = self.keys.iter().find(|k| Some(&k.id) == signed_by.as_ref()) else {
            let trusted: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
            return Err(format!(
                "refused by the trust policy: {} is signed by {}, which is not in [plugin] trusted_keys ({})",
                sig_path.display(),
                signed_by.map_or_else(|| "a key whose ID cannot be read".to_owned(), |id| format!("key {id}")),
                if trusted.is_empty() {
                    "none".to_owned()
                } else {
                    trusted.join(", ")
                }
            ));
        };
        match key.key.verify(bytes, &signature, false) {
            Ok(()) => Ok(format!(
                "signed by trusted key {} ({}: {})",
                key.id,
                sig_path.display(),
                signature.trusted_comment()
            )),
            Err(minisign_verify::Error::UnexpectedAlgorithm) => Err(format!(
                "refused by the trust policy: {} is a legacy (not pre-hashed) signature; sign again \
                 with a current minisign (`minisign -S`, or `cargo run -p xtask -- plugins --sign KEY`)",
                sig_path.display()
            )),
            Err(e) => Err(format!(
                "refused by the trust policy: the signature {} by key {} does not match the file ({e}): \
                 the file (or the signature's trusted comment) was changed after it was signed, or the \
                 signature is forged",
                sig_path.display(),
                key.id
            )),
        }
    }
}

/// A minisign signature file is four short lines; anything longer is not one.
const MAX_SIGNATURE_BYTES: u64 = 4096;

/// Reads a signature file: a regular file (not a FIFO that would block, nor a device that never
/// ends) of at most [`MAX_SIGNATURE_BYTES`].
fn read_signature(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SIGNATURE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(std::io::Error::other(format!(
            "longer than {MAX_SIGNATURE_BYTES} bytes: not a minisign signature"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key pair and a signature made by the minisign crate, kept here so that the decoding of
    // the formats is checked without a signer.
    fn pair() -> (minisign::PublicKey, minisign::SecretKey) {
        let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        (pk, sk)
    }

    fn sign(sk: &minisign::SecretKey, bytes: &[u8]) -> String {
        minisign::sign(None, sk, std::io::Cursor::new(bytes), Some("trailwatch test"), None)
            .unwrap()
            .into_string()
    }

    #[test]
    fn keys_are_read_from_the_base64_line_or_the_whole_pub_file_with_minisigns_id() {
        let (pk, _) = pair();
        let line = pk.to_base64();
        let whole = pk.to_box().unwrap().into_string();
        let a = TrustedKey::parse(&line).unwrap();
        let b = TrustedKey::parse(&whole).unwrap();
        assert_eq!(a, b);
        // minisign prints the ID in the .pub file's comment: "minisign public key <ID>".
        assert!(whole.contains(&a.id), "{whole} lacks {}", a.id);
        let bad = TrustedKey::parse("RWnot-a-key").unwrap_err();
        assert!(bad.contains("not a minisign public key"), "{bad}");
    }

    #[test]
    fn a_pinned_hash_a_good_signature_and_each_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        let bytes = b"plugin bytes".to_vec();
        std::fs::write(&plugin, &bytes).unwrap();
        let sha = crate::runtime::cache::sha256_hex(&bytes);
        let (pk, sk) = pair();
        let (_, other_sk) = pair();
        let trusted = TrustedKey::parse(&pk.to_base64()).unwrap();
        let policy = TrustPolicy {
            keys: vec![trusted.clone()],
            pinned: vec![],
        };

        let unsigned = policy.check(&plugin, &bytes, &sha).unwrap_err();
        assert!(
            unsigned.contains("no signature") && unsigned.contains(&sha),
            "{unsigned}"
        );

        let pinned = TrustPolicy {
            keys: vec![],
            pinned: vec![sha.clone()],
        };
        assert!(pinned.check(&plugin, &bytes, &sha).unwrap().contains("pinned"));

        std::fs::write(signature_path(&plugin), sign(&sk, &bytes)).unwrap();
        let ok = policy.check(&plugin, &bytes, &sha).unwrap();
        assert!(ok.contains(&trusted.id) && ok.contains("trailwatch test"), "{ok}");

        let changed = b"plugin bytez".to_vec();
        let sha2 = crate::runtime::cache::sha256_hex(&changed);
        let modified = policy.check(&plugin, &changed, &sha2).unwrap_err();
        assert!(modified.contains("does not match the file"), "{modified}");

        std::fs::write(signature_path(&plugin), sign(&other_sk, &bytes)).unwrap();
        let stranger = policy.check(&plugin, &bytes, &sha).unwrap_err();
        assert!(
            stranger.contains("not in [plugin] trusted_keys") && stranger.contains(&trusted.id),
            "{stranger}"
        );

        std::fs::write(signature_path(&plugin), "untrusted comment: x\nnot base64\n").unwrap();
        let garbage = policy.check(&plugin, &bytes, &sha).unwrap_err();
        assert!(garbage.contains("is not a minisign signature"), "{garbage}");

        // Neither a directory nor an endless file is read as a signature.
        std::fs::remove_file(signature_path(&plugin)).unwrap();
        std::fs::create_dir(signature_path(&plugin)).unwrap();
        let dir_sig = policy.check(&plugin, &bytes, &sha).unwrap_err();
        assert!(dir_sig.contains("not a regular file"), "{dir_sig}");
        std::fs::remove_dir(signature_path(&plugin)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", signature_path(&plugin)).unwrap();
        let endless = policy.check(&plugin, &bytes, &sha).unwrap_err();
        assert!(endless.contains("not a regular file"), "{endless}");
        std::fs::remove_file(signature_path(&plugin)).unwrap();
        std::fs::write(signature_path(&plugin), "x".repeat(10_000)).unwrap();
        let long = policy.check(&plugin, &bytes, &sha).unwrap_err();
        assert!(long.contains("longer than 4096 bytes"), "{long}");
    }
}
