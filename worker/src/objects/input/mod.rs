//! `InputObject`: one Durable Object per job input sent in parts
//! (`/v1/inputs`). It admits each part by core's `input` rules, lending the
//! input to the worker that validates the part and streams it into R2, then
//! records it with its keys (unique across parts). A submission claims the
//! input to make one job of it; once the job exists the parts are deleted.
//! An input idle for `INPUT_IDLE_SECS` expires and its parts are deleted.

pub mod client;
pub mod protocol;
mod store;

use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::Prior;
use crate::objects::rpc::{self, Incoming, Rpc};
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::random;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::input::{Admission, InputError};
use protocol::{
    AdmitPart, Claim, CommitPart, Consume, Counts, DeleteInput, GetInput, Input, InputPhase, InputView,
    ListParts, Open, PartAdmitted, Parts, Unclaim,
};
use serde::Serialize;
use store::Store;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

type Answer<T> = std::result::Result<T, ApiError>;

/// A claim still held this long after it was made is checked against its job.
const CLAIM_CHECK_MS: i64 = 60 * 60_000;

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "InputReceived"))]
pub(crate) struct Where {
    received: u64,
    lines: u64,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct UsedBy<'a> {
    job: &'a str,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Duplicate<'a> {
    line: u64,
    first_line: u64,
    key: &'a str,
}

fn ended(phase: &InputPhase) -> ApiError {
    let why = match phase {
        InputPhase::Expired => "the input expired (idle too long); send it again",
        InputPhase::Deleted => "the input was deleted",
        _ => "the input takes no more parts: a job is being made of it",
    };
    match phase {
        InputPhase::Used { job } | InputPhase::Claimed { job } => {
            ApiError::new(409, "input_used", format!("this input made job {job}; an input makes one job"))
                .with_details(UsedBy { job })
        }
        _ => ApiError::from(InputError::Ended { why: why.into() }),
    }
}

#[durable_object]
pub struct InputObject {
    state: State,
    env: Env,
}

impl InputObject {
    fn view(&self, store: &Store, input: &Input) -> Result<InputView> {
        let counts = store.state(input.size)?;
        let (state, job) = match &input.phase {
            InputPhase::Open => ("open", None),
            InputPhase::Claimed { job } => ("claimed", Some(job.clone())),
            InputPhase::Used { job } => ("used", Some(job.clone())),
            InputPhase::Expired => ("expired", None),
            InputPhase::Deleted => ("deleted", None),
        };
        let expires_ms = input.last_ms.saturating_add(input.idle_ms);
        Ok(InputView {
            id: input.id.clone(),
            state: state.into(),
            received: counts.received,
            lines: counts.lines,
            size: input.size,
            max_part_bytes: input.max_part_bytes,
            expires_at: format_nanos(i64::try_from(expires_ms).unwrap_or(i64::MAX).saturating_mul(1_000_000)),
            job,
        })
    }

    /// Record activity. The expiry alarm is best effort once the record is
    /// written (a write that stood must not be answered as a failure; the
    /// alarm reads `last_ms` when it fires and re-arms).
    async fn touch(&self, store: &Store, input: &mut Input) -> Result<()> {
        input.last_ms = now_ms();
        store.save(input)?;
        let _ = self.state.storage().set_alarm(i64::try_from(input.idle_ms).unwrap_or(i64::MAX)).await;
        Ok(())
    }

    fn admit(&self, store: &Store, input: &Input, ask: &AdmitPart) -> Result<Answer<PartAdmitted>> {
        let state = store.state(input.size)?;
        if input.phase != InputPhase::Open {
            // A part already taken is answered again once a job is being or was
            // made of the input; not once its parts are gone otherwise.
            let job_made = matches!(input.phase, InputPhase::Claimed { .. } | InputPhase::Used { .. });
            if let (true, Ok(Admission::Replay { received, lines })) =
                (job_made, state.admit(ask.range, None, u64::MAX))
            {
                return Ok(Ok(PartAdmitted::Replay(Counts { received, lines })));
            }
            return Ok(Err(ended(&input.phase)));
        }
        let admission = match state.admit(ask.range, ask.body_len, input.max_part_bytes) {
            Ok(a) => a,
            Err(e) => {
                return Ok(Err(
                    ApiError::from(e).with_details(Where { received: state.received, lines: state.lines })
                ));
            }
        };
        Ok(Ok(match admission {
            Admission::Replay { received, lines } => PartAdmitted::Replay(Counts { received, lines }),
            Admission::Take { number, lines_before } => {
                let key = bindings::input_part_key(&input.id, number, random::u64()?);
                // Known before it is written: a part that never commits is still deleted.
                store.pending(&key)?;
                PartAdmitted::Take { number, lines_before, key }
            }
        }))
    }

