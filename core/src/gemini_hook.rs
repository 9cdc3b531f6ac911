//! Webhooks *from* Gemini (`POST /hooks/gemini`): which job a batch event is
//! about, and whether it should wake that job now. The event is only a hint:
//! the woken job polls the batch, so a forged-but-signed or stale event can
//! at worst cause one extra poll. Signatures are checked with
//! [`crate::webhook::Secret::verify`] before any of this runs.

use serde::Deserialize;

/// What batchgate reads from a Gemini batch event: `{type, data: {name, displayName}}`
/// (Google documents the Standard Webhooks envelope, not every data field, so
/// only the batch name and the display name batchgate gave it are relied on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEvent {
    pub kind: String,
    /// `batches/…`
    pub batch: String,
    /// The job, from the display name batchgate gave the batch (`batchgate-{job}[-{shard}-{attempt}]`).
    pub job: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: String,
    data: Data,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// Read an event body; the error names what is missing.
pub fn parse(body: &[u8]) -> Result<BatchEvent, String> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| format!("not a batch event: {e}"))?;
    if !env.data.name.starts_with("batches/") {
        return Err(format!("data.name {:?} is not a batch", env.data.name));
    }
    let job = env.data.display_name.as_deref().and_then(job_of).map(String::from);
    Ok(BatchEvent { kind: env.kind, batch: env.data.name, job })
}

/// The job id in a display name batchgate gave a batch (ids are 64 hex digits).
pub fn job_of(display_name: &str) -> Option<&str> {
    let rest = display_name.strip_prefix("batchgate-")?;
    let id = rest.get(..64)?;
    let tail = rest.get(64..)?;
    (id.bytes().all(|b| b.is_ascii_hexdigit()) && (tail.is_empty() || tail.starts_with('-'))).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_job_comes_from_the_display_name_of_any_shard_or_attempt() {
        assert_eq!(job_of(&format!("batchgate-{ID}")), Some(ID));
        assert_eq!(job_of(&format!("batchgate-{ID}-3-1")), Some(ID));
        assert_eq!(job_of(&format!("batchgate-{ID}x")), None);
        assert_eq!(job_of("batchgate-short"), None);
        assert_eq!(job_of(&format!("someone-else-{ID}")), None);
    }

    #[test]
    fn an_emulator_event_reads_and_foreign_ones_have_no_job() {
        let body = json!({"type": "batch.succeeded", "timestamp": "2026-01-01T00:00:00Z",
            "data": {"name": "batches/abc", "state": "BATCH_STATE_SUCCEEDED", "displayName": format!("batchgate-{ID}")}});
        let e = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.batch.as_str(), e.job.as_deref()),
            ("batch.succeeded", "batches/abc", Some(ID))
        );
        let foreign = json!({"type": "batch.failed", "data": {"name": "batches/x", "displayName": "mine"}});
        assert_eq!(parse(foreign.to_string().as_bytes()).unwrap().job, None);
        assert!(
            parse(br#"{"type": "batch.failed", "data": {"name": "files/x"}}"#)
                .unwrap_err()
                .contains("data.name")
        );
        assert!(parse(b"nope").is_err());
    }
}
