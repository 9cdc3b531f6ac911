//! The `batchgate` command line against the real worker in workerd and the
//! Gemini emulator: a 50,000-line file submitted with `--wait` and its results
//! written to a file with every key; a submit killed mid-upload, run again,
//! goes on from what the server holds. Run by `cargo xtask test`.

use batchgate_e2e::stack::{ACCOUNT, Stack, token};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const MODEL: &str = "gemini-2.5-flash";

fn cli(s: &Stack, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_batchgate"));
    cmd.env("BATCHGATE_URL", s.url("")).env("BATCHGATE_TOKEN", token(ACCOUNT)).env("XDG_STATE_HOME", state);
    cmd
}

fn ndjson(path: &Path, n: usize, tag: &str) {
    let mut text = String::new();
    for i in 0..n {
        let line = json!({"key": format!("k{i:05}"), "request": {"contents": [{"parts": [{"text": format!("{tag} {i}")}]}], "generationConfig": {"maxOutputTokens": 10}}});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built worker: run through `cargo xtask test`"]
async fn a_large_file_is_submitted_waited_for_and_every_result_written() {
    let s = Stack::start(json!({}), &[]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ndjson");
    ndjson(&input, 50_000, "question");
    let out = cli(&s, dir.path())
        .args(["--json", "submit"])
        .arg(&input)
        .args(["--model", MODEL, "--wait", "--part-bytes", "2000000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let parts = stderr.lines().filter(|l| l.contains("\"progress\"")).count();
    assert!(parts >= 4, "a 6 MB file went through an input in parts: {stderr}");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(
        (last["state"].as_str(), last["counts"]["succeeded"].as_u64()),
        (Some("succeeded"), Some(50_000)),
        "{last}"
    );
    let id = last["id"].as_str().unwrap().to_string();

    let results = dir.path().join("results.ndjson");
    let out = cli(&s, dir.path()).args(["results", &id, "-o"]).arg(&results).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut keys: Vec<String> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 50_000, "every key, once");

    // The same command again is the same job (its key is the file's digest).
    let again =
        cli(&s, dir.path()).args(["--json", "submit"]).arg(&input).args(["--model", MODEL]).output().unwrap();
    let view: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(view["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the built worker: run through `cargo xtask test`"]
async fn a_submit_killed_mid_upload_goes_on_where_it_stopped_when_run_again() {
    let s = Stack::start(json!({}), &[]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("resume.ndjson");
    ndjson(&input, 20_000, "resumed");
    let submit = |cmd: &mut Command| {
        cmd.args(["--json", "submit"]).arg(&input).args([
            "--model",
            MODEL,
            "--inline-bytes",
            "1000",
            "--part-bytes",
            "200000",
        ]);
    };
    let mut first = cli(&s, dir.path());
    submit(&mut first);
    let mut child = first.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Killed once a few parts are in.
    let (mut sent, mut said) = (0, vec![]);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let p: Value = serde_json::from_str(&line).unwrap_or_default();
        sent = p["progress"]["received"].as_u64().unwrap_or(sent);
        said.push(line);
        if sent > 600_000 {
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(sent > 0, "the first run sent parts before it was killed: {said:?}");

    let mut second = cli(&s, dir.path());
    submit(&mut second);
    let out = second.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let first_progress: Value = stderr.lines().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_default();
    assert!(
        first_progress["progress"]["received"].as_u64() >= Some(sent),
        "it went on from {sent}: {stderr}"
    );
    let job: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["requestCount"], 20_000, "{job}");
}
