//! Sending a file or a job's input in parts that survive a broken network:
//! each part starts where the server says it holds (`received`), a dropped
//! part is retried after a growing backoff from what the server holds then,
//! and a part another attempt already moved past (`wrong_offset`) is followed
//! by asking where the session stands.
//!
//! - an upload (`/v1/uploads`, a file for the Gemini Files API) goes in
//!   chunks the server sizes: multiples of its granularity, at most its cap;
//! - a job's input (`/v1/inputs`, NDJSON) goes in parts of whole lines, cut
//!   where [`super::submit`] decided while reading it.

use super::call::{Body, ClientError, Method, Request, read_value};
use super::machine::{Io, Machine, Reply, answer_of};
use super::paths;
use serde_json::Value;

/// Network failures in a row before giving up.
pub const MAX_RETRIES: u32 = 8;

#[derive(Debug, PartialEq, Eq)]
pub enum ResumeStep {
    /// Report progress (`received` of `size` bytes), and stop here if the user aborted.
    Progress {
        received: u64,
        size: u64,
    },
    /// Send a part; report with [`Resume::put`].
    Put(Request),
    /// Ask where the session stands; report with [`Resume::status`].
    Status(Request),
    Sleep(u32),
    /// All sent: the uploaded file's view (JSON text), for an upload.
    Done(Option<String>),
}

#[derive(Debug)]
enum Parts {
    /// An upload's fixed chunk size.
    Chunks(u64),
    /// An input's part ends (exclusive, ascending, the last one its size).
    Cuts(Vec<u64>),
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Open,
    Done(Option<String>),
}

#[derive(Debug)]
pub struct Resume {
    path: String,
    size: u64,
    received: u64,
    parts: Parts,
    phase: Phase,
    failures: u32,
    reported: bool,
    sleep: u32,
    /// A status request is due; `true` if its failure may be shrugged off.
    ask: Option<bool>,
}

fn field(view: &Value, name: &str) -> Result<u64, ClientError> {
    view[name].as_u64().ok_or_else(|| {
        ClientError::new("invalid_answer", ["the session's view has no ", name].concat(), 0)
            .with_details(view)
    })
}

impl Resume {
    /// An upload session, from its view (`POST /v1/uploads` or `GET /v1/uploads/:id`).
    pub fn upload(view: &Value) -> Result<Resume, ClientError> {
        let id = view["id"].as_str().unwrap_or_default();
        let granularity = view["chunkGranularity"].as_u64().unwrap_or(8 << 20).max(1);
        let cap = view["maxChunkBytes"].as_u64().unwrap_or(64 << 20);
        let chunk = (cap / granularity).max(1).saturating_mul(granularity);
        let mut r = Resume::new(paths::upload(id), field(view, "size")?, Parts::Chunks(chunk));
        r.apply(view)?;
        Ok(r)
    }

    /// An input, from its view (`POST /v1/inputs`), sent in parts ending at `cuts`.
    pub fn input(view: &Value, cuts: Vec<u64>) -> Result<Resume, ClientError> {
        let id = view["id"].as_str().unwrap_or_default();
        let size = cuts.last().copied().unwrap_or(0);
        let mut r = Resume::new(paths::input(id), size, Parts::Cuts(cuts));
        r.apply(view)?;
        Ok(r)
    }

    fn new(path: String, size: u64, parts: Parts) -> Resume {
        Resume {
            path,
            size,
            received: 0,
            parts,
            phase: Phase::Open,
            failures: 0,
            reported: false,
            sleep: 0,
            ask: None,
        }
    }

    pub fn step(&mut self) -> Result<ResumeStep, ClientError> {
        if self.sleep > 0 {
            return Ok(ResumeStep::Sleep(std::mem::take(&mut self.sleep)));
        }
        if self.ask.is_some() {
            return Ok(ResumeStep::Status(Request::get(self.path.clone())));
        }
        if !self.reported {
            self.reported = true;
            return Ok(ResumeStep::Progress { received: self.received, size: self.size });
        }
        match &self.phase {
            Phase::Done(file) => Ok(ResumeStep::Done(file.clone())),
            Phase::Open => {
                let end = self.part_end()?;
                let range = [
                    "bytes ",
                    &self.received.to_string(),
                    "-",
                    &(end - 1).to_string(),
                    "/",
                    &self.size.to_string(),
                ]
                .concat();
                let body = Body::Range { start: self.received, end };
                Ok(ResumeStep::Put(
                    Request::new(Method::Put, self.path.clone()).header("content-range", range).body(body),
                ))
            }
        }
    }

