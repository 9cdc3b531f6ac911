//! The whole system on loopback: the emulator and the real worker in workerd
//! (wrangler's dev engine via `worker/serve.mjs`, local Durable Objects and R2 persisted to a temp dir).
//! `restart_worker` kills workerd mid-flight and starts it again on the same
//! state, as a crash or deploy would.

use crate::process::{Service, workspace_root};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const GEMINI_KEY: &str = "e2e-gemini-key";
pub const JWT_SECRET: &str = "e2e-jwt-secret";
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

/// An HTTP client that sends `Authorization: Bearer {bearer}` on every call.
pub fn client_with(bearer: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {bearer}")) {
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder().default_headers(headers).build().unwrap_or_else(|e| panic!("{e}"))
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
    pub http: reqwest::Client,
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
        vars.push(("GEMINI_API_BASE".into(), emulator.url.clone()));
        vars.push(("GEMINI_API_KEY".into(), GEMINI_KEY.into()));
        vars.push(("JWT_SECRET".into(), JWT_SECRET.into()));
        vars.push(("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()));
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
            .args(["--log-level", "warn", "--direct", "true"])
            .env("WRANGLER_SEND_METRICS", "false")
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0);
        for (k, v) in &self.vars {
            cmd.arg("--var").arg(format!("{k}:{v}"));
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

/// Whether `url` answers 200 (used while waiting for workerd).
fn healthy(url: &str) -> bool {
    raw_http("GET", url, &[], "").is_some_and(|(status, _)| status == 200)
}

/// A plain blocking HTTP/1.1 call on loopback: (status, whole answer). Used
/// before any async runtime exists.
fn raw_http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
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
