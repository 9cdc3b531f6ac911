//! The API under load: requests per second and p99 latency of `GET /v1/jobs/:id`
//! and `POST /v1/jobs` (10 requests each; from one account and from 16), driven by this process (a second
//! process beside workerd, on loopback) with a fixed number of concurrent
//! clients, against `GET /healthz` of the same worker (routing and nothing else).

use super::{Row, Section, median};
use crate::api::requests;
use crate::stack::Stack;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const SECONDS: u64 = 5;

struct Load {
    per_sec: f64,
    p99_ms: f64,
    p50_ms: f64,
    /// Calls whose connection the local server dropped (status 0; see `read_whole`).
    dropped: usize,
}

impl Load {
    /// Latencies of the calls answered, and the number dropped.
    fn of(mut latencies: Vec<f64>, dropped: usize, elapsed: f64) -> Load {
        latencies.sort_by(|a, b| a.total_cmp(b));
        let at = (latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1));
        let p99 = latencies.get(at).copied().unwrap_or(f64::NAN);
        Load { per_sec: latencies.len() as f64 / elapsed, p99_ms: p99, p50_ms: median(latencies), dropped }
    }
}

/// A call's latency in ms, or `None` if the local server dropped its
/// connection (workerd closes pooled keep-alive connections under load:
/// ARCHITECTURE.md, "workerd as a local HTTP server"); any answer but 2xx fails the run.
fn answered(status: u16, ms: f64) -> Option<f64> {
    assert!(status == 0 || (200..300).contains(&status), "status {status} under load");
    (status != 0).then_some(ms)
}

/// Run `CLIENTS` loops of `call` (given the client's number) for `SECONDS`
/// (a closed loop: each client sends again as soon as it has its answer, so
/// the server is kept saturated).
async fn load<F, Fut>(call: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let end = start + Duration::from_secs(SECONDS);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = vec![];
                while Instant::now() < end {
                    let t = Instant::now();
                    let status = call(client).await;
                    latencies.push(answered(status, t.elapsed().as_secs_f64() * 1000.0));
                }
                latencies
            })
        })
        .collect();
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let dropped = all.iter().filter(|l| l.is_none()).count();
    Load::of(all.into_iter().flatten().collect(), dropped, start.elapsed().as_secs_f64())
}

/// Send `call` at `rate` a second for `SECONDS`, whatever the answers (an open
/// loop, as independent users do); each latency counts from when the call was
/// due, so a late send counts against the server, not for it.
async fn load_at<F, Fut>(rate: f64, call: F) -> Load
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let call = Arc::new(call);
    let start = tokio::time::Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut tasks = vec![];
    let mut due = start;
    let mut n = 0;
    while due < start + Duration::from_secs(SECONDS) {
        tokio::time::sleep_until(due).await;
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let status = call(n % CLIENTS).await;
            answered(status, due.elapsed().as_secs_f64() * 1000.0)
        }));
        due += every;
        n += 1;
    }
    let mut all = vec![];
    for t in tasks {
        all.push(t.await.ok().flatten());
    }
    let dropped = all.iter().filter(|l| l.is_none()).count();
    Load::of(all.into_iter().flatten().collect(), dropped, start.elapsed().as_secs_f64())
}

/// Send and read the whole answer, as a client does (an unread body closes
/// the connection: the next call pays for a new one, and workerd logs the
/// write it could not finish): its status and `Server-Timing`.
async fn read_whole(request: reqwest::RequestBuilder) -> (u16, String) {
    let Ok(r) = request.send().await else { return (0, String::new()) };
    let status = r.status().as_u16();
    let timing = r.headers().get("server-timing").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let _ = r.bytes().await;
    (status, timing)
}

/// Milliseconds since the epoch (the worker's clock is the same machine's).
fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// One submit as the client saw it and the worker told it (`Server-Timing`):
/// the wait before the handler began, the handler's phases, the time after.
struct Seen {
    total_ms: f64,
    before_ms: f64,
    handler_ms: f64,
    after_ms: f64,
    timing: String,
}

