//! One protocol between the client's machines and any transport. A machine
//! says what it needs next ([`Io`]); the transport does it and reports what
//! happened ([`Reply`]). Every call of the API is a machine, so a transport
//! is one loop, written once: the browser SDK's over fetch and WebSocket
//! (`sdk/`), the command line's over reqwest (`cli/`), and the tests' over
//! scripted answers.

use super::call::{ClientError, Request, check};

#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    /// Send this; reply `Answer` with the body whole and the `headers`
    /// asked for (in that order). With `stream`, a 2xx is replied `Opened`
    /// instead and its body read with `Read` (any other status: `Answer`).
    Send { request: Request, stream: bool, headers: &'static [&'static str] },
    /// The open body's next chunk: reply `Chunk` (`None` at its end).
    Read,
    /// The caller's data's next chunk (what a submit reads): reply `Chunk`.
    ReadData,
    /// Wait, then reply `Done`.
    Sleep(u32),
    /// Tell the caller how far a transfer is (`{[name]: id, received, size}`);
    /// stop with `aborted` if the caller aborted; reply `Done`.
    Progress { name: &'static str, id: String, received: u64, size: u64 },
    /// Open a WebSocket: reply `Done`, or `Refused` if the platform will not.
    Open(String),
    /// The socket's next text message: reply `Message` (`None` once it
    /// closed), or `Idle` if none came within `idle_ms` (the socket is left
    /// open: the machine decides).
    Listen { idle_ms: u32 },
    /// Close the socket, if one is open: reply `Done`.
    Close,
    /// Hand this value (JSON text) to the caller: the call's answer, or an
    /// iterator's next item. The machine goes on at the next drive.
    Yield(String),
    /// An iterator has no more items.
    End,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<Option<String>>,
        body: Vec<u8>,
    },
    Opened {
        headers: Vec<Option<String>>,
    },
    Chunk(Option<Vec<u8>>),
    Message(Option<String>),
    Refused,
    /// A socket said nothing for the time `Listen` allowed.
    Idle,
    /// The request got no answer, or its body broke off.
    Failed(ClientError),
    Done,
}

pub trait Machine {
    fn step(&mut self) -> Result<Io, ClientError>;
    fn reply(&mut self, reply: Reply) -> Result<(), ClientError>;
    /// What the machine concluded besides its items (a stream's cost), as JSON text.
    fn outcome(&self) -> Option<String> {
        None
    }
}

/// An answer: its status, the headers asked for, its body.
pub type Answered = (u16, Vec<Option<String>>, Vec<u8>);

/// An answer, or the failure that took its place.
pub fn answer_of(reply: Reply) -> Result<Answered, ClientError> {
    match reply {
        Reply::Answer { status, headers, body } => Ok((status, headers, body)),
        Reply::Failed(e) => Err(e),
        other => Err(out_of_turn(&other)),
    }
}

/// A reply that does not answer what was asked: the transport's bug.
pub fn out_of_turn(reply: &Reply) -> ClientError {
    let what = match reply {
        Reply::Answer { .. } => "an answer",
        Reply::Opened { .. } => "an open body",
        Reply::Chunk(_) => "a chunk",
        Reply::Message(_) => "a message",
        Reply::Refused => "a refusal",
        Reply::Idle => "idle",
        Reply::Failed(_) => "a failure",
        Reply::Done => "done",
    };
    ClientError::new("client_error", ["the transport replied ", what, " out of turn"].concat(), 0)
}

/// One request whose answer (JSON) goes to the caller as it came.
pub struct Call {
    request: Option<Request>,
    answer: Option<String>,
}

impl Call {
    pub fn new(request: Request) -> Call {
        Call { request: Some(request), answer: None }
    }
}

impl Machine for Call {
    fn step(&mut self) -> Result<Io, ClientError> {
        if let Some(answer) = self.answer.take() {
            return Ok(Io::Yield(answer));
        }
        match self.request.take() {
            Some(request) => Ok(Io::Send { request, stream: false, headers: &[] }),
            None => Ok(Io::End),
        }
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        let (status, _, body) = answer_of(reply)?;
        check(status, &body)?;
        let text = String::from_utf8_lossy(&body);
        self.answer = Some(if text.trim().is_empty() { "null".into() } else { text.into_owned() });
        Ok(())
    }
}

/// Run `machine` to its first value with `io` doing each step (a test's
/// scripted server); `None` once it ended.
#[cfg(test)]
pub fn run(
    machine: &mut dyn Machine,
    mut io: impl FnMut(Io) -> Result<Option<Reply>, ClientError>,
) -> Result<Option<String>, ClientError> {
    loop {
        match machine.step()? {
            Io::Yield(value) => return Ok(Some(value)),
            Io::End => return Ok(None),
            step => {
                if let Some(reply) = io(step)? {
                    machine.reply(reply)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_hands_on_its_answer_or_the_apis_error() {
        let mut call = Call::new(Request::get("/v1/account"));
        let answer = run(&mut call, |io| {
            assert!(
                matches!(io, Io::Send { ref request, stream: false, .. } if request.path == "/v1/account")
            );
            Ok(Some(Reply::Answer { status: 200, headers: vec![], body: br#"{"balance":5}"#.to_vec() }))
        });
        assert_eq!(answer, Ok(Some(r#"{"balance":5}"#.into())));
        assert_eq!(run(&mut call, |_| panic!("nothing more is sent")), Ok(None));
        let mut refused = Call::new(Request::get("/v1/jobs/x"));
        let e = run(&mut refused, |_| {
            Ok(Some(Reply::Answer {
                status: 404,
                headers: vec![],
                body: br#"{"error":{"code":"not_found","message":"no"}}"#.to_vec(),
            }))
        });
        assert!(e.is_err_and(|e| e.code == "not_found" && e.status == 404));
        let mut empty = Call::new(Request::new(super::super::call::Method::Delete, "/v1/jobs/x"));
        let none =
            run(&mut empty, |_| Ok(Some(Reply::Answer { status: 204, headers: vec![], body: vec![] })));
        assert_eq!(none, Ok(Some("null".into())));
    }
}