    /// Record a part another attempt has not recorded first; `kept` says
    /// whether this attempt's object is the part's.
    async fn commit(
        &self,
        store: &Store,
        input: &mut Input,
        part: CommitPart,
    ) -> Result<Answer<(Counts, bool)>> {
        let state = store.state(input.size)?;
        if input.phase != InputPhase::Open {
            return Ok(Err(ended(&input.phase)));
        }
        match state.admit(part.range, None, u64::MAX) {
            Ok(Admission::Take { number, .. }) if number == part.number => {}
            Ok(Admission::Replay { received, lines }) => return Ok(Ok((Counts { received, lines }, false))),
            _ => {
                let e =
                    ApiError::from(InputError::Offset { start: part.range.start, received: state.received });
                return Ok(Err(e.with_details(Where { received: state.received, lines: state.lines })));
            }
        }
        let requests = store.key_count()?.saturating_add(part.keys.len() as u64);
        if requests > input.max_requests {
            return Ok(Err(ApiError::bad_request(
                "too_many_requests",
                format!(
                    "a job has at most {} requests; with this part the input would have {requests}",
                    input.max_requests
                ),
            )
            .with_details(Where { received: state.received, lines: state.lines })));
        }
        if let Some((line, first_line, key)) = store.duplicate(&part.keys)? {
            return Ok(Err(ApiError::bad_request(
                "duplicate_key",
                format!("line {line}: key {key:?} is already line {first_line}'s"),
            )
            .with_details(Duplicate { line, first_line, key: &key })));
        }
        let mut next = state;
        let taken = next.take(part.range, part.lines);
        store.take(part.number, &taken, &part.object, &part.keys)?;
        input.size = next.size;
        self.touch(store, input).await?;
        Ok(Ok((Counts { received: next.received, lines: next.lines }, true)))
    }

    /// Job `job` exists: the input is used and its parts go. (Open counts too:
    /// a racing retry of the same submission may have given the claim back.)
    async fn consume(&self, store: &Store, input: &mut Input, job: String) -> Result<()> {
        let ours = match &input.phase {
            InputPhase::Open => true,
            InputPhase::Claimed { job: j } => *j == job,
            _ => false,
        };
        if ours {
            self.delete_parts(store).await?;
            input.phase = InputPhase::Used { job };
            store.save(input)?;
            let _ = self.state.storage().delete_alarm().await;
        }
        Ok(())
    }

    /// Delete the parts from R2 (best effort: what stays is under `inputs/`, to sweep).
    async fn delete_parts(&self, store: &Store) -> Result<()> {
        let bucket = bindings::bucket(&self.env)?;
        for key in store.part_keys()?.into_iter().chain(store.pending_keys()?) {
            let _ = bucket.delete(key).await;
        }
        store.clear_keys()
    }

    async fn claim(&self, store: &Store, input: &mut Input, job: String) -> Result<Answer<Parts>> {
        match &input.phase {
            InputPhase::Open => {}
            InputPhase::Claimed { job: j } if *j == job => {}
            other => return Ok(Err(ended(other))),
        }
        let state = store.state(input.size)?;
        if !state.complete() {
            let message = match input.size {
                Some(total) => {
                    format!("the input holds {} bytes of {total}; send the rest first", state.received)
                }
                None => format!(
                    "the input holds {} bytes and no total was declared: declare it in POST /v1/inputs or in \
                     the last part's Content-Range (bytes START-END/TOTAL)",
                    state.received
                ),
            };
            return Ok(Err(ApiError::bad_request("input_incomplete", message)
                .with_details(Where { received: state.received, lines: state.lines })));
        }
        input.phase = InputPhase::Claimed { job };
        // Making a job of a large input takes a while: the clock starts again,
        // and the claim is checked on once it should be settled.
        self.touch(store, input).await?;
        let _ = self.state.storage().set_alarm(CLAIM_CHECK_MS).await;
        Ok(Ok(Parts { keys: store.part_keys()?, received: state.received, lines: state.lines }))
    }

