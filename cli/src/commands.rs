//! Each command: the core machine it runs, and how its answer is shown.

use crate::transport::{Op, Progress, Transport};
use crate::{Cli, Command, Ended};
use batchgate_core::client::call::{ClientError, Method, Request};
use batchgate_core::client::generate::Generate;
use batchgate_core::client::lines::Results;
use batchgate_core::client::machine::Call;
use batchgate_core::client::paths::{self, query};
use batchgate_core::client::resume::Upload;
use batchgate_core::client::submit::{Scan, Sizes, Submission};
use batchgate_core::client::watch::{Watch, is_final};
use batchgate_core::pricing::{EstimateRules, PriceTable};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn local(e: impl std::fmt::Display) -> ClientError {
    ClientError::invalid_argument(e.to_string())
}

/// A value for the person at the terminal (indented), or for a script (one line).
fn show(cli: &Cli, value: &Value) {
    let text =
        if cli.json { value.to_string() } else { serde_json::to_string_pretty(value).unwrap_or_default() };
    // A closed pipe (`batchgate list | head`) is not an error worth a panic.
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn prices(path: Option<&PathBuf>) -> Result<PriceTable, ClientError> {
    match path {
        None => Ok(PriceTable::default()),
        Some(p) => PriceTable::from_json(&std::fs::read_to_string(p).map_err(local)?).map_err(local),
    }
}

async fn call(t: &Transport, cli: &Cli, request: Request) -> Result<Ended, ClientError> {
    show(cli, &t.answer(Op::new(Call::new(request)), &mut ()).await?);
    Ok(Ended::Done)
}

pub async fn run(cli: &Cli) -> Result<Ended, ClientError> {
    let t = Transport::new(&cli.url, &cli.token);
    match &cli.command {
        Command::Estimate { file, model, prices: table } => {
            let mut scan = Scan::new(model, EstimateRules::default(), Sizes::default());
            each_chunk(file, |chunk| scan.chunk(chunk))?;
            let scanned = scan.finish(&prices(table.as_ref())?)?;
            show(cli, &json!({"requests": scanned.requests, "bytes": scanned.size, "quote": scanned.quote}));
            Ok(Ended::Done)
        }
        Command::Submit {
            file,
            model,
            name,
            mode,
            idempotency_key,
            wait,
            prices: table,
            inline_bytes,
            part_bytes,
        } => {
            let sizes = Sizes { inline_bytes: *inline_bytes, part_bytes: (*part_bytes).max(1) };
            let body = json!({"model": model, "displayName": name, "mode": mode});
            let body = Value::Object(
                body.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            let digest =
                digest(&[model, name.as_deref().unwrap_or(""), mode.as_deref().unwrap_or("")], file)?;
            let key = idempotency_key.clone().unwrap_or_else(|| ["cli-", &digest].concat());
            let state = state_file(&key);
            // This key made a job already (a rerun after `--wait` was interrupted):
            // that job, not a second local balance check or upload.
            let made = state.as_ref().and_then(|p| std::fs::read_to_string(p.with_extension("job")).ok());
            if let Some(id) = made.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
                match t.answer(Op::new(Call::new(Request::get(paths::job(&id)))), &mut ()).await {
                    Ok(job) => {
                        show(cli, &job);
                        return if *wait { watch(&t, cli, &id, true).await } else { Ok(Ended::Done) };
                    }
                    // Deleted since: submitted anew.
                    Err(e) if e.status == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            // An input an interrupted run opened, for these very bytes.
            let saved = state.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).and_then(|s| {
                let (input, of) = s.trim().split_once(' ')?;
                (of == digest).then(|| input.to_string())
            });
            let scan = Scan::new(model, EstimateRules::default(), sizes);
            let machine = Submission::new(scan, prices(table.as_ref())?, body, key).resuming(saved);
            let mut bar = Bar::new(cli, state.clone(), digest);
            let job = t.answer(Op::new(machine).with_data(file.clone()), &mut bar).await?;
            bar.finish();
            let id = job["id"].as_str().unwrap_or_default().to_string();
            if let Some(p) = &state {
                let _ = std::fs::remove_file(p);
                let _ = std::fs::write(p.with_extension("job"), &id);
            }
            if cli.json {
                show(cli, &job);
            } else {
                println!(
                    "job {id}: {} requests, {} micro-credits reserved",
                    job["requestCount"], job["cost"]["reserved"]
                );
            }
            if *wait { watch(&t, cli, &id, true).await } else { Ok(Ended::Done) }
        }
        Command::Status { id } => call(&t, cli, Request::get(paths::job(id))).await,
        Command::Watch { id } => watch(&t, cli, id, true).await,
        Command::Wait { id } => watch(&t, cli, id, false).await,
        Command::Results { id, only, output } => {
            results(&t, cli, id, only.is_some(), output.as_deref()).await
        }
        Command::List { state, limit, cursor } => {
            let q = query(&[
                ("state", state.clone()),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor.clone()),
            ]);
            call(&t, cli, Request::get(["/v1/jobs", &q].concat())).await
        }
        Command::Cancel { id } => call(&t, cli, Request::post(paths::job_part(id, "cancel"), "")).await,
        Command::Retry { id } => call(&t, cli, Request::post(paths::job_part(id, "retry"), "")).await,
        Command::Delete { id } => call(&t, cli, Request::new(Method::Delete, paths::job(id))).await,
        Command::Events { id, after, limit } => {
            let q =
                query(&[("after", after.map(|a| a.to_string())), ("limit", limit.map(|l| l.to_string()))]);
            call(&t, cli, Request::get([paths::job_part(id, "events"), q].concat())).await
        }
        Command::Upload { file, mime_type, name } => {
            let size = std::fs::metadata(file).map_err(local)?.len();
            let mime = mime_type.clone().unwrap_or_else(|| mime_of(file).to_string());
            let display = name.clone().or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()));
            let machine = Upload::new(size, &mime, display.as_deref(), None);
            let mut bar = Bar::new(cli, None, String::new());
            let uploaded = t.answer(Op::new(machine).with_data(file.clone()), &mut bar).await?;
            bar.finish();
            show(cli, &uploaded);
            Ok(Ended::Done)
        }
        Command::Generate { model, prompt } => {
            let request = json!({"contents": [{"parts": [{"text": prompt}]}]}).to_string();
            let answer = t.answer(Op::new(Generate::new(model, &request)), &mut ()).await?;
            if cli.json {
                show(cli, &answer);
            } else {
                let parts = answer["response"]["candidates"][0]["content"]["parts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
                println!("{text}");
                eprintln!("cost: {} micro-credits", answer["cost"]["charged"]);
            }
            Ok(Ended::Done)
        }
        Command::Account => call(&t, cli, Request::get("/v1/account")).await,
        Command::Ledger { limit, cursor } => {
            let q = query(&[("limit", limit.map(|l| l.to_string())), ("cursor", cursor.clone())]);
            call(&t, cli, Request::get(["/v1/account/ledger", &q].concat())).await
        }
    }
}

