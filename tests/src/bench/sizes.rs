//! What users download: the worker's wasm and the SDK's wasm plus its
//! JavaScript, gzipped (`gzip -9`), against the budgets and the official
//! `@google/genai` browser bundle for the same batch calls (77 KB gzipped,
//! measured for the design).

use super::{Row, Section};
use crate::process::workspace_root;
use std::path::Path;
use std::process::Command;

fn gzipped(files: &[&Path]) -> Option<u64> {
    let mut total = 0;
    for f in files {
        let out = Command::new("gzip").args(["-9", "-c"]).arg(f).output().ok()?;
        if !out.status.success() {
            return None;
        }
        total += out.stdout.len() as u64;
    }
    Some(total)
}

fn kb(n: Option<u64>) -> String {
    n.map_or("not built".into(), |n| format!("{:.1} KB", n as f64 / 1000.0))
}

pub fn run() -> Section {
    let root = workspace_root();
    let worker = gzipped(&[&root.join("worker/build/index_bg.wasm")]);
    let pkg = root.join("sdk/pkg");
    // What a browser loads: the bundled client with its wasm glue, and the wasm.
    let sdk_files = [pkg.join("batchgate_bg.wasm"), pkg.join("index.js")];
    let sdk = gzipped(&sdk_files.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    let genai = 77_000.0;
    Section {
        title: "Sizes (gzipped)".into(),
        how: "`gzip -9` of the worker's `index_bg.wasm`, and of everything a browser loads from the SDK package \
              (the wasm: core's client and rules; and `index.js`: the wasm glue with the thin JavaScript layer). Baseline for \
              the SDK: the official `@google/genai` browser bundle for the same create + get calls, 77 KB gzipped; the SDK must \
              be below it (≤ 1.0×), the goal is ≤ 0.85×."
            .into(),
        rows: vec![
            Row {
                metric: "worker wasm".into(),
                value: kb(worker),
                baseline: "—".into(),
                ratio: None,
                target: Some(("≤ 400 KB".into(), worker.is_some_and(|n| n <= 400_000))),
            },
            Row {
                metric: "SDK wasm + JS".into(),
                value: kb(sdk),
                baseline: "77.0 KB".into(),
                ratio: sdk.map(|n| n as f64 / genai),
                target: Some(("≤ 1.0× (goal 0.85×)".into(), sdk.is_some_and(|n| n as f64 <= genai))),
            },
        ],
    }
}
