//! KMS's cryptographic operations: the use of a key, among the most frequent events of a real
//! trail, which no verb names ("Decrypt", "Sign", "ReEncrypt").
//!
//! They are the data plane of KMS (CloudTrail logs them as management events): those that hand
//! out plaintext or secret material, or check a signature or MAC, read with the key
//! (`data_read`); those that make ciphertext, signatures or MACs write with it (`data_write`).
//! Every other KMS API goes by its verb.

use super::table;
use super::Action::{self, DataRead, DataWrite};

/// Crypto operation → action, sorted.
const CRYPTO: &[(&str, Action)] = &[
    ("Decrypt", DataRead),
    ("DeriveSharedSecret", DataRead),
    ("Encrypt", DataWrite),
    ("GenerateDataKey", DataRead),
    ("GenerateDataKeyPair", DataRead),
    ("GenerateDataKeyPairWithoutPlaintext", DataWrite),
    ("GenerateDataKeyWithoutPlaintext", DataWrite),
    ("GenerateMac", DataWrite),
    ("GenerateRandom", DataRead),
    ("ReEncrypt", DataWrite),
    ("ReEncryptFrom", DataWrite),
    ("ReEncryptTo", DataWrite),
    ("Sign", DataWrite),
    ("Verify", DataRead),
    ("VerifyMac", DataRead),
];

/// The action of a KMS crypto operation; `None` for the other KMS APIs.
pub(super) fn action(name: &str) -> Option<Action> {
    table::lookup(CRYPTO, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorize::table::assert_strictly_sorted;

    #[test]
    fn table_is_sorted_without_duplicates() {
        let names: Vec<_> = CRYPTO.iter().map(|(name, _)| *name).collect();
        assert_strictly_sorted("kms::CRYPTO", &names);
    }

    #[test]
    fn key_use_reads_or_writes_and_the_rest_goes_by_verb() {
        assert_eq!(action("Decrypt"), Some(DataRead));
        assert_eq!(action("GenerateDataKey"), Some(DataRead));
        assert_eq!(action("Encrypt"), Some(DataWrite));
        assert_eq!(action("Sign"), Some(DataWrite));
        assert_eq!(action("CreateKey"), None);
        assert_eq!(action("ScheduleKeyDeletion"), None);
    }
}
