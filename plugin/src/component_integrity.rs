//! The `integrity` export: the contract's records to the plain model (`crate::integrity`) and back.

use super::integrity as wi;
use super::{file_error, parser, selection, wit, LogFile, Plugin};
use crate::integrity as m;

fn listed(f: m::ListedFile) -> wi::ListedFile {
    wi::ListedFile {
        bucket: f.bucket,
        key: f.key,
        sha256: f.sha256,
        oldest_event_time: f.oldest_event_time,
        newest_event_time: f.newest_event_time,
    }
}

fn digest_out(d: m::Digest) -> wi::Digest {
    wi::Digest {
        account_id: d.account_id,
        start_time: d.start_time,
        end_time: d.end_time,
        end_time_ms: d.end_time_ms,
        bucket: d.bucket,
        key: d.key,
        previous_bucket: d.previous_bucket,
        previous_key: d.previous_key,
        previous_sha256: d.previous_sha256,
        previous_signature: d.previous_signature,
        public_key_fingerprint: d.public_key_fingerprint,
        signature_algorithm: d.signature_algorithm,
        sha256: d.sha256,
        files: d.files.into_iter().map(listed).collect(),
    }
}

fn digest_in(d: wi::Digest) -> m::Digest {
    m::Digest {
        account_id: d.account_id,
        start_time: d.start_time,
        end_time: d.end_time,
        end_time_ms: d.end_time_ms,
        bucket: d.bucket,
        key: d.key,
        previous_bucket: d.previous_bucket,
        previous_key: d.previous_key,
        previous_sha256: d.previous_sha256,
        previous_signature: d.previous_signature,
        public_key_fingerprint: d.public_key_fingerprint,
        signature_algorithm: d.signature_algorithm,
        sha256: d.sha256,
        files: d
            .files
            .into_iter()
            .map(|f| m::ListedFile {
                bucket: f.bucket,
                key: f.key,
                sha256: f.sha256,
                oldest_event_time: f.oldest_event_time,
                newest_event_time: f.newest_event_time,
            })
            .collect(),
    }
}

fn problem(p: m::Problem) -> wi::Problem {
    wi::Problem {
        code: p.code.into(),
        severity: match p.severity {
            m::Severity::Info => wi::Severity::Info,
            m::Severity::Warning => wi::Severity::Warning,
            m::Severity::Error => wi::Severity::Error,
        },
        location: p.location,
        message: p.message,
        evidence: p.evidence,
    }
}

impl wi::Guest for Plugin {
    fn open_hashed(
        meta: wit::ObjectMeta,
        options: wit::OpenOptions,
        keep: selection::Keep,
    ) -> Result<parser::LogFile, wit::FileError> {
        super::open(meta, options, super::keep_of(keep), true)
    }

    fn take_inflated(file: parser::LogFileBorrow<'_>) -> Vec<u8> {
        file.get::<LogFile>().0.borrow_mut().take_inflated()
    }

    fn inflate_rest(file: parser::LogFileBorrow<'_>, max: u32) -> Result<Vec<u8>, wit::FileError> {
        file.get::<LogFile>()
            .0
            .borrow_mut()
            .inflate_rest(max.min(16 << 20) as usize)
            .map_err(file_error)
    }

    fn read_digest(stored: Vec<u8>) -> Result<wi::Digest, wit::FileError> {
        super::install_panic_hook();
        m::read_digest(&stored).map(digest_out).map_err(file_error)
    }

    fn judge(check: wi::DigestCheck) -> wi::Verdict {
        super::install_panic_hook();
        let check = m::DigestCheck {
            location: check.location,
            digest: digest_in(check.digest),
            signature: check.signature,
            signature_algorithm: check.signature_algorithm,
            keys: check.keys.map(|keys| {
                keys.into_iter()
                    .map(|k| m::PublicKey {
                        fingerprint: k.fingerprint,
                        der: k.der,
                    })
                    .collect()
            }),
            previous: match check.previous {
                wi::Previous::None => m::Previous::None,
                wi::Previous::Found(p) => m::Previous::Found(m::PreviousDigest {
                    location: p.location,
                    sha256: p.sha256,
                    signature: p.signature,
                }),
                wi::Previous::Missing => m::Previous::Missing,
                wi::Previous::NotChecked => m::Previous::NotChecked,
            },
            files: check
                .files
                .into_iter()
                .map(|(k, s)| {
                    let state = match s {
                        wi::FileState::Hashed(h) => m::FileState::Hashed(h),
                        wi::FileState::Missing => m::FileState::Missing,
                        wi::FileState::Unreadable(why) => m::FileState::Unreadable(why),
                        wi::FileState::NotChecked => m::FileState::NotChecked,
                    };
                    (k, state)
                })
                .collect(),
        };
        let v = m::judge(&check);
        wi::Verdict {
            signature_valid: v.signature_valid,
            files_valid: v.files_valid,
            problems: v.problems.into_iter().map(problem).collect(),
        }
    }

    fn judge_coverage(c: wi::Coverage) -> Vec<wi::Problem> {
        super::install_panic_hook();
        let c = m::Coverage {
            digests: c
                .digests
                .into_iter()
                .map(|s| m::Span {
                    location: s.location,
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                    previous: s.previous,
                })
                .collect(),
            log_files: c.log_files,
            listed: c.listed,
            from_ms: c.from_ms,
            until_ms: c.until_ms,
            logging: c.logging,
        };
        m::judge_coverage(&c).into_iter().map(problem).collect()
    }
}