impl Seen {
    fn of(sent: f64, received: f64, timing: String) -> Seen {
        let metric = |name: &str, field: &str| {
            timing.split(',').map(str::trim).find(|m| m.starts_with(name)).and_then(|m| {
                m.split(';').find_map(|p| p.strip_prefix(field)).and_then(|v| v.parse::<f64>().ok())
            })
        };
        let handler: f64 = ["auth", "read", "reserve", "init"].iter().filter_map(|n| metric(n, "dur=")).sum();
        let start = metric("start", "desc=").unwrap_or(sent);
        let before_ms = (start - sent).max(0.0);
        Seen {
            total_ms: received - sent,
            before_ms,
            handler_ms: handler,
            after_ms: (received - start - handler).max(0.0),
            timing,
        }
    }
}

/// Each submit's latency split by where it went, to say which phase the slowest ones spent their time in.
#[derive(Clone, Default)]
struct Timings(Arc<std::sync::Mutex<Vec<Seen>>>);

impl Timings {
    async fn post(&self, request: reqwest::RequestBuilder) -> u16 {
        let sent = epoch_ms();
        let (status, timing) = read_whole(request).await;
        if let Ok(mut all) = self.0.lock() {
            all.push(Seen::of(sent, epoch_ms(), timing));
        }
        status
    }

    /// The slowest 1%, and the median, with where the time went (stderr):
    /// before the handler began (queued in the runtime or the connection), in
    /// it, and after it (the answer on its way back).
    fn report(&self, what: &str) {
        let Ok(mut all) = self.0.lock() else { return };
        all.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
        let slowest = (all.len() / 100).max(1);
        eprintln!("POST /v1/jobs, {what}: the slowest {slowest} of {}:", all.len());
        let line = |s: &Seen| {
            format!(
                "{:.0} ms = before {:.0} + handler {:.0} + after {:.0} ({})",
                s.total_ms, s.before_ms, s.handler_ms, s.after_ms, s.timing
            )
        };
        for s in all.iter().take(slowest) {
            eprintln!("  {}", line(s));
        }
        if let Some(s) = all.get(all.len() / 2) {
            eprintln!("  median {}", line(s));
        }
    }
}

/// A client for account `load-{i}`, granted credits to submit with.
fn own_account(s: &Stack, i: usize) -> reqwest::Client {
    let account = format!("load-{i}");
    let grant = json!({"amount": 1_000_000_000_000i64, "idempotencyKey": "load"}).to_string();
    let answer = crate::stack::raw_http(
        "POST",
        &s.url(&format!("/v1/admin/accounts/{account}/grants")),
        &[
            ("authorization", &format!("Bearer {}", crate::stack::ADMIN_TOKEN)),
            ("content-type", "application/json"),
        ],
        &grant,
    );
    assert!(answer.as_ref().is_some_and(|(status, _)| *status == 201), "grant to {account}: {answer:?}");
    crate::stack::client_with(&crate::stack::token(&account)).0
}

