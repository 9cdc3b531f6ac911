//! The whole system on loopback: the emulator and the real worker in workerd
//! (wrangler's dev engine via `worker/serve.mjs`, local Durable Objects and R2 persisted to a temp dir).
//! `restart_worker` kills workerd mid-flight and starts it again on the same
//! state, as a crash or deploy would.

use crate::process::{Service, workspace_root};
use crate::record::Http;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const GEMINI_KEY: &str = "e2e-gemini-key";
/// At least 32 bytes: the worker refuses a shorter `JWT_SECRET` (503 misconfigured).
pub const JWT_SECRET: &str = "e2e-jwt-secret-of-thirty-two-bytes-or-more";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";
/// The account `Stack::http` acts for; it starts with [`STARTING_CREDITS`].
pub const ACCOUNT: &str = "e2e";
pub const STARTING_CREDITS: i64 = 1_000_000_000_000_000;

/// A user token for `account`, valid for a day.
pub fn token(account: &str) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
        + 86_400;
    batchgate_core::auth::sign(&json!({"sub": account, "exp": exp}), JWT_SECRET.as_bytes())
}

/// How long a client keeps an idle connection for reuse. workerd closes a
/// keep-alive connection after 5 s without a request (kj's HTTP pipeline
/// timeout; measured: a probe's connection closed 5.0 s after its answer).
/// reqwest keeps idle connections 90 s by default, so a call sent on one just as
/// workerd closes it dies with "connection reset" before any answer. Under CPU
/// load that race lost the scale run (issue 16): the poll after a long submit
/// took the connection idle since before it. Idle connections go well before 5 s.
pub const IDLE_CONNECTION: Duration = Duration::from_secs(2);

/// Sent with a request whose body is large and streamed: its connection is not
/// reused. workerd, serving HTTP itself (locally; in production Cloudflare's
/// edge does), may drop a connection after answering such a request without
/// saying `Connection: close`: kj's HttpServer gives up its bounded drain of
/// the request stream after the response (capnproto PR 2831 describes it). The
/// client then sends its next request on a dead connection and gets a reset.
/// Measured (issue 16): the scale run's 322 MB submit answered `202` with
/// `Content-Length` and no `Connection: close`; the first poll on the same
/// connection was reset by workerd 7 ms later, workerd logging nothing.
pub const CLOSE_AFTER: (&str, &str) = ("connection", "close");

/// A client for the worker: idle connections dropped before workerd drops them.
pub fn client() -> Http {
    Http(client_builder().build().unwrap_or_else(|e| panic!("{e}")))
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(IDLE_CONNECTION)
}

/// A client for the worker that sends `Authorization: Bearer {bearer}` on every call.
pub fn client_with(bearer: &str) -> Http {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {bearer}")) {
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    Http(client_builder().default_headers(headers).build().unwrap_or_else(|e| panic!("{e}")))
}

pub struct Worker {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // wrangler runs workerd as a child: stop the whole process group.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

pub struct Stack {
    pub emulator: Service,
    pub worker: Option<Worker>,
    vars: Vec<(String, String)>,
    state: tempfile::TempDir,
    pub http: Http,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18787)
}

/// Vars that make the worker quick to poll and retry, for tests.
pub fn fast_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("POLL_FIRST_SECS", "0.3"),
        ("POLL_MIN_SECS", "0.3"),
        ("POLL_MAX_SECS", "1"),
        ("RETRY_BASE_SECS", "0.2"),
        ("RETRY_MAX_SECS", "1"),
        ("GEMINI_TIMEOUT_SECS", "5"),
    ]
}

