//! Starting the project's binaries as child processes: wait for their "listening
//! on" line, measure their memory, and always stop them (on drop too).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The emulator binary: `GEMINI_EMULATOR_BIN`, else the workspace's debug build,
/// brought up to date once per test run (a stale one would lack what the
/// tests configure; cargo does nothing when it is current).
pub fn emulator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GEMINI_EMULATOR_BIN") {
        return PathBuf::from(p);
    }
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "gemini-emulator"])
            .current_dir(workspace_root())
            .status();
        status.is_ok_and(|s| s.success())
    });
    assert!(built, "building gemini-emulator failed");
    workspace_root().join("target/debug/gemini-emulator")
}

/// A child process that announced its URL; killed when dropped.
pub struct Service {
    pub child: Child,
    pub url: String,
    /// A data dir this process owns for the child: removed after the child is
    /// killed, which the child, dying by SIGKILL, cannot do itself.
    data_dir: Option<tempfile::TempDir>,
}

impl Service {
    /// Run `program args…` and wait up to `timeout` for a stdout line containing
    /// `listening on URL`.
    pub fn spawn(program: &Path, args: &[&str], timeout: Duration) -> Result<Service, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, url)) = line.split_once("listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(url) => Ok(Service { child, url, data_dir: None }),
            Err(_) => {
                let _ = child.kill();
                Err(format!("{} did not report a listening address", program.display()))
            }
        }
    }

    /// The emulator on a free port; its file bytes go to a temp dir owned
    /// here unless `args` name a `--data-dir`.
    pub fn emulator(args: &[&str]) -> Result<Service, String> {
        let mut all = vec!["--port", "0"];
        all.extend_from_slice(args);
        let owned = if args.contains(&"--data-dir") {
            None
        } else {
            Some(tempfile::Builder::new().prefix("gemini-emulator-").tempdir().map_err(|e| e.to_string())?)
        };
        let dir = owned.as_ref().map(|d| d.path().display().to_string());
        if let Some(dir) = &dir {
            all.extend(["--data-dir", dir]);
        }
        let mut service = Service::spawn(&emulator_bin(), &all, Duration::from_secs(30))?;
        service.data_dir = owned;
        Ok(service)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB, from /proc.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}
