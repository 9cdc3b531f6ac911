//! Watching a job: its views as they change, ending with the view in which it
//! ended and was charged. Over the job's WebSocket where the platform has one;
//! a dropped socket is followed by one poll (did the job end meanwhile?) and
//! a reconnect after a growing backoff. A socket that drops
//! [`MAX_SOCKET_FAILURES`] times in a row gives way to `ETag` polling (a cheap
//! 304 per interval while nothing changes), and is tried again later, at
//! growing intervals, rather than given up for good.
//!
//! The transport runs the [`Step`]s and reports what happened; time passes
//! only in `Sleep` steps, so tests run on simulated time.

use super::call::{ClientError, Request, check};
use super::machine::{Io, Machine, Reply, out_of_turn};
use super::paths;
use serde_json::Value;
use std::collections::VecDeque;

/// A socket silent this long may be half-open (a laptop asleep, a NAT that
/// forgot it, no FIN ever sent): it is closed, one poll says where the job
/// is, and a new socket listens. A quiet job costs one poll a minute.
pub const LISTEN_IDLE_MS: u32 = 60_000;
/// Drops in a row before polling takes over.
pub const MAX_SOCKET_FAILURES: u32 = 3;
/// The first reconnect's wait; it doubles with each drop in a row.
pub const RECONNECT_MS: u32 = 250;
/// Polls in a row without an answer before the watch fails.
pub const MAX_POLL_FAILURES: u32 = 8;
/// How long polling runs before the socket is tried again; doubles after
/// each retry that drops, up to [`MAX_SOCKET_RETRY_MS`].
pub const SOCKET_RETRY_MS: u64 = 30_000;
pub const MAX_SOCKET_RETRY_MS: u64 = 300_000;

const ENDED: [&str; 4] = ["succeeded", "failed", "expired", "cancelled"];

/// The job ended and its charge is known: nothing more will change.
pub fn is_final(view: &Value) -> bool {
    view["state"].as_str().is_some_and(|s| ENDED.contains(&s)) && view["cost"]["charged"].is_u64()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Wait this many milliseconds, then ask for the next step.
    Sleep(u32),
    /// Send this (a socket ticket); report with [`Watch::ticket`].
    Ticket(Request),
    /// Open a WebSocket to this URL ([`Watch::socket_refused`] if the platform refuses).
    Open(String),
    /// Wait for the socket's next text message ([`Watch::message`]) or its end ([`Watch::closed`]).
    Listen,
    /// Send this; report with [`Watch::polled`].
    Poll(Request),
    /// Close the socket, if one is open.
    Close,
    /// Hand this view (JSON text, as the server sent it) to the user.
    View(String),
    /// The watch is over (close the socket, if one is open).
    Done,
}

#[derive(Debug)]
enum Plan {
    Connect { wait_ms: u32 },
    Open(String),
    Listen,
    Poll { wait_ms: u32, then_connect: bool },
}

#[derive(Debug)]
pub struct Watch {
    id: String,
    endpoint: String,
    interval_ms: u32,
    sockets: bool,
    failures: u32,
    etag: Option<String>,
    last_version: u64,
    finished: bool,
    plan: Plan,
    out: VecDeque<Step>,
    /// Polling time since the socket last gave way.
    polled_ms: u64,
    retry_after_ms: u64,
    /// Polls in a row that got no answer.
    poll_failures: u32,
}

impl Watch {
    /// `sockets`: whether the platform has WebSocket at all.
    pub fn new(endpoint: &str, id: &str, interval_ms: u32, sockets: bool) -> Watch {
        Watch {
            id: id.into(),
            endpoint: paths::endpoint(endpoint).into(),
            interval_ms,
            sockets,
            failures: if sockets { 0 } else { MAX_SOCKET_FAILURES },
            etag: None,
            last_version: 0,
            finished: false,
            plan: if sockets {
                Plan::Connect { wait_ms: 0 }
            } else {
                Plan::Poll { wait_ms: 0, then_connect: false }
            },
            out: VecDeque::new(),
            polled_ms: 0,
            retry_after_ms: SOCKET_RETRY_MS,
            poll_failures: 0,
        }
    }

