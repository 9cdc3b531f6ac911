//! gemini-emulator: a local server that speaks the Gemini Batch API wire protocol
//! (`shared/research/gemini-batch-protocol.md`) closely enough that Google's own
//! Python SDK runs against it unchanged, with an emulated clock, deterministic
//! token counts and scriptable faults for tests. Control routes live under
//! `/_emulator/`, which is clearly not Gemini's.

mod batches;
pub mod clock;
pub mod config;
mod conn;
mod control;
pub mod error;
pub mod faults;
mod fields;
mod files;
mod gate;
mod http;
pub mod model;
mod realtime;
mod results;
pub mod store;
mod upload;
pub mod webhook;

use clock::Clock;
use config::Config;
use faults::Faults;
use gate::RequestLog;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use store::{Effect, Store};

/// Shared state of one emulator instance.
pub struct Emulator {
    config: RwLock<Config>,
    initial_config: Config,
    clock: Mutex<Clock>,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    log: Mutex<RequestLog>,
    rpm: Mutex<realtime::RpmLog>,
    uploads: upload::Sessions,
    webhooks: Mutex<Vec<webhook::Delivery>>,
    /// `http://{Host}` of the latest request: the base of the URLs handed out
    /// when no `public_base_url` is configured.
    observed_base: Mutex<Option<String>>,
    data_dir: PathBuf,
    http: reqwest::Client,
    /// Keeps a temporary data dir alive as long as the emulator.
    _tmp: Option<tempfile::TempDir>,
}

/// Lock poisoning only follows a panic elsewhere; the data is still consistent
/// enough for an emulator, so keep serving instead of cascading panics.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Emulator {
    pub fn new(config: Config, time_scale: f64, data_dir: Option<PathBuf>) -> std::io::Result<Arc<Emulator>> {
        let (data_dir, tmp) = match data_dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::Builder::new().prefix("gemini-emulator-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(data_dir.join("files"))?;
        std::fs::create_dir_all(data_dir.join("uploads"))?;
        Ok(Arc::new(Emulator {
            store: Mutex::new(Store::new(config.seed)),
            initial_config: config.clone(),
            config: RwLock::new(config),
            clock: Mutex::new(Clock::new(time_scale)),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(RequestLog::default()),
            rpm: Mutex::default(),
            uploads: upload::Sessions::default(),
            webhooks: Mutex::new(Vec::new()),
            observed_base: Mutex::new(None),
            data_dir,
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
            _tmp: tmp,
        }))
    }

    pub fn config(&self) -> Config {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, cfg: Config) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    pub fn now_ns(&self) -> i64 {
        lock(&self.clock).now_ns()
    }

    /// Base of absolute URLs: configured, else as the clients reach us, else Google's.
    pub fn public_base(&self) -> String {
        self.config()
            .public_base_url
            .or_else(|| lock(&self.observed_base).clone())
            .unwrap_or_else(|| files::GOOGLE_BASE.to_string())
            .trim_end_matches('/')
            .to_string()
    }

    fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    /// Let emulated time act on every batch and file, then carry out the effects.
    pub fn tick(self: &Arc<Self>) {
        let now = self.now_ns();
        let cfg = self.config();
        let effects = lock(&self.store).advance(now, &cfg);
        self.run_effects(effects);
    }

    fn run_effects(self: &Arc<Self>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Generate { id, target, limit } => {
                    let emu = Arc::clone(self);
                    tokio::spawn(async move { emu.generate(id, target, limit).await });
                }
                Effect::Terminal { id } => self.on_terminal(&id),
                Effect::RemoveBytes(path) => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }

    fn on_terminal(self: &Arc<Self>, id: &str) {
        let Some(hook) = self.config().webhook else { return };
        let event = {
            let store = lock(&self.store);
            let Some(b) = store.batches.get(id) else { return };
            webhook::event_for(b, self.now_ns())
        };
        let emu = Arc::clone(self);
        tokio::spawn(async move { webhook::deliver(emu, hook, event).await });
    }

    /// Stop serving, remove all records and bytes, restore the start-up config.
    pub fn reset(&self) {
        let mut store = lock(&self.store);
        for f in store.files.values() {
            let _ = std::fs::remove_file(&f.path);
        }
        *store = Store::new(self.initial_config.seed);
        lock(&self.faults).clear();
        lock(&self.log).clear();
        lock(&self.rpm).clear();
        lock(&self.webhooks).clear();
        self.uploads.clear();
        self.set_config(self.initial_config.clone());
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub emulator: Arc<Emulator>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serve on `listener` until the task is dropped; a ticker keeps time moving so
/// batches finish and webhooks fire without anyone polling.
pub async fn serve(emulator: Arc<Emulator>, listener: tokio::net::TcpListener) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let app = http::router(Arc::clone(&emulator));
    let ticker = Arc::clone(&emulator);
    let task = tokio::spawn(async move {
        let tick = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ticker.tick();
            }
        });
        let listener = conn::ResettableListener(listener);
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<conn::Reset>()).await;
        tick.abort();
    });
    Ok(Server { addr, emulator, task })
}

/// Start an emulator on `addr` (port 0 picks a free one).
pub async fn start(config: Config, time_scale: f64, addr: SocketAddr) -> std::io::Result<Server> {
    let emulator = Emulator::new(config, time_scale, None)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve(emulator, listener).await
}
