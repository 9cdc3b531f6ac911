//! `cargo xtask bench`: figures that matter to users, each measured beside a
//! baseline in the same run (this machine is noisy: ratios of medians, never
//! absolute thresholds), written to `BENCHMARKS.md`.

pub mod adversarial;
pub mod baseline;
pub mod emulator_io;
pub mod http;
pub mod ingest;
pub mod polling;
pub mod realtime;
pub mod scale;
pub mod scanner;
pub mod sizes;
pub mod uploads;
pub mod webhooks;

use std::fmt::Write;
use std::time::Duration;

pub struct Row {
    pub metric: String,
    pub value: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    /// Human-readable target, and whether it was met.
    pub target: Option<(String, bool)>,
}

pub struct Section {
    pub title: String,
    pub how: String,
    pub rows: Vec<Row>,
}

impl Section {
    pub fn markdown(&self) -> String {
        let mut s = format!("## {}\n\n{}\n\n", self.title, self.how);
        s.push_str("| metric | batchgate | baseline | ratio | target |\n|---|---|---|---|---|\n");
        for r in &self.rows {
            let ratio = r.ratio.map_or("—".into(), |x| format!("{x:.2}"));
            let target = match &r.target {
                Some((t, true)) => format!("{t} ✅"),
                Some((t, false)) => format!("{t} ❌"),
                None => "—".into(),
            };
            let _ = writeln!(s, "| {} | {} | {} | {ratio} | {target} |", r.metric, r.value, r.baseline);
        }
        s
    }
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64().max(1e-9)
}

/// One line describing the machine, for the report header.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map_or("?".into(), |kib| format!("{:.0} GiB", kib as f64 / 1_048_576.0));
    format!("{cpu}, {cores} cores, {mem} RAM")
}
