//! What a resumable upload session's answer means, read once for both of its
//! users: a job uploading its input and a user's media upload. Gemini states
//! the session's progress in headers (`X-Goog-Upload-Status`,
//! `X-Goog-Upload-Size-Received`) and the finished file in the final body.

use super::File;
use super::client::{Failure, failure, finalized_file};

/// Where a session stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// It holds this many bytes and wants more.
    Partial(u64),
    /// It is finalized: the file Gemini made.
    Final(Box<File>),
}

/// The parts of Gemini's answer that say where a session stands.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    pub status: u16,
    /// `X-Goog-Upload-Status`: `active` or `final`.
    pub upload_status: Option<&'a str>,
    /// `X-Goog-Upload-Size-Received`.
    pub size_received: Option<u64>,
    pub body: &'a str,
}

/// The answer to a chunk of `len` bytes sent at `offset` (`finalize`: the last
/// one). A 400 naming another received size means the session is elsewhere
/// (an earlier chunk's answer was lost): go on from there.
pub fn chunk(answer: &Answer, offset: u64, len: u64, finalize: bool) -> Result<Received, Failure> {
    match (answer.status, finalize, answer.size_received) {
        (200, true, _) => Ok(Received::Final(Box::new(finalized_file(answer.body)?))),
        (200, false, _) => Ok(Received::Partial(offset.saturating_add(len))),
        (400, _, Some(received)) if received != offset => Ok(Received::Partial(received)),
        (status, _, _) => Err(failure(status, answer.body)),
    }
}

/// The answer to a query (`X-Goog-Upload-Command: query`), asked after a chunk
/// whose outcome is unknown. An active session that does not say what it holds
/// is asked again later rather than guessed at.
pub fn query(answer: &Answer) -> Result<Received, Failure> {
    if answer.status != 200 {
        return Err(failure(answer.status, answer.body));
    }
    if answer.upload_status == Some("final") {
        return Ok(Received::Final(Box::new(finalized_file(answer.body)?)));
    }
    answer
        .size_received
        .map(Received::Partial)
        .ok_or_else(|| Failure::network("the upload session did not say how many bytes it holds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"file": {"name": "files/a", "sizeBytes": "10"}}"#;

    fn answer(
        status: u16,
        upload_status: Option<&'static str>,
        size_received: Option<u64>,
        body: &'static str,
    ) -> Answer<'static> {
        Answer { status, upload_status, size_received, body }
    }

    #[test]
    fn a_chunk_moves_the_offset_and_the_last_one_yields_the_file() {
        assert_eq!(chunk(&answer(200, None, None, ""), 8, 8, false), Ok(Received::Partial(16)));
        let Ok(Received::Final(f)) = chunk(&answer(200, Some("final"), None, FILE), 8, 2, true) else {
            panic!("the last chunk's answer is the file")
        };
        assert_eq!(f.name, "files/a");
    }

    #[test]
    fn a_400_naming_another_size_resumes_there_and_any_other_refusal_is_a_failure() {
        assert_eq!(chunk(&answer(400, None, Some(24), ""), 16, 8, false), Ok(Received::Partial(24)));
        assert!(matches!(
            chunk(&answer(400, None, Some(16), ""), 16, 8, false),
            Err(Failure::Permanent { status: 400, .. })
        ));
        assert!(matches!(chunk(&answer(400, None, None, ""), 16, 8, false), Err(Failure::Permanent { .. })));
        assert!(matches!(chunk(&answer(503, None, None, ""), 16, 8, false), Err(Failure::Transient { .. })));
        assert!(
            chunk(&answer(200, None, None, r#"{"error": {"code": 400, "message": "bad"}}"#), 0, 1, true)
                .is_err(),
            "a finalize answered 200 with an error is no file"
        );
    }

    #[test]
    fn a_query_reads_the_status_header_and_never_guesses_a_size() {
        assert_eq!(query(&answer(200, Some("active"), Some(32), "")), Ok(Received::Partial(32)));
        assert!(matches!(query(&answer(200, Some("final"), Some(10), FILE)), Ok(Received::Final(_))));
        assert!(matches!(query(&answer(200, Some("active"), None, "")), Err(Failure::Transient { .. })));
        assert!(matches!(query(&answer(404, None, None, "")), Err(Failure::Permanent { status: 404, .. })));
    }
}