    pub fn step(&mut self) -> Step {
        if let Some(step) = self.out.pop_front() {
            return step;
        }
        if self.finished {
            return Step::Done;
        }
        match &mut self.plan {
            Plan::Connect { wait_ms } | Plan::Poll { wait_ms, .. } if *wait_ms > 0 => {
                let wait = std::mem::take(wait_ms);
                if self.failures >= MAX_SOCKET_FAILURES {
                    self.polled_ms = self.polled_ms.saturating_add(u64::from(wait));
                }
                Step::Sleep(wait)
            }
            Plan::Connect { .. } => Step::Ticket(paths::watch_ticket(&self.id)),
            Plan::Open(url) => {
                let url = std::mem::take(url);
                self.plan = Plan::Listen;
                Step::Open(url)
            }
            Plan::Listen => Step::Listen,
            Plan::Poll { .. } => {
                let mut request = Request::get(paths::job(&self.id));
                if let Some(etag) = &self.etag {
                    request = request.header("if-none-match", etag.clone());
                }
                Step::Poll(request)
            }
        }
    }

    /// Stop watching: the next step is `Done`.
    pub fn stop(&mut self) {
        self.finished = true;
        self.out.clear();
    }

    /// The ticket's answer (`{"ticket"}`), or its failure: counted as a drop.
    pub fn ticket(&mut self, answer: Result<&[u8], ClientError>) {
        let ticket = answer
            .ok()
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .and_then(|v| v["ticket"].as_str().map(str::to_string));
        match ticket {
            Some(t) => self.plan = Plan::Open(paths::watch_socket(&self.endpoint, &self.id, &t)),
            None => self.dropped(),
        }
    }

    /// The platform would not open a socket here: poll from now on.
    pub fn socket_refused(&mut self) {
        self.sockets = false;
        self.failures = MAX_SOCKET_FAILURES;
        self.plan = Plan::Poll { wait_ms: 0, then_connect: false };
    }

    /// A text message on the socket: a view, or (unreadable) a drop.
    pub fn message(&mut self, text: &str) {
        match serde_json::from_slice::<Value>(text.as_bytes()) {
            Ok(view) if view.is_object() => {
                self.failures = 0;
                self.retry_after_ms = SOCKET_RETRY_MS;
                self.consider(text, &view);
            }
            _ => {
                self.out.push_back(Step::Close);
                self.dropped();
            }
        }
    }

    /// The socket closed (or failed).
    pub fn closed(&mut self) {
        self.dropped();
    }

    /// The socket said nothing for [`LISTEN_IDLE_MS`]: close it, poll once,
    /// and listen on a new one — not a drop (a quiet job is not a failure).
    pub fn idle(&mut self) {
        self.out.push_back(Step::Close);
        self.plan = Plan::Poll { wait_ms: 0, then_connect: true };
    }

    /// A poll's answer: 304 (unchanged), a view, or the API's error (the watch's error).
    pub fn polled(&mut self, status: u16, etag: Option<String>, body: &[u8]) -> Result<(), ClientError> {
        self.poll_failures = 0;
        let then_connect = matches!(self.plan, Plan::Poll { then_connect: true, .. });
        if status != 304 {
            check(status, body)?;
            let view: Value = serde_json::from_slice(body).map_err(|e| {
                ClientError::new(
                    "invalid_answer",
                    ["the job's view is not JSON: ", &e.to_string()].concat(),
                    status,
                )
            })?;
            self.etag = etag.or(self.etag.take());
            self.consider(&String::from_utf8_lossy(body), &view);
        }
        self.plan = if then_connect && self.sockets {
            Plan::Connect { wait_ms: backoff(self.failures) }
        } else if self.sockets && self.polled_ms >= self.retry_after_ms {
            // One more try: a drop sends it straight back to polling, for longer.
            self.failures = MAX_SOCKET_FAILURES - 1;
            self.polled_ms = 0;
            self.retry_after_ms = self.retry_after_ms.saturating_mul(2).min(MAX_SOCKET_RETRY_MS);
            Plan::Connect { wait_ms: 0 }
        } else {
            Plan::Poll { wait_ms: self.interval_ms, then_connect: false }
        };
        Ok(())
    }

    /// A poll got no answer (a network blip): poll again after a growing
    /// wait, and give up only after [`MAX_POLL_FAILURES`] in a row.
    pub fn poll_failed(&mut self, e: ClientError) -> Result<(), ClientError> {
        self.poll_failures += 1;
        if self.poll_failures > MAX_POLL_FAILURES {
            return Err(e);
        }
        let then_connect = matches!(self.plan, Plan::Poll { then_connect: true, .. });
        let wait = backoff(self.poll_failures).max(self.interval_ms);
        self.plan = Plan::Poll { wait_ms: wait, then_connect };
        Ok(())
    }