pub async fn run() -> Section {
    let s = Stack::start(
        json!({}),
        &[("MAX_OPEN_JOBS", "1000000"), ("MAX_SUBMITS_PER_MINUTE", "1000000"), ("POLL_FIRST_SECS", "3600")],
    );
    let (status, job) = s.submit(json!({"model": "gemini-2.5-flash", "requests": requests(10)}), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let (http, base) = (s.http.0.clone(), s.url(""));
    let get = |path: String| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move { read_whole(http.get(url)).await.0 }
        }
    };
    // Warm the isolate and the job's object before measuring.
    for _ in 0..50 {
        get(format!("/v1/jobs/{id}"))(0).await;
    }
    let trivial = load(get("/healthz".into())).await;
    let view = load(get(format!("/v1/jobs/{id}"))).await;
    let body = json!({"model": "gemini-2.5-flash", "requests": requests(10)}).to_string();
    let (http2, url) = (http.clone(), format!("{base}/v1/jobs"));
    let (url2, body2) = (url.clone(), body.clone());
    let (http3, url3, body3) = (http.clone(), url.clone(), body.clone());
    let timings = Timings::default();
    let seen = timings.clone();
    let submit = load(move |_| {
        let (http, url, body, seen) = (http2.clone(), url.clone(), body.clone(), seen.clone());
        async move { seen.post(http.post(url).header("content-type", "application/json").body(body)).await }
    })
    .await;
    timings.report("one account");
    // The same, each client its own account (so its own ledger object).
    let clients: Vec<reqwest::Client> = (0..CLIENTS).map(|i| own_account(&s, i)).collect();
    let timings = Timings::default();
    let seen = timings.clone();
    let submit_apart = load(move |i| {
        let (http, url, body, seen) =
            (clients[i % CLIENTS].clone(), url2.clone(), body2.clone(), seen.clone());
        async move { seen.post(http.post(url).header("content-type", "application/json").body(body)).await }
    })
    .await;
    timings.report("16 accounts");
    // Independent users at half the rate the closed loop reached: what a
    // server that is not saturated answers, once the jobs submitted so far
    // have taken their first steps (in workerd they share the worker's thread).
    tokio::time::sleep(Duration::from_secs(20)).await;
    let rate = submit.per_sec / 2.0;
    let timings = Timings::default();
    let seen = timings.clone();
    let paced = load_at(rate, move |_| {
        let (http, url, body, seen) = (http3.clone(), url3.clone(), body3.clone(), seen.clone());
        async move { seen.post(http.post(url).header("content-type", "application/json").body(body)).await }
    })
    .await;
    timings.report("one account, open loop at half the rate");
    let row = |metric: &str, l: &Load| Row {
        metric: metric.into(),
        value: format!(
            "{:.0}/s, p50 {:.1} ms, p99 {:.1} ms{}",
            l.per_sec,
            l.p50_ms,
            l.p99_ms,
            if l.dropped > 0 { format!(", {} dropped", l.dropped) } else { String::new() }
        ),
        baseline: format!("{:.0}/s, p99 {:.1} ms", trivial.per_sec, trivial.p99_ms),
        ratio: Some(l.per_sec / trivial.per_sec),
        target: None,
    };
    let tail_within = |l: &Load| Some(("p99 ≤ 4 × p50".to_string(), l.p99_ms <= 4.0 * l.p50_ms));
    Section {
        title: "HTTP under load".into(),
        how: format!(
            "{CLIENTS} concurrent clients for {SECONDS} s per route, from the benchmark process over loopback \
             (keep-alive), against the worker in workerd. `GET /v1/jobs/:id` is authenticated and answered by \
             the job's Durable Object; `POST /v1/jobs` validates 10 requests, stores the input in R2, reserves \
             credits in the account's object and creates the job's object (each job then runs on its own), \
             from one account and from 16 (each client its own, so its own ledger object): closed loops, each \
             client sending again on its answer; then, 20 s later, one account's submits as an open loop at \
             half the rate the closed loop reached (independent users; latency counted from when each was due). \
             Baseline: `GET /healthz` of the same worker. The ratio is requests/s over the baseline's."
        ),
        rows: vec![
            row("GET /v1/jobs/:id", &view),
            Row { target: tail_within(&submit), ..row("POST /v1/jobs (10 requests), one account", &submit) },
            Row {
                target: tail_within(&submit_apart),
                ..row("POST /v1/jobs (10 requests), 16 accounts", &submit_apart)
            },
            Row {
                target: tail_within(&paced),
                ..row(&format!("POST /v1/jobs (10 requests), one account, {rate:.0}/s open loop"), &paced)
            },
        ],
    }
}
