//! Reading a stored `Phase` back. It is written as serde writes an internally
//! tagged enum (`{"phase": "creating", "file": …, "attempts": …}`), but read
//! through one flat record instead: serde's own reader for that form buffers
//! the whole object into its `Content` tree first, and that machinery was the
//! largest deserializer in the worker's wasm (BENCHMARKS.md, sizes). The format
//! is unchanged, so jobs stored by earlier versions read as before.

use super::{End, Phase};
use crate::ingest::Cursor;
use serde::de::Error;
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Tag {
    Queued,
    Uploading,
    Creating,
    Submitted,
    Abandoning,
    Ingesting,
    Cleaning,
    Done,
    Answering,
}

/// The tag and every variant's fields; the tag says which must be present.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    phase: Tag,
    session_url: Option<String>,
    offset: Option<u64>,
    file: Option<String>,
    attempts: Option<u32>,
    verified_absent: Option<bool>,
    batch: Option<String>,
    results: Option<String>,
    end: Option<End>,
    cursor: Option<Cursor>,
    size: Option<u64>,
    files: Option<Vec<String>>,
    tries: Option<u32>,
}

fn required<T, E: Error>(v: Option<T>, field: &'static str) -> Result<T, E> {
    v.ok_or_else(|| E::missing_field(field))
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Phase, D::Error> {
        let r = Record::deserialize(d)?;
        Ok(match r.phase {
            Tag::Queued => Phase::Queued,
            Tag::Uploading => {
                Phase::Uploading { session_url: r.session_url, offset: required(r.offset, "offset")? }
            }
            Tag::Creating => Phase::Creating {
                file: required(r.file, "file")?,
                attempts: required(r.attempts, "attempts")?,
                verified_absent: required(r.verified_absent, "verifiedAbsent")?,
            },
            Tag::Submitted => Phase::Submitted { batch: required(r.batch, "batch")? },
            Tag::Abandoning => Phase::Abandoning { batch: required(r.batch, "batch")? },
            Tag::Ingesting => Phase::Ingesting {
                batch: required(r.batch, "batch")?,
                results: required(r.results, "results")?,
                end: required(r.end, "end")?,
                cursor: required(r.cursor, "cursor")?,
                size: r.size,
            },
            Tag::Cleaning => Phase::Cleaning {
                end: required(r.end, "end")?,
                files: required(r.files, "files")?,
                tries: required(r.tries, "tries")?,
            },
            Tag::Done => Phase::Done { end: required(r.end, "end")? },
            Tag::Answering => Phase::Answering,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_phase() -> Vec<Phase> {
        let cursor = Cursor { parts_done: 2, ..Cursor::default() };
        vec![
            Phase::Queued,
            Phase::Uploading { session_url: None, offset: 0 },
            Phase::Uploading { session_url: Some("https://u/1".into()), offset: 8 },
            Phase::Creating { file: "files/a".into(), attempts: 2, verified_absent: true },
            Phase::Submitted { batch: "batches/b".into() },
            Phase::Abandoning { batch: "batches/b".into() },
            Phase::Ingesting {
                batch: "batches/b".into(),
                results: "files/r".into(),
                end: End::Succeeded,
                cursor,
                size: Some(42),
            },
            Phase::Ingesting {
                batch: "batches/b".into(),
                results: "files/r".into(),
                end: End::Expired,
                cursor: Cursor::default(),
                size: None,
            },
            Phase::Cleaning { end: End::Failed, files: vec!["files/a".into()], tries: 1 },
            Phase::Cleaning { end: End::Cancelled, files: vec![], tries: 0 },
            Phase::Done { end: End::Succeeded },
            Phase::Answering,
        ]
    }

    #[test]
    fn every_phase_reads_back_as_written() {
        for p in every_phase() {
            let text = serde_json::to_string(&p).unwrap_or_default();
            let back: Result<Phase, _> = serde_json::from_str(&text);
            assert_eq!(back.ok(), Some(p), "{text}");
        }
    }

    #[test]
    fn reads_the_stored_form_of_earlier_versions() {
        // Version 2 wrote `nextShard` (the job now says which shard is next): it is ignored.
        let old = json!({"phase": "cleaning", "end": "succeeded", "files": ["files/x"], "tries": 2, "nextShard": 3});
        let p: Result<Phase, _> = serde_json::from_value(old);
        assert_eq!(
            p.ok(),
            Some(Phase::Cleaning { end: End::Succeeded, files: vec!["files/x".into()], tries: 2 })
        );
        let upload = json!({"phase": "uploading", "sessionUrl": null, "offset": 0});
        assert_eq!(
            serde_json::from_value::<Phase>(upload).ok(),
            Some(Phase::Uploading { session_url: None, offset: 0 })
        );
    }

    #[test]
    fn a_missing_field_or_unknown_phase_is_an_error_naming_it() {
        let missing = serde_json::from_value::<Phase>(json!({"phase": "creating", "file": "files/a"}));
        assert!(missing.is_err_and(|e| e.to_string().contains("attempts")));
        assert!(serde_json::from_value::<Phase>(json!({"phase": "flying"})).is_err());
        assert!(serde_json::from_value::<Phase>(json!({"file": "files/a"})).is_err());
    }
}