    /// Where the part starting at `received` ends.
    fn part_end(&self) -> Result<u64, ClientError> {
        let end = match &self.parts {
            Parts::Chunks(chunk) => Some(self.received.saturating_add(*chunk).min(self.size)),
            // The server takes parts that start and end at line ends, and
            // `received` always is one: an earlier attempt cut differently
            // (another part size) still goes on from there.
            Parts::Cuts(cuts) => cuts.iter().copied().find(|&c| c > self.received),
        };
        end.filter(|&e| e > self.received).ok_or_else(|| {
            let at = self.received.to_string();
            ClientError::new(
                "out_of_step",
                ["the server holds ", &at, " bytes, not where a part of this data ends"].concat(),
                409,
            )
        })
    }

    /// A part's answer.
    pub fn put(&mut self, answer: Result<Value, ClientError>) -> Result<(), ClientError> {
        match answer {
            Ok(view) => {
                self.failures = 0;
                self.apply(&view)
            }
            Err(e) if e.code == "wrong_offset" => {
                // Another attempt already moved the session: go on from where it is.
                self.ask = Some(false);
                Ok(())
            }
            // A dropped part, or one the server still holds a lease on (the
            // attempt that broke has not settled): back off, then ask.
            Err(e) if (e.is_network() || e.code == "chunk_in_progress") && self.failures < MAX_RETRIES => {
                self.back_off();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn back_off(&mut self) {
        self.failures += 1;
        self.sleep = 250u32.saturating_mul(1 << self.failures.min(7));
        self.ask = Some(true);
    }

    /// A status answer. After a dropped part its failure is shrugged off (the
    /// next part's answer will say), and so is a view still `sending` (the
    /// broken part has not settled yet).
    pub fn status(&mut self, answer: Result<Value, ClientError>) -> Result<(), ClientError> {
        let tolerant = self.ask.take().unwrap_or(false);
        match answer {
            // The broken part has not settled: ask again later, not send over it.
            Ok(view) if view["sending"] == true && self.failures < MAX_RETRIES => {
                self.back_off();
                Ok(())
            }
            Ok(view) => self.apply(&view),
            Err(_) if tolerant => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A session's view: an upload's `{state, received, file?}`, an input's
    /// `{state?, received}` (a part's answer carries no state).
    fn apply(&mut self, view: &Value) -> Result<(), ClientError> {
        self.received = field(view, "received")?;
        self.reported = false;
        let state = view["state"].as_str().unwrap_or("open");
        let done = match &self.parts {
            Parts::Chunks(_) if state == "done" => Some(Some(view["file"].to_string())),
            Parts::Cuts(_) if state == "open" && self.received == self.size => Some(None),
            _ if state == "open" => None,
            _ => {
                let e = ClientError::new("session_ended", ["the session is ", state].concat(), 410);
                return Err(e.with_details(view));
            }
        };
        if let Some(file) = done {
            self.phase = Phase::Done(file);
        }
        Ok(())
    }
}

/// A resume's next step as the machine protocol's.
fn io_of(step: ResumeStep, name: &'static str, id: &str) -> Io {
    match step {
        ResumeStep::Progress { received, size } => Io::Progress { name, id: id.into(), received, size },
        ResumeStep::Put(request) | ResumeStep::Status(request) => {
            Io::Send { request, stream: false, headers: &[] }
        }
        ResumeStep::Sleep(ms) => Io::Sleep(ms),
        ResumeStep::Done(file) => Io::Yield(file.unwrap_or_else(|| "null".into())),
    }
}

/// A reply to a part or a status request, as the view it carried.
fn view_of(reply: Reply) -> Result<Value, ClientError> {
    let (status, _, body) = answer_of(reply)?;
    read_value(status, &body)
}

/// `upload`: open a session (or find one to resume), then send the data in
/// the chunks it sets; the uploaded file's view is the answer.
pub struct Upload {
    open: Option<Request>,
    resume: Option<Resume>,
    id: String,
    /// The last request was a status (not a part).
    asked_status: bool,
    done: bool,
}

impl Upload {
    /// A new session for `size` bytes, or (`resume`) the session with this id.
    pub fn new(size: u64, mime_type: &str, display_name: Option<&str>, resume: Option<&str>) -> Upload {
        let open = match resume {
            Some(id) => Request::get(paths::upload(id)),
            None => {
                let body =
                    serde_json::json!({ "size": size, "mimeType": mime_type, "displayName": display_name });
                Request::post("/v1/uploads", body.to_string())
            }
        };
        Upload {
            open: Some(open),
            resume: None,
            id: resume.unwrap_or_default().into(),
            asked_status: false,
            done: false,
        }
    }
}

impl Machine for Upload {
    fn step(&mut self) -> Result<Io, ClientError> {
        if let Some(request) = self.open.take() {
            return Ok(Io::Send { request, stream: false, headers: &[] });
        }
        let Some(resume) = &mut self.resume else { return Ok(Io::End) };
        if self.done {
            return Ok(Io::End);
        }
        let step = resume.step()?;
        self.asked_status = matches!(step, ResumeStep::Status(_));
        self.done = matches!(step, ResumeStep::Done(_));
        Ok(io_of(step, "uploadId", &self.id))
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        if matches!(reply, Reply::Done) {
            return Ok(());
        }
        match &mut self.resume {
            None => {
                let view = view_of(reply)?;
                self.id = view["id"].as_str().unwrap_or_default().into();
                self.resume = Some(Resume::upload(&view)?);
                Ok(())
            }
            Some(resume) if self.asked_status => resume.status(view_of(reply)),
            Some(resume) => resume.put(view_of(reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Run `r` against `server(request) -> answer`, returning progress, ranges and sleeps.
    fn drive(
        r: &mut Resume,
        mut server: impl FnMut(&Request) -> Result<Value, ClientError>,
    ) -> Result<(Vec<String>, Option<String>), ClientError> {
        let mut log = vec![];
        loop {
            match r.step()? {
                ResumeStep::Progress { received, size } => {
                    log.push([received.to_string(), "/".into(), size.to_string()].concat())
                }
                ResumeStep::Put(req) => {
                    log.push(req.headers.first().map(|h| h.1.clone()).unwrap_or_default());
                    let a = server(&req);
                    r.put(a)?;
                }
                ResumeStep::Status(req) => {
                    log.push("status".into());
                    let a = server(&req);
                    r.status(a)?;
                }
                ResumeStep::Sleep(ms) => log.push(["sleep ", &ms.to_string()].concat()),
                ResumeStep::Done(file) => return Ok((log, file)),
            }
        }
    }

    #[test]
    fn an_upload_continues_from_the_servers_offset_when_another_attempt_moved_it() {
        let size = 10;
        let mut received = 0u64;
        let open = json!({"id": "u1", "size": size, "received": 0, "state": "open", "chunkGranularity": 4, "maxChunkBytes": 4});
        let mut r = Resume::upload(&open).unwrap_or_else(|e| panic!("{e:?}"));
        let (log, file) = drive(&mut r, |req| {
            if req.method == Method::Get {
                return Ok(json!({"id": "u1", "size": size, "received": received, "state": "open"}));
            }
            let Body::Range { start, end } = req.body else { panic!("a range") };
            if start == 4 && received == 4 {
                received = 8; // a retry from elsewhere got there first
                return Err(ClientError::new("wrong_offset", "expected 8", 409));
            }
            received = end;
            let done = received == size;
            Ok(json!({"id": "u1", "size": size, "received": received, "state": if done { "done" } else { "open" }, "file": {"name": "files/f"}}))
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(file.as_deref(), Some(r#"{"name":"files/f"}"#));
        assert_eq!(
            log,
            ["0/10", "bytes 0-3/10", "4/10", "bytes 4-7/10", "status", "8/10", "bytes 8-9/10", "10/10"]
        );
    }

    #[test]
    fn a_dropped_part_is_retried_with_backoff_from_what_the_server_holds() {
        let cuts = vec![5, 12, 20];
        let mut r = Resume::input(&json!({"id": "in1", "received": 0, "state": "open"}), cuts)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut drops = 2;
        let mut held = 0;
        let (log, _) = drive(&mut r, |req| match req.method {
            Method::Get => Ok(json!({"state": "open", "received": held, "sending": false})),
            _ => {
                let Body::Range { end, .. } = req.body else { panic!("a range") };
                if end == 12 && drops > 0 {
                    drops -= 1;
                    if drops == 0 {
                        held = 12; // the server took it, but the answer was lost
                    }
                    return Err(ClientError::network("reset"));
                }
                held = end;
                Ok(json!({"received": held, "lines": 3}))
            }
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            log,
            [
                "0/20",
                "bytes 0-4/20",
                "5/20",
                "bytes 5-11/20",
                "sleep 500",
                "status",
                "5/20",
                "bytes 5-11/20",
                "sleep 1000",
                "status",
                "12/20",
                "bytes 12-19/20",
                "20/20"
            ]
        );
    }

    #[test]
    fn too_many_drops_an_expired_session_and_an_offset_between_cuts_are_errors() {
        let open = json!({"id": "u", "size": 4, "received": 0, "state": "open"});
        let mut r = Resume::upload(&open).unwrap_or_else(|e| panic!("{e:?}"));
        let e = drive(&mut r, |req| match req.method {
            Method::Get => Err(ClientError::network("still offline")),
            _ => Err(ClientError::network("offline")),
        });
        assert!(e.is_err_and(|e| e.is_network()));
        let expired = Resume::upload(&json!({"id": "u", "size": 4, "received": 1, "state": "expired"}));
        assert!(expired.is_err_and(|e| e.code == "session_ended" && e.status == 410));
        // An earlier attempt cut elsewhere: the next part goes from what the server holds.
        let mut r = Resume::input(&json!({"id": "i", "received": 7}), vec![5, 10])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(matches!(r.step(), Ok(ResumeStep::Progress { .. })));
        let put = r
            .step()
            .map(|s| matches!(s, ResumeStep::Put(ref q) if q.body == Body::Range { start: 7, end: 10 }));
        assert_eq!(put, Ok(true));
    }

    #[test]
    fn a_part_the_server_still_holds_a_lease_on_is_waited_for_not_sent_over() {
        let open = json!({"id": "u", "size": 8, "received": 0, "state": "open", "chunkGranularity": 4, "maxChunkBytes": 4});
        let mut r = Resume::upload(&open).unwrap_or_else(|e| panic!("{e:?}"));
        let mut asked = 0;
        let (log, _) = drive(&mut r, |req| match req.method {
            Method::Get => {
                asked += 1;
                // Still sending for two asks, then settled at 4.
                Ok(json!({"id": "u", "size": 8, "received": if asked > 2 { 4 } else { 0 }, "sending": asked <= 2, "state": "open"}))
            }
            _ => {
                let Body::Range { start, end } = req.body else { panic!("a range") };
                if start == 0 && asked == 0 {
                    return Err(ClientError::network("reset"));
                }
                if asked > 0 && asked <= 2 {
                    return Err(ClientError::new("chunk_in_progress", "a chunk is being sent", 409));
                }
                let done = end == 8;
                Ok(json!({"id": "u", "size": 8, "received": end, "state": if done { "done" } else { "open" }, "file": {}}))
            }
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            log,
            [
                "0/8",
                "bytes 0-3/8",
                "sleep 500",
                "status",
                "sleep 1000",
                "status",
                "sleep 2000",
                "status",
                "4/8",
                "bytes 4-7/8",
                "8/8"
            ]
        );
    }
}
