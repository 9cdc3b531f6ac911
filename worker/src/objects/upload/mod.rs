//! `UploadObject`: one Durable Object per resumable upload session. It keeps
//! the Gemini session URL and how many bytes Gemini holds, and admits each
//! chunk with core's rules, lending the session to the worker that streams the
//! chunk's body straight to Gemini (the bytes never pass through the object)
//! and then commits the outcome. A chunk whose outcome is unknown is
//! resynchronised by asking Gemini; a session is only `done` once Gemini has
//! finalized the file and the account has recorded it. Idle sessions expire on
//! the object's alarm and are cancelled upstream.

pub mod client;
pub mod protocol;

use crate::objects::account::client as accounts;
use crate::objects::rpc::{self, Incoming, Rpc};
use crate::platform::clock::now_ms;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use crate::platform::gemini::Gemini;
use crate::platform::gemini_files::{self, Received};
use batchgate_core::upload::{ContentRange, OwnedFile, UploadError, UploadRules};
use protocol::{Admit, Commit, Lease, Open, Session, SessionState, SessionView, Status, Where};
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

fn refused(e: UploadError, received: u64) -> ApiError {
    ApiError::from(e).with_details(Where { received })
}

#[durable_object]
pub struct UploadObject {
    state: State,
    env: Env,
    settings: Settings,
}

const KEY: &str = "session";

impl UploadObject {
    async fn load(&self) -> Result<Option<Session>> {
        self.state.storage().get(KEY).await
    }

    async fn save(&self, s: &Session) -> Result<()> {
        self.state.storage().put(KEY, s).await
    }

    /// Record a finalized file with its account (repeated until it works).
    async fn finish(&self, s: &mut Session) -> Result<()> {
        if let (Some(file), false) = (&s.file, s.recorded) {
            if accounts::record_file(&self.env, &s.account, file, &s.id).await.is_ok() {
                s.recorded = true;
                s.state = SessionState::Done;
            }
            self.save(s).await?;
        }
        Ok(())
    }

    /// May this chunk go to Gemini now? Yes: the object lends the caller the
    /// session (URL, offset) until the lease ends, and the caller streams the
    /// body straight to Gemini, then commits.
    async fn admit(&self, admit: Admit, mut s: Session) -> Result<std::result::Result<Lease, ApiError>> {
        if s.state != SessionState::Open || s.file.is_some() {
            return Ok(Err(refused(UploadError::Ended, s.received)));
        }
        let now = now_ms();
        if s.sending_until_ms > now {
            let e =
                ApiError::new(409, "chunk_in_progress", "another chunk of this upload is still being sent");
            return Ok(Err(e.with_details(Where { received: s.received })));
        }
        if s.sending_until_ms > 0 {
            // A lent chunk was never committed (its worker died): ask Gemini what it holds.
            self.resync(&mut s).await;
        }
        let rules = UploadRules { granularity: s.granularity, ..self.settings.uploads.rules.clone() };
        let checked = ContentRange::parse(&admit.content_range)
            .and_then(|r| rules.check_chunk(r, admit.body_len, s.size, s.received));
        let chunk = match checked {
            Ok(c) => c,
            Err(e) => {
                self.save(&s).await?;
                return Ok(Err(refused(e, s.received)));
            }
        };
        s.sending_until_ms = now + self.settings.gemini_timeout_ms + 10_000;
        s.last_ms = now;
        self.save(&s).await?;
        Ok(Ok(Lease {
            session_url: s.session_url.clone(),
            offset: chunk.offset,
            len: chunk.len,
            last: chunk.last,
        }))
    }

    /// Ask Gemini what the session holds (after a chunk whose outcome is unknown).
    async fn resync(&self, s: &mut Session) {
        match gemini_files::query(&Gemini::new(&self.settings), &s.session_url).await {
            Ok(Received::Partial(n)) => s.received = n,
            Ok(Received::Final(file)) => {
                s.received = s.size;
                s.file = Some(OwnedFile::from_gemini(&file, now_ms()));
            }
            Err(_) => {}
        }
        s.sending_until_ms = 0;
    }

    /// The lent chunk's outcome: Gemini's received count or the finished file,
    /// or nothing known, which is asked of Gemini.
    async fn commit(&self, c: Commit, mut s: Session) -> Result<SessionView> {
        match (c.file, c.received) {
            (Some(file), _) => {
                s.received = s.size;
                s.file = Some(file);
                s.sending_until_ms = 0;
            }
            (None, Some(n)) => {
                s.received = n;
                s.sending_until_ms = 0;
            }
            (None, None) => self.resync(&mut s).await,
        }
        s.last_ms = now_ms();
        self.save(&s).await?;
        self.finish(&mut s).await?;
        Ok(self.view(&s))
    }

    fn view(&self, s: &Session) -> protocol::SessionView {
        s.view(self.settings.uploads.rules.max_chunk, now_ms())
    }

    async fn route(&self, call: Incoming) -> Result<Response> {
        if call.route() == Open::ROUTE {
            let Open(s) = call.read()?;
            if self.load().await?.is_none() {
                self.save(&s).await?;
                self.state.storage().set_alarm(i64::try_from(s.idle_ms).unwrap_or(i64::MAX)).await?;
            }
            return rpc::reply::<Open>(Ok(()));
        }
        let Some(mut s) = self.load().await?.filter(|s| s.account == call.account()) else {
            return ApiError::not_found("no such upload").into_response();
        };
        match call.route() {
            Admit::ROUTE => {
                let admit: Admit = call.read()?;
                rpc::reply::<Admit>(self.admit(admit, s).await?)
            }
            Commit::ROUTE => {
                let c: Commit = call.read()?;
                rpc::reply::<Commit>(Ok(self.commit(c, s).await?))
            }
            Status::ROUTE => {
                self.finish(&mut s).await?;
                rpc::reply::<Status>(Ok(self.view(&s)))
            }
            other => rpc::unknown_route("upload", other),
        }
    }
}

impl DurableObject for UploadObject {
    fn new(state: State, env: Env) -> Self {
        let settings = Settings::from_env(&env);
        UploadObject { state, env, settings }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        rpc::answer("upload", self.route(Incoming::of(req).await?).await)
    }

    /// Expire an idle session: cancel it at Gemini so nothing half-written lingers.
    async fn alarm(&self) -> Result<Response> {
        let Some(mut s) = self.load().await? else { return Response::ok("") };
        if s.state != SessionState::Open {
            return Response::ok("");
        }
        if s.file.is_some() {
            // Finalized at Gemini but not yet recorded with the account: keep trying.
            self.finish(&mut s).await?;
            if !s.recorded {
                self.state.storage().set_alarm(60_000).await?;
            }
            return Response::ok("");
        }
        let due = s.last_ms.saturating_add(s.idle_ms);
        let now = now_ms();
        if now < due {
            self.state.storage().set_alarm(i64::try_from(due - now).unwrap_or(i64::MAX)).await?;
            return Response::ok("");
        }
        let _ = gemini_files::cancel(&Gemini::new(&self.settings), &s.session_url).await;
        s.state = SessionState::Expired;
        self.save(&s).await?;
        accounts::release_storage(&self.env, &s.account, &s.id).await;
        Response::ok("")
    }
}
