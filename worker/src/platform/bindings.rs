//! The bindings `wrangler.toml` declares, and the names of what the worker
//! keeps in R2. Durable Object ids that arrive in a URL are checked here:
//! anything that is not one of ours is "not found", never an error.

use worker::{Env, ObjectNamespace, Result, Stub};

/// The R2 bucket holding inputs and results.
pub const BUCKET: &str = "BLOBS";
/// Durable Object namespaces.
pub const JOBS: &str = "JOBS";
pub const ACCOUNTS: &str = "ACCOUNTS";
pub const QUOTAS: &str = "QUOTAS";
pub const UPLOADS: &str = "UPLOADS";
pub const INPUTS: &str = "INPUTS";

pub fn bucket(env: &Env) -> Result<worker::Bucket> {
    env.bucket(BUCKET)
}

pub fn namespace(env: &Env, name: &str) -> Result<ObjectNamespace> {
    env.durable_object(name)
}

/// The object named `name` (derived ids: accounts, models, idempotency keys).
pub fn named(env: &Env, namespace_name: &str, name: &str) -> Result<Stub> {
    namespace(env, namespace_name)?.id_from_name(name)?.get_stub()
}

/// The object whose id a user sent (64 hex digits, as the runtime makes
/// them); `None` for anything else.
pub fn by_id(env: &Env, namespace_name: &str, id: &str) -> Result<Option<Stub>> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let ns = namespace(env, namespace_name)?;
    Ok(ns.id_from_string(id).and_then(|i| i.get_stub()).ok())
}

/// The R2 object holding shard `shard`'s results of job `id` (one per Gemini batch).
pub fn results_key(id: &str, shard: u64) -> String {
    match shard {
        0 => format!("jobs/{id}/results.jsonl"),
        n => format!("jobs/{id}/results-{n}.jsonl"),
    }
}

/// Media part `n` of result line `number` (`ingest::line_number`) of job `id`,
/// stored on its own as the results are (see core's `media`).
pub fn media_key(id: &str, number: u64, n: usize) -> String {
    format!("{}{number}-{n}", media_prefix(id))
}

pub fn media_prefix(id: &str) -> String {
    format!("jobs/{id}/media/")
}

/// The state of a Gemini drop-in upload, by the secret in its upload URL.
pub fn gemini_upload_key(secret: &str) -> String {
    format!("gemini/uploads/{secret}.json")
}

/// Where batch input file `file` of `account`, uploaded through the Gemini
/// drop-in, is kept: `file.json` (the `File`) and its chunks (`part-{offset}`).
pub fn gemini_input_prefix(account: &str, file: &str) -> String {
    format!("{}{file}/", gemini_inputs_of(account))
}

/// The `File` record of batch input file `file` of `account`.
pub fn gemini_input_record(account: &str, file: &str) -> String {
    format!("{}{INPUT_RECORD}", gemini_input_prefix(account, file))
}

const INPUT_RECORD: &str = "file.json";

/// The file whose folder `prefix` (listed under `gemini_inputs_of(account)`
/// with delimiter `/`) is.
pub fn gemini_input_of_folder<'a>(account: &str, prefix: &'a str) -> Option<&'a str> {
    let id = prefix.strip_prefix(&gemini_inputs_of(account))?.strip_suffix('/')?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// Where every batch input file of `account` is kept (accounts have no `/`).
pub fn gemini_inputs_of(account: &str) -> String {
    format!("gemini/inputs/{account}/")
}

/// A fresh R2 key for job `id`'s normalized input (one per attempt: a racing
/// retry never overwrites the input a job uses).
pub fn input_key(id: &str, nonce: u64) -> String {
    format!("jobs/{id}/input-{nonce:x}.jsonl")
}

/// An attempt (`nonce`) at part `number` of input `id` (`/v1/inputs`).
pub fn input_part_key(id: &str, number: u64, nonce: u64) -> String {
    format!("inputs/{id}/part-{number}-{nonce:x}.jsonl")
}

/// Scratch objects of the copy benchmark (`POST /_bench/copy`).
pub fn bench_key(started_ms: u64) -> String {
    format!("bench/copy-{started_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_input_folder_names_its_file_and_nothing_else_does() {
        let folder = gemini_input_prefix("acct", "input-1");
        assert_eq!(gemini_input_of_folder("acct", &folder), Some("input-1"));
        assert!(gemini_input_record("acct", "input-1").starts_with(&folder), "the record is in it");
        let part = format!("{folder}part-00000000000000000000");
        assert_eq!(gemini_input_of_folder("acct", &part), None, "a chunk is no folder");
        assert_eq!(gemini_input_of_folder("other", &folder), None, "another account's prefix");
        assert_eq!(gemini_input_of_folder("acct", &gemini_inputs_of("acct")), None);
    }
}