    fn dropped(&mut self) {
        self.failures = self.failures.saturating_add(1);
        if self.failures == MAX_SOCKET_FAILURES {
            self.polled_ms = 0;
        }
        // One poll at once: the job may have ended while no socket listened.
        self.plan = Plan::Poll { wait_ms: 0, then_connect: self.failures < MAX_SOCKET_FAILURES };
    }

    fn consider(&mut self, text: &str, view: &Value) {
        let version = view["version"].as_u64().unwrap_or(0);
        let last = is_final(view);
        if version <= self.last_version && !last {
            return; // a view already seen (a poll and a message crossed)
        }
        self.last_version = version;
        self.out.push_back(Step::View(text.to_string()));
        if last {
            self.finished = true;
        }
    }
}

impl Machine for Watch {
    fn step(&mut self) -> Result<Io, ClientError> {
        Ok(match Watch::step(self) {
            Step::Sleep(ms) => Io::Sleep(ms),
            Step::Ticket(request) => Io::Send { request, stream: false, headers: &[] },
            Step::Open(url) => Io::Open(url),
            Step::Listen => Io::Listen { idle_ms: LISTEN_IDLE_MS },
            Step::Poll(request) => Io::Send { request, stream: false, headers: &["etag"] },
            Step::Close => Io::Close,
            Step::View(view) => Io::Yield(view),
            Step::Done => Io::End,
        })
    }

    fn reply(&mut self, reply: Reply) -> Result<(), ClientError> {
        match reply {
            Reply::Done => Ok(()),
            Reply::Refused => {
                self.socket_refused();
                Ok(())
            }
            Reply::Message(Some(text)) => {
                self.message(&text);
                Ok(())
            }
            Reply::Message(None) => {
                self.closed();
                Ok(())
            }
            Reply::Idle => {
                self.idle();
                Ok(())
            }
            // A poll asks for the ETag; a ticket asks for no header.
            Reply::Answer { status, mut headers, body } if !headers.is_empty() => {
                self.polled(status, headers.pop().flatten(), &body)
            }
            Reply::Answer { status, body, .. } => {
                self.ticket(check(status, &body).map(|()| body.as_slice()));
                Ok(())
            }
            Reply::Failed(e) if matches!(self.plan, Plan::Connect { .. }) => {
                self.ticket(Err(e));
                Ok(())
            }
            Reply::Failed(e) if e.is_network() => self.poll_failed(e),
            Reply::Failed(e) => Err(e),
            other => Err(out_of_turn(&other)),
        }
    }
}