impl Stack {
    /// Start the emulator (`emulator_config` patches its config) and the worker.
    pub fn start(emulator_config: Value, extra_vars: &[(&str, &str)]) -> Stack {
        let config = json!({"pendingSecs": 0.5, "runningSecs": 0.5}).as_object().cloned().unwrap_or_default();
        let mut merged = config;
        if let Some(o) = emulator_config.as_object() {
            merged.extend(o.clone());
        }
        let emulator =
            Service::emulator(&["--api-key", GEMINI_KEY, "--config", &Value::Object(merged).to_string()])
                .unwrap_or_else(|e| panic!("{e}"));
        let mut vars: Vec<(String, String)> = fast_vars()
            .into_iter()
            .chain(extra_vars.iter().copied())
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // The suite's defaults, unless the test sets its own.
        for (k, v) in [
            ("GEMINI_API_BASE", emulator.url.as_str()),
            ("GEMINI_API_KEY", GEMINI_KEY),
            ("JWT_SECRET", JWT_SECRET),
            ("ADMIN_TOKEN", ADMIN_TOKEN),
        ] {
            if !vars.iter().any(|(name, _)| name == k) {
                vars.push((k.into(), v.into()));
            }
        }
        let state =
            tempfile::Builder::new().prefix("batchgate-e2e-").tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut stack = Stack { emulator, worker: None, vars, state, http: client_with(&token(ACCOUNT)) };
        stack.start_worker();
        let grant = json!({"amount": STARTING_CREDITS, "idempotencyKey": "e2e-start"}).to_string();
        let answer = raw_http(
            "POST",
            &stack.url(&format!("/v1/admin/accounts/{ACCOUNT}/grants")),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}")), ("content-type", "application/json")],
            &grant,
        );
        assert!(
            answer.as_ref().is_some_and(|(status, _)| *status == 201),
            "granting starting credits: {answer:?}"
        );
        stack
    }

    /// Start workerd. A start can fail for reasons outside the worker (the
    /// proxy port taken between `free_port` and wrangler binding it, a busy CI
    /// machine): a launcher that exits or stays silent is killed and started
    /// again on a fresh port, and the last attempt's log ends up in the panic.
    fn start_worker(&mut self) {
        const ATTEMPTS: usize = 3;
        let mut failures = vec![];
        for _ in 0..ATTEMPTS {
            match self.spawn_worker(Duration::from_secs(90)) {
                Ok(worker) => {
                    self.worker = Some(worker);
                    return;
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!("the worker did not come up in {ATTEMPTS} attempts:\n{}", failures.join("\n"));
    }

    fn spawn_worker(&self, patience: Duration) -> Result<Worker, String> {
        // The dev proxy's port (unused by the tests, which talk to workerd directly).
        let port = free_port();
        // Logs go under target/ so a failed start can still be read after the test.
        let logs = workspace_root().join("target/e2e-logs");
        let _ = std::fs::create_dir_all(&logs);
        let log_path = logs.join(format!("wrangler-{port}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        // wrangler's dev engine without the inspector: see worker/serve.mjs.
        let mut cmd = Command::new("node");
        cmd.arg(workspace_root().join("worker/serve.mjs"))
            .args(["--ip", "127.0.0.1", "--port", &port.to_string(), "--persist-to"])
            .arg(self.state.path().join("state"))
            .args(["--log-level", &log_level(), "--direct", "true"])
            .env("WRANGLER_SEND_METRICS", "false")
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0);
        for (k, v) in &self.vars {
            let kind = if SECRETS.contains(&k.as_str()) { "--secret" } else { "--var" };
            cmd.arg(kind).arg(format!("{k}:{v}"));
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start node (run `cargo xtask setup`): {e}"))?;
        // Dropping `worker` on any failure below kills the process group.
        let mut worker = Worker { child, url: String::new(), log: log_path.clone() };
        let deadline = Instant::now() + patience;
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            // workerd's own address (no dev proxy in front), as serve.mjs prints it.
            let printed =
                log.lines().find_map(|l| l.strip_prefix("worker ready on ")).map(|u| u.trim_end_matches('/'));
            if let Some(url) = printed
                && healthy(&format!("{url}/healthz"))
            {
                worker.url = url.to_string();
                crate::record::watch(url);
                return Ok(worker);
            }
            let exited = worker.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let why =
                    exited.map_or_else(|| format!("silent for {patience:?}"), |s| format!("exited ({s})"));
                let tail: String = log
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n  ");
                return Err(format!("- {} {why}; its log ends:\n  {tail}", log_path.display()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Where the wrangler logs of this run are kept (they outlive the test).
    pub fn log_path(&self) -> PathBuf {
        workspace_root().join("target/e2e-logs")
    }

    /// Everything the worker process printed so far.
    pub fn worker_log(&self) -> String {
        self.worker.as_ref().and_then(|w| std::fs::read_to_string(&w.log).ok()).unwrap_or_default()
    }

    /// The lines of workerd's log that report an exception nothing handled: a
    /// promise rejected with no handler, or an error thrown out of an event. One
    /// of these in a Durable Object resets it and every request routed to it.
    pub fn uncaught_exceptions(&self) -> Vec<String> {
        uncaught_exceptions(&self.worker_log())
    }

    /// Kill workerd (no goodbye) and start it again on the same state.
    pub fn restart_worker(&mut self) {
        self.worker = None;
        self.start_worker();
    }

    /// The workerd processes serving the worker (children of the Node launcher).
    pub fn workerd_pids(&self) -> Vec<u32> {
        let Some(root) = self.worker.as_ref().map(|w| w.child.id()) else { return vec![] };
        let mut pids = vec![];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(root) && stat.contains("(workerd)") {
                pids.push(pid);
            }
        }
        pids
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.worker.as_ref().map(|w| w.url.as_str()).unwrap_or_default())
    }

    pub fn emu(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.url)
    }
}

/// Bound as secrets, as in production: wrangler lists plain vars' values in its
/// log at `debug`, and the suites check that the Gemini key never appears there.
const SECRETS: &[&str] =
    &["GEMINI_API_KEY", "GEMINI_API_KEYS", "JWT_SECRET", "ADMIN_TOKEN", "GEMINI_WEBHOOK_SECRET"];

/// workerd's log level: `BATCHGATE_E2E_LOG_LEVEL`, or `debug`: workerd's
/// "uncaught exception" lines reach wrangler's log only at that level
/// (measured with wrangler 4.86: absent at `warn` and `info`).
fn log_level() -> String {
    std::env::var("BATCHGATE_E2E_LOG_LEVEL").unwrap_or_else(|_| "debug".into())
}

/// The uncaught exceptions in a workerd log, less the ones workerd logs for
/// its own socket I/O. workerd (1.2026) logs "uncaught exception; source =
/// Uncaught (in promise) … Network connection lost" whenever a subrequest's
/// socket is reset, while it sends the body or reads the answer, even when the
/// `fetch()` promise was awaited and its rejection handled; the object is not
/// reset (measured: a Durable Object that catches such a failure keeps its
/// in-memory state and finishes its other requests; see ARCHITECTURE.md). That
/// case is recognised by the socket failure (a kj `disconnected:` on a read,
/// write, writev or splice, or a user's body ending before its length or its
/// last chunk while it was sent on) workerd logs just before it;
/// the same failure may also be logged as a kj-level "uncaught exception;
/// exception = kj/async-io-unix…: disconnected: ::write…", which only workerd's
/// own socket I/O can raise (the worker's code is JavaScript and wasm).
/// Likewise a kj-level "Can't read from request stream after …" (workerd's
/// `global-scope.c++`, symbolized: a `fetch()` body pump) is a subrequest still
/// pumping a request's body after that request was answered, failed or
/// dropped: workerd's plumbing, in these tests Miniflare's workers forwarding
/// a body (its entry worker to ours; an R2 binding's request to its bucket
/// object), and the kj "operation canceled" logged beside it is that request's
/// end. Neither is JavaScript, neither resets an object; the worker's own
/// failures are JavaScript exceptions ("source = Uncaught…"), which still
/// count. Every other uncaught exception is ours, and fails the suites.
pub fn uncaught_exceptions(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    uncaught_exception_lines(log).into_iter().filter_map(|i| lines.get(i).map(|l| (*l).to_string())).collect()
}

/// Where `uncaught_exceptions` are in `log`: their line numbers (from 0).
pub fn uncaught_exception_lines(log: &str) -> Vec<usize> {
    let lines: Vec<&str> = log.lines().collect();
    let mut found = vec![];
    for (i, line) in lines.iter().enumerate() {
        if !(line.contains("uncaught exception") || line.contains("Uncaught (in promise)")) {
            continue;
        }
        if line.contains("uncaught exception; exception = kj/async-io-unix")
            && (line.contains("disconnected: ::write") || line.contains("disconnected: ::writev"))
        {
            continue;
        }
        if body_pump_outlived_its_request(&lines, i) {
            continue;
        }
        let lost_connection = line.contains("Network connection lost");
        let after_failed_io = lines.get(i.saturating_sub(4)..i).unwrap_or_default().iter().any(|l| {
            ((l.contains("kj/async-io") || l.contains("kj/compat/http.c++")) && l.contains("disconnected:"))
                || l.contains("uncaught exception; source = Uncaught (in promise); stack = Error: Network connection lost.")
        });
        if !(lost_connection && after_failed_io) {
            found.push(i);
        }
    }
    found
}

/// Whether line `i` is workerd's kj-level report of a body pump that outlived
/// its request, or of the cancellation beside it (see `uncaught_exceptions`).
fn body_pump_outlived_its_request(lines: &[&str], i: usize) -> bool {
    let neutered = |l: &str| {
        l.contains("uncaught exception; exception = workerd/api/global-scope.c++")
            && l.contains("Can't read from request stream ")
    };
    let Some(line) = lines.get(i) else { return false };
    if neutered(line) {
        return true;
    }
    let canceled = line.contains("uncaught exception; exception = kj/async.c++")
        && line.ends_with("disconnected: operation canceled");
    canceled
        && lines
            .get(i.saturating_sub(4)..(i + 5).min(lines.len()))
            .unwrap_or_default()
            .iter()
            .any(|l| neutered(l))
}

/// Line `at` of `log` with the `before` lines that led to it: what the worker
/// was doing when an exception went uncaught.
pub fn lines_before(log: &str, at: usize, before: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines.get(at.saturating_sub(before)..=at).unwrap_or_default().join("\n")
}

/// The last `n` lines of `log`.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines.get(lines.len().saturating_sub(n)..).unwrap_or_default().join("\n")
}

impl Drop for Stack {
    /// A failing test gets the end of workerd's log with its panic, so the
    /// next failure explains itself.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.worker_log();
            eprintln!("--- the last 60 lines of workerd's log ---\n{}\n---", tail(&log, 60));
            eprintln!("--- the emulator's last 40 requests ---\n{}\n---", self.emulator_requests_tail(40));
        }
    }
}

impl Stack {
    /// The emulator's last `n` requests, a line each (blocking: used while panicking).
    fn emulator_requests_tail(&self, n: usize) -> String {
        let Some((_, answer)) = raw_http("GET", &self.emu("/_emulator/requests"), &[], "") else {
            return "(the emulator did not answer)".into();
        };
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: Value = serde_json::from_str(body).unwrap_or_default();
        let all = v["requests"].as_array().cloned().unwrap_or_default();
        all.get(all.len().saturating_sub(n)..)
            .unwrap_or_default()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} [{}] -> {} {}",
                    r["seq"],
                    r["method"],
                    r["path"].as_str().unwrap_or_default(),
                    r["uploadCommand"].as_str().unwrap_or(""),
                    r["status"],
                    r["fault"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Whether `url` answers 200 (used while waiting for workerd).
fn healthy(url: &str) -> bool {
    raw_http("GET", url, &[], "").is_some_and(|(status, _)| status == 200)
}

/// A plain blocking HTTP/1.1 call on loopback: (status, whole answer). Used
/// before any async runtime exists.
pub(crate) fn raw_http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let (host, path) = url.strip_prefix("http://").and_then(|r| r.split_once('/'))?;
    let mut s = std::net::TcpStream::connect(host).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req = format!("{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    Some((status, buf))
}

#[cfg(test)]
mod tests {
    use super::uncaught_exceptions;

    /// workerd's lines when a subrequest's body write meets a reset socket
    /// (captured from workerd 1.2026 under wrangler 4.86, stacks shortened).
    const BODY_PUMP: &str = "exception = kj/async-io-unix.c++:186: disconnected: ::write(fd, buffer.begin(), buffer.size()): Connection reset by peer
stack: workerd@51faac1 workerd@51faa79
uncaught exception; source = Uncaught (in promise); stack = Error: Network connection lost.
uncaught exception; exception = workerd/jsg/_virtual_includes/iterator/workerd/jsg/value.h:1480: disconnected: jsg.Error: Network connection lost.
stack: workerd@2f20430 workerd@2f2102c";

    #[test]
    fn workerds_own_body_pump_failure_is_not_ours() {
        assert!(uncaught_exceptions(BODY_PUMP).is_empty());
        let writev = BODY_PUMP
            .replace("::write(fd, buffer.begin(), buffer.size())", "::writev(fd, iov.begin(), iov.size())");
        assert!(uncaught_exceptions(&writev).is_empty());
        let read = "exception = kj/async-io-unix.c++:568: disconnected: ::read(fd, buffer, maxBytes): Connection reset by peer
uncaught exception; source = Uncaught (in promise); stack = Error: Network connection lost.";
        assert!(
            uncaught_exceptions(read).is_empty(),
            "a reset while reading the answer (small body sent whole)"
        );
        let kj = "uncaught exception; exception = kj/async-io-unix.c++:186: disconnected: \
                  ::write(fd, buffer.begin(), buffer.size()): Connection reset by peer";
        assert!(uncaught_exceptions(kj).is_empty());
    }

    /// A body pump outliving its request, as CI logged it (stack lines cut).
    const PUMP_NEUTERED: &str = "uncaught exception; exception = workerd/api/global-scope.c++:52: failed: jsg.TypeError: Can't read from request stream after responding with an exception.
stack: workerd@20066b0 workerd@2fa2c80
uncaught exception; exception = kj/async.c++:212: disconnected: operation canceled
stack: workerd@20066b0";

    #[test]
    fn a_body_pump_outliving_its_request_is_workerds() {
        assert!(uncaught_exceptions(PUMP_NEUTERED).is_empty());
        let sent = PUMP_NEUTERED.replace("responding with an exception", "response has been sent");
        assert!(uncaught_exceptions(&sent).is_empty());
        let lone_cancel = "[wrangler:info] GET /v1/jobs 200 OK (3ms)\nuncaught exception; exception = kj/async.c++:212: disconnected: operation canceled";
        assert_eq!(
            uncaught_exceptions(lone_cancel).len(),
            1,
            "a cancellation with no pump beside it is not explained"
        );
        let js = format!(
            "{PUMP_NEUTERED}\nuncaught exception; source = Uncaught (in promise); stack = TypeError: Can't read from request stream after response has been sent."
        );
        assert_eq!(uncaught_exceptions(&js).len(), 1, "a JavaScript rejection of ours is never the pump's");
    }

    #[test]
    fn any_other_uncaught_exception_is_found() {
        // The same rejection with no failed socket write before it: a promise of ours.
        let ours = "[wrangler:info] GET /v1/jobs 200 OK (3ms)\nuncaught exception; source = Uncaught (in promise); stack = Error: Network connection lost.";
        assert_eq!(uncaught_exceptions(ours).len(), 1);
        let thrown =
            format!("{BODY_PUMP}\nuncaught exception; source = Uncaught; stack = RuntimeError: unreachable");
        assert_eq!(
            uncaught_exceptions(&thrown),
            vec!["uncaught exception; source = Uncaught; stack = RuntimeError: unreachable"]
        );
        let later = format!(
            "{BODY_PUMP}\n{}\n{}\n{}\n{}\nuncaught exception; source = Uncaught (in promise); stack = Error: Network connection lost.",
            "a", "b", "c", "d"
        );
        assert_eq!(
            uncaught_exceptions(&later).len(),
            1,
            "a rejection well after the failed write is not the pump's"
        );
    }
}
