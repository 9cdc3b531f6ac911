//! The benchmark driver behind `cargo xtask bench`.
//!
//! `bench [--only LIST] [--size-mb N] [--reps N] [--lines N] [--scale-requests N] [--out FILE]` runs every benchmark and writes
//! the report; `bench --serve-baseline FILE` is the baseline server it spawns.

use batchgate_e2e::bench;
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if let Some(file) = arg("--serve-baseline") {
        if let Err(e) = bench::baseline::serve(PathBuf::from(file)).await {
            eprintln!("baseline server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let size_mb: u64 = arg("--size-mb").and_then(|s| s.parse().ok()).unwrap_or(1024);
    let reps: usize = arg("--reps").and_then(|s| s.parse().ok()).unwrap_or(3);
    let out = arg("--out");
    let me = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));

    let lines: usize = arg("--lines").and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let scale_requests: usize = arg("--scale-requests").and_then(|s| s.parse().ok()).unwrap_or(100_000);
    // `--only a,b` runs a subset (names: scanner, ingest, uploads, http, polling, webhooks, sizes, adversarial, emulator, realtime, scale).
    let only = arg("--only");
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o.split(',').any(|w| w == name));
    let mut sections = Vec::new();
    if wanted("scanner") {
        sections.push(bench::scanner::run(100_000, reps.max(3)));
    }
    if wanted("ingest") {
        sections.push(bench::ingest::run(lines, reps).await);
    }
    if wanted("uploads") {
        sections.push(bench::uploads::run(size_mb, reps).await);
    }
    if wanted("http") {
        sections.push(bench::http::run().await);
    }
    if wanted("polling") {
        sections.push(bench::polling::run());
    }
    if wanted("webhooks") {
        sections.push(bench::webhooks::run(3).await);
    }
    if wanted("sizes") {
        sections.push(bench::sizes::run());
    }
    if wanted("adversarial") {
        sections.push(bench::adversarial::run());
    }
    if wanted("emulator") {
        sections.push(bench::emulator_io::run(size_mb, reps, &me).await);
    }
    if wanted("realtime") {
        sections.push(bench::realtime::run().await);
    }
    if wanted("scale") {
        sections.push(bench::scale::run(scale_requests).await);
    }

    let mut report = format!(
        "# Benchmarks\n\nMeasured by `cargo xtask bench` on {} ({}). Each figure stands beside a baseline \
         measured in the same run; compare ratios, not absolute numbers.\n\n",
        bench::machine(),
        std::env::var("BENCH_DATE").unwrap_or_else(|_| "see git log".into())
    );
    for s in &sections {
        report.push_str(&s.markdown());
        report.push('\n');
    }
    print!("{report}");
    if let Some(path) = out
        && let Err(e) = std::fs::write(&path, &report)
    {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
    let missed =
        sections.iter().flat_map(|s| &s.rows).filter(|r| matches!(r.target, Some((_, false)))).count();
    if missed > 0 {
        eprintln!("{missed} target(s) missed");
    }
}