fn backoff(failures: u32) -> u32 {
    RECONNECT_MS.saturating_mul(1 << failures.saturating_sub(1).min(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(version: u64, state: &str, charged: Option<u64>) -> String {
        let cost = charged.map(|c| serde_json::json!({ "charged": c })).unwrap_or_default();
        serde_json::json!({ "version": version, "state": state, "cost": cost }).to_string()
    }

    /// What the watch emitted, by its views' `version:state`, with the time slept.
    fn views(out: &[String]) -> Vec<String> {
        out.iter()
            .map(|t| {
                let v: Value = serde_json::from_str(t).unwrap_or_default();
                [v["version"].to_string(), ":".into(), v["state"].as_str().unwrap_or("").into()].concat()
            })
            .collect()
    }

    #[test]
    fn polling_sends_the_etag_skips_stale_views_and_ends_with_the_charged_job() {
        let mut w = Watch::new("http://x/", "j", 1000, false);
        let answers = [
            (200, Some("\"v1\""), view(1, "running", None)),
            (304, None, String::new()),
            (200, Some("\"v1b\""), view(1, "running", None)), // unchanged, though sent anyway
            (200, Some("\"v3\""), view(3, "succeeded", None)), // ended, not yet charged
            (200, Some("\"v4\""), view(4, "succeeded", Some(5))),
        ];
        let (mut out, mut polls, mut slept) = (vec![], vec![], 0);
        let mut answers = answers.into_iter();
        loop {
            match w.step() {
                Step::Poll(r) => {
                    polls.push(r.headers.first().map(|h| h.1.clone()));
                    let Some((status, etag, body)) = answers.next() else { panic!("polled after the end") };
                    assert_eq!(w.polled(status, etag.map(str::to_string), body.as_bytes()), Ok(()));
                }
                Step::Sleep(ms) => slept += ms,
                Step::View(v) => out.push(v),
                Step::Done => break,
                other => panic!("no socket here: {other:?}"),
            }
        }
        assert_eq!(views(&out), ["1:running", "3:succeeded", "4:succeeded"]);
        assert_eq!(
            polls,
            [
                None,
                Some("\"v1\"".into()),
                Some("\"v1\"".into()),
                Some("\"v1b\"".into()),
                Some("\"v3\"".into())
            ]
        );
        assert_eq!(slept, 4 * 1000, "the first poll is at once, then one per interval");
    }

    /// Drive a socket-capable watch: `socket(n)` is the messages the n-th
    /// socket delivers before it drops (None: the job ends on it); polls
    /// answer `poll`. Returns the steps taken, as short names.
    fn run(w: &mut Watch, sockets: &[&[&str]], poll: &str, limit: usize) -> Vec<String> {
        let mut log = vec![];
        let mut opened = 0usize;
        let mut queue: VecDeque<&str> = VecDeque::new();
        let mut open = false;
        while log.len() < limit {
            match w.step() {
                Step::Sleep(ms) => log.push(["sleep ", &ms.to_string()].concat()),
                Step::Ticket(r) => {
                    assert_eq!(r.path, "/v1/jobs/j/watch-ticket");
                    log.push("ticket".into());
                    w.ticket(Ok(br#"{"ticket":"t"}"#));
                }
                Step::Open(url) => {
                    assert_eq!(url, "ws://x/v1/jobs/j/watch?ticket=t");
                    log.push("open".into());
                    queue = sockets.get(opened).copied().unwrap_or(&[]).iter().copied().collect();
                    opened += 1;
                    open = true;
                }
                Step::Listen => match queue.pop_front() {
                    Some(m) => w.message(m),
                    None => {
                        log.push("drop".into());
                        open = false;
                        w.closed();
                    }
                },
                Step::Poll(_) => {
                    log.push("poll".into());
                    let _ = w.polled(200, None, poll.as_bytes());
                }
                Step::Close => open = false,
                Step::View(v) => log.push(["view ", &views(&[v]).concat()].concat()),
                Step::Done => {
                    log.push(if open { "done (socket open)" } else { "done" }.into());
                    break;
                }
            }
        }
        log
    }

    #[test]
    fn a_dropped_socket_is_followed_by_one_poll_and_a_reconnect_with_backoff() {
        let mut w = Watch::new("http://x", "j", 1000, true);
        let first = view(1, "running", None);
        let last = view(2, "succeeded", Some(7));
        let log = run(&mut w, &[&[&first], &[&last]], &first, 50);
        assert_eq!(
            log,
            [
                "ticket",
                "open",
                "view 1:running",
                "drop",
                "poll",
                "sleep 250",
                "ticket",
                "open",
                "view 2:succeeded",
                "done (socket open)"
            ]
        );
    }

    #[test]
    fn a_socket_that_keeps_dropping_gives_way_to_polling_and_is_tried_again_later() {
        let mut w = Watch::new("http://x", "j", 1000, true);
        let running = view(1, "running", None);
        let log = run(&mut w, &[&[], &[], &[], &[]], &running, 200);
        let opens: Vec<usize> =
            log.iter().enumerate().filter(|(_, s)| *s == "open").map(|(i, _)| i).collect();
        assert!(opens.len() >= 4, "the socket was tried again: {log:?}");
        // Three drops in a row (backoff 250, 500 ms between), then polling.
        assert_eq!(
            &log[..12],
            [
                "ticket",
                "open",
                "drop",
                "poll",
                "view 1:running",
                "sleep 250",
                "ticket",
                "open",
                "drop",
                "poll",
                "sleep 500",
                "ticket"
            ]
        );
        let polls_before_retry = log[opens[2]..opens[3]].iter().filter(|s| *s == "poll").count();
        assert_eq!(
            polls_before_retry,
            1 + (SOCKET_RETRY_MS / 1000) as usize,
            "polling for 30 s, then the socket again"
        );
        // The retry dropped too: straight back to polling, for twice as long.
        let after: Vec<&String> = log[opens[3]..].iter().take(4).collect();
        assert_eq!(after, ["open", "drop", "poll", "sleep 1000"]);
    }

    #[test]
    fn unreadable_messages_and_failed_tickets_count_as_drops() {
        let mut w = Watch::new("http://x", "j", 1000, true);
        assert!(matches!(w.step(), Step::Ticket(_)));
        w.ticket(Err(ClientError::network("offline")));
        assert!(matches!(w.step(), Step::Poll(_)));
        assert_eq!(w.polled(304, None, b""), Ok(()));
        assert_eq!(w.step(), Step::Sleep(250));
        assert!(matches!(w.step(), Step::Ticket(_)));
        w.ticket(Ok(br#"{"ticket":"t"}"#));
        assert!(matches!(w.step(), Step::Open(_)));
        assert_eq!(w.step(), Step::Listen);
        w.message("not json");
        assert_eq!(w.step(), Step::Close);
        assert!(matches!(w.step(), Step::Poll(_)));
        // An API error on a poll is the watch's error.
        let e = w.polled(404, None, br#"{"error":{"code":"not_found","message":"no job"}}"#);
        assert!(e.is_err_and(|e| e.code == "not_found"));
    }

    #[test]
    fn a_platform_without_sockets_only_polls_and_a_stopped_watch_is_done() {
        let mut w = Watch::new("http://x", "j", 50, true);
        assert!(matches!(w.step(), Step::Ticket(_)));
        w.ticket(Ok(br#"{"ticket":"t"}"#));
        assert!(matches!(w.step(), Step::Open(_)));
        w.socket_refused();
        for _ in 0..100 {
            match w.step() {
                Step::Poll(_) => assert_eq!(w.polled(304, None, b""), Ok(())),
                Step::Sleep(ms) => assert_eq!(ms, 50),
                other => panic!("polling only: {other:?}"),
            }
        }
        w.stop();
        assert_eq!(w.step(), Step::Done);
    }

    #[test]
    fn a_poll_without_an_answer_is_retried_and_only_many_in_a_row_fail_the_watch() {
        let mut w = Watch::new("http://x", "j", 1000, false);
        assert!(matches!(Machine::step(&mut w), Ok(Io::Send { .. })));
        assert_eq!(w.reply(Reply::Failed(ClientError::network("blip"))), Ok(()));
        assert_eq!(Machine::step(&mut w), Ok(Io::Sleep(1000)));
        assert!(matches!(Machine::step(&mut w), Ok(Io::Send { .. })));
        let view = view(1, "running", None).into_bytes();
        assert_eq!(w.reply(Reply::Answer { status: 200, headers: vec![None], body: view }), Ok(()));
        assert!(matches!(Machine::step(&mut w), Ok(Io::Yield(_))));
        for _ in 0..MAX_POLL_FAILURES {
            while !matches!(Machine::step(&mut w), Ok(Io::Send { .. })) {}
            assert_eq!(w.reply(Reply::Failed(ClientError::network("down"))), Ok(()));
        }
        while !matches!(Machine::step(&mut w), Ok(Io::Send { .. })) {}
        assert!(w.reply(Reply::Failed(ClientError::network("down"))).is_err_and(|e| e.is_network()));
    }

    #[test]
    fn a_silent_socket_is_replaced_after_one_poll_without_counting_as_a_drop() {
        let mut w = Watch::new("http://x", "j", 1000, true);
        let ticket = || Reply::Answer { status: 200, headers: vec![], body: br#"{"ticket":"t"}"#.to_vec() };
        for round in 0..5 {
            assert!(matches!(Machine::step(&mut w), Ok(Io::Send { .. })), "round {round}: a ticket");
            assert_eq!(w.reply(ticket()), Ok(()));
            assert!(matches!(Machine::step(&mut w), Ok(Io::Open(_))));
            assert_eq!(w.reply(Reply::Done), Ok(()));
            assert_eq!(Machine::step(&mut w), Ok(Io::Listen { idle_ms: LISTEN_IDLE_MS }));
            assert_eq!(w.reply(Reply::Idle), Ok(()));
            assert_eq!(Machine::step(&mut w), Ok(Io::Close));
            assert_eq!(w.reply(Reply::Done), Ok(()));
            assert!(
                matches!(Machine::step(&mut w), Ok(Io::Send { request, .. }) if request.path == "/v1/jobs/j")
            );
            assert_eq!(w.reply(Reply::Answer { status: 304, headers: vec![None], body: vec![] }), Ok(()));
            // Straight back to a socket: five quiet minutes never fall back to polling.
            assert_eq!(Machine::step(&mut w), Ok(Io::Sleep(250)));
            assert_eq!(w.reply(Reply::Done), Ok(()));
        }
    }
}