    async fn route(&self, call: Incoming) -> Result<Response> {
        let store = Store::new(self.state.storage().sql())?;
        if call.route() == Open::ROUTE {
            let Open(mut input) = call.read()?;
            if let Some(existing) = store.input()? {
                return rpc::reply::<Open>(Ok(self.view(&store, &existing)?));
            }
            self.touch(&store, &mut input).await?;
            return rpc::reply::<Open>(Ok(self.view(&store, &input)?));
        }
        let Some(mut input) = store.input()?.filter(|i| i.account == call.account()) else {
            return ApiError::not_found("no such input").into_response();
        };
        match call.route() {
            AdmitPart::ROUTE => {
                let ask: AdmitPart = call.read()?;
                rpc::reply::<AdmitPart>(self.admit(&store, &input, &ask)?)
            }
            CommitPart::ROUTE => {
                let part: CommitPart = call.read()?;
                rpc::reply::<CommitPart>(self.commit(&store, &mut input, part).await?)
            }
            GetInput::ROUTE => rpc::reply::<GetInput>(Ok(self.view(&store, &input)?)),
            DeleteInput::ROUTE => {
                if let InputPhase::Claimed { .. } = input.phase {
                    return rpc::reply::<DeleteInput>(Err(ended(&input.phase)));
                }
                self.delete_parts(&store).await?;
                if !matches!(input.phase, InputPhase::Used { .. }) {
                    input.phase = InputPhase::Deleted;
                }
                store.save(&input)?;
                let _ = self.state.storage().delete_alarm().await;
                rpc::reply::<DeleteInput>(Ok(self.view(&store, &input)?))
            }
            Claim::ROUTE => {
                let Claim(job) = call.read()?;
                rpc::reply::<Claim>(self.claim(&store, &mut input, job).await?)
            }
            Unclaim::ROUTE => {
                let Unclaim(job) = call.read()?;
                if input.phase == (InputPhase::Claimed { job }) {
                    input.phase = InputPhase::Open;
                    self.touch(&store, &mut input).await?;
                }
                rpc::reply::<Unclaim>(Ok(()))
            }
            Consume::ROUTE => {
                let Consume(job) = call.read()?;
                self.consume(&store, &mut input, job).await?;
                rpc::reply::<Consume>(Ok(()))
            }
            ListParts::ROUTE => {
                let state = store.state(input.size)?;
                let answer = match input.phase {
                    InputPhase::Open | InputPhase::Claimed { .. } => {
                        Ok(Parts { keys: store.part_keys()?, received: state.received, lines: state.lines })
                    }
                    ref other => Err(ended(other)),
                };
                rpc::reply::<ListParts>(answer)
            }
            other => rpc::unknown_route("input", other),
        }
    }
}

impl DurableObject for InputObject {
    fn new(state: State, env: Env) -> Self {
        InputObject { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        rpc::answer("input", self.route(Incoming::of(req).await?).await)
    }

    /// An input idle past its time expires: its parts are deleted.
    async fn alarm(&self) -> Result<Response> {
        let store = Store::new(self.state.storage().sql())?;
        let Some(mut input) = store.input()? else { return Response::ok("") };
        if !matches!(input.phase, InputPhase::Open | InputPhase::Claimed { .. }) {
            return Response::ok("");
        }
        if let InputPhase::Claimed { job } = input.phase.clone() {
            // Still claimed a while after the claim: the submission never said
            // how it ended (a 5xx, or its worker died). The job itself says:
            // it exists (the input is used) or not (the input is open again).
            let live = match JobRef::named(&self.env, &job) {
                Ok(j) => j.prior(&input.account).await.map(|p| matches!(p, Prior::Live(_))),
                Err(_) => Ok(false),
            };
            match live {
                Ok(true) => self.consume(&store, &mut input, job).await?,
                Ok(false) => {
                    input.phase = InputPhase::Open;
                    self.touch(&store, &mut input).await?;
                }
                Err(_) => self.state.storage().set_alarm(60_000).await?,
            }
            return Response::ok("");
        }
        let due = input.last_ms.saturating_add(input.idle_ms);
        let now = now_ms();
        if now < due {
            self.state.storage().set_alarm(i64::try_from(due - now).unwrap_or(i64::MAX)).await?;
            return Response::ok("");
        }
        self.delete_parts(&store).await?;
        input.phase = InputPhase::Expired;
        store.save(&input)?;
        Response::ok("")
    }
}
