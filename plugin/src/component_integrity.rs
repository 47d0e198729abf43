//! The `integrity` export: the contract's records to the plain model (`crate::integrity`) and back.

use super::integrity as wi;
use super::{event, file_error, hashing, parser, selection, wit, LogFile, Plugin};
use crate::integrity as m;

/// Conversions between the model's records and the contract's, which hold the same fields: the
/// fields are listed once here, and each conversion is made both ways from that list.
macro_rules! both_ways {
    ($out:ident, $into:ident: $model:ident <-> $wit:ident { $($field:ident),* $(,)? } $(, $list:ident by ($list_out:ident, $list_in:ident))?) => {
        fn $out(x: m::$model) -> wi::$wit {
            wi::$wit {
                $($field: x.$field,)*
                $($list: x.$list.into_iter().map($list_out).collect(),)?
            }
        }

        fn $into(x: wi::$wit) -> m::$model {
            m::$model {
                $($field: x.$field,)*
                $($list: x.$list.into_iter().map($list_in).collect(),)?
            }
        }
    };
}

both_ways!(listed_out, listed_in: ListedFile <-> ListedFile {
    bucket, key, sha256, oldest_event_time, newest_event_time,
});

both_ways!(digest_out, digest_in: Digest <-> Digest {
    account_id, start_time, end_time, end_time_ms, bucket, key, previous_bucket, previous_key,
    previous_sha256, previous_signature, public_key_fingerprint, signature_algorithm, sha256,
}, files by (listed_out, listed_in));

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

impl hashing::Guest for Plugin {
    fn next_typed_step(file: parser::LogFileBorrow<'_>, max: u32) -> Result<hashing::TypedStep, wit::FileError> {
        let mut file = file.get::<LogFile>().0.borrow_mut();
        let (events, ended) = file.next_batch_step(max).map_err(file_error)?;
        Ok(hashing::TypedStep {
            events: events.into_iter().map(event).collect(),
            inflated: file.take_inflated(),
            ended,
        })
    }

    fn next_rendered_step(file: parser::LogFileBorrow<'_>, max: u32) -> Result<hashing::RenderedStep, wit::FileError> {
        let file = file.get::<LogFile>();
        let mut batch = file.batch();
        let (_, ended) = file
            .0
            .borrow_mut()
            .next_documents_step(max, &mut batch)
            .map_err(file_error)?;
        let inflated = file.0.borrow_mut().take_inflated();
        Ok(hashing::RenderedStep {
            documents: file.documents_out(batch),
            inflated,
            ended,
        })
    }
}