/// Read `file` a MiB at a time into `f`.
fn each_chunk(file: &Path, mut f: impl FnMut(&[u8])) -> Result<(), ClientError> {
    let mut reader = std::fs::File::open(file).map_err(local)?;
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(local)?;
        if n == 0 {
            return Ok(());
        }
        f(buf.get(..n).unwrap_or_default());
    }
}

/// A digest of what a submit sends (its options and the file's bytes): the
/// idempotency key of a submit without one, so running the same command again
/// is the same job and resumes its upload; and what an input kept for a rerun
/// must have been opened for.
fn digest(options: &[&str], file: &Path) -> Result<String, ClientError> {
    let mut hash = Sha256::new();
    for o in options {
        hash.update(o.as_bytes());
        hash.update(b"\n");
    }
    each_chunk(file, |chunk| hash.update(chunk))?;
    Ok(hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// Where an interrupted submit's input id is kept, by its idempotency key.
fn state_file(key: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let safe: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    Some(base.join("batchgate/inputs").join(safe))
}

fn mime_of(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("txt") => "text/plain",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// A transfer's progress bar (bytes), which also records an input's id so a
/// rerun can go on with it.
struct Bar {
    bar: Option<ProgressBar>,
    state: Option<PathBuf>,
    /// Kept with the input's id: a rerun goes on with it only for these bytes.
    digest: String,
    saved: bool,
    /// Scripts get `{"progress": {…}}` lines on standard error instead.
    json: bool,
}

impl Bar {
    fn new(cli: &Cli, state: Option<PathBuf>, digest: String) -> Bar {
        Bar { bar: (!cli.json).then(ProgressBar::hidden), state, digest, saved: false, json: cli.json }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn progress(&mut self, name: &str, id: &str, received: u64, size: u64) {
        if self.json {
            eprintln!("{}", json!({"progress": {name: id, "received": received, "size": size}}));
        }
        if !self.saved
            && !id.is_empty()
            && let Some(p) = &self.state
        {
            let _ = p.parent().map(std::fs::create_dir_all);
            self.saved = std::fs::write(p, [id, " ", &self.digest].concat()).is_ok();
        }
        if let Some(b) = &mut self.bar {
            if b.is_hidden() {
                *b = ProgressBar::new(size);
                b.set_style(
                    ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            b.set_position(received);
        }
    }
}

/// Follow the job to its end: a live bar (`watch`), or quietly (`wait`);
/// the final view is printed. Exit 1 if the job did not succeed.
async fn watch(t: &Transport, cli: &Cli, id: &str, live: bool) -> Result<Ended, ClientError> {
    let mut op = Op::new(Watch::new(t.endpoint(), id, 1000, true));
    let bar = (live && !cli.json).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    });
    let mut last = Value::Null;
    while let Some(text) = t.drive(&mut op, &mut ()).await? {
        last = serde_json::from_str(&text).unwrap_or(Value::Null);
        if live && cli.json {
            println!("{text}");
        }
        if let Some(b) = &bar {
            let counts = &last["counts"];
            let done = counts["succeeded"].as_u64().unwrap_or(0) + counts["failed"].as_u64().unwrap_or(0);
            b.set_length(last["requestCount"].as_u64().unwrap_or(0));
            b.set_position(done);
            let shards =
                last["shards"].as_array().map_or(String::new(), |s| format!(" · {} shards", s.len()));
            b.set_message(format!(
                "{} · {} failed{shards}",
                last["state"].as_str().unwrap_or("?"),
                counts["failed"]
            ));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !(live && cli.json) {
        show(cli, &last);
    }
    let succeeded = is_final(&last) && last["state"] == "succeeded";
    Ok(if succeeded { Ended::Done } else { Ended::JobUnsuccessful })
}

async fn results(
    t: &Transport,
    cli: &Cli,
    id: &str,
    only_failed: bool,
    output: Option<&Path>,
) -> Result<Ended, ClientError> {
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(local)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut op = Op::new(Results::new(id, only_failed));
    let mut lines = 0u64;
    while let Some(line) = t.drive(&mut op, &mut ()).await? {
        out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).map_err(local)?;
        lines += 1;
    }
    out.flush().map_err(local)?;
    if output.is_some() && !cli.json {
        eprintln!("{lines} result lines");
    }
    Ok(Ended::Done)
}
