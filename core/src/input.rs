//! Job inputs sent in resumable parts (`/v1/inputs`): the rules for a part's
//! `Content-Range` and where it may go. A Cloudflare request body is capped
//! (100 MB on most plans), so a large job's NDJSON comes as parts of whole
//! lines, each validated as it streams; the job is made from all of them.
//!
//! A part must start where the input stands (`received`). A part that repeats
//! one already taken, range for range, is a retry whose answer was lost: it is
//! answered with the counts it got then, and not taken twice.

use serde::{Deserialize, Serialize};

/// The largest input: 2^53 − 1 bytes, the largest count a Durable Object's
/// SQLite binding holds exactly (and far beyond any Gemini batch).
pub const MAX_INPUT_BYTES: u64 = (1 << 53) - 1;

/// `Content-Range: bytes START-END/TOTAL`, or `bytes START-END/*` when the
/// input's total is not known yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRange {
    pub start: u64,
    pub end_inclusive: u64,
    pub total: Option<u64>,
}

impl PartRange {
    pub fn parse(header: &str) -> Result<PartRange, InputError> {
        let bad = || {
            InputError::Range(format!(
                "Content-Range {header:?} is not \"bytes start-end/total\" (or \"/*\")"
            ))
        };
        let spec = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
        let (range, total) = spec.split_once('/').ok_or_else(bad)?;
        let (start, end) = range.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let (start, end_inclusive) = (num(start)?, num(end)?);
        let total = match total.trim() {
            "*" => None,
            t => Some(num(t)?),
        };
        if end_inclusive < start || total.is_some_and(|t| end_inclusive >= t) {
            return Err(bad());
        }
        if end_inclusive >= MAX_INPUT_BYTES || total.is_some_and(|t| t > MAX_INPUT_BYTES) {
            return Err(InputError::Range(format!("an input is at most {MAX_INPUT_BYTES} bytes")));
        }
        Ok(PartRange { start, end_inclusive, total })
    }

    pub fn bytes(&self) -> u64 {
        (self.end_inclusive - self.start).saturating_add(1)
    }

    /// The input's last part (its total is declared and this part reaches it).
    pub fn is_last(&self) -> bool {
        self.total.is_some_and(|t| self.end_inclusive + 1 == t)
    }
}

/// A part already taken: its range and the input's counts after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TakenPart {
    pub start: u64,
    pub end_inclusive: u64,
    /// Bytes and lines the input held once this part was taken.
    pub received: u64,
    pub lines: u64,
}

/// Where an input stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputState {
    /// The total the user declared (at open or in a part's range), if any.
    pub size: Option<u64>,
    pub received: u64,
    /// Lines taken so far (blank ones included: they number the lines after them).
    pub lines: u64,
    pub parts: Vec<TakenPart>,
}

/// What to do with a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Take it: it is the input's part number `number` (1-based), its lines numbered after `lines_before`.
    Take { number: u64, lines_before: u64 },
    /// Already taken (a retry whose answer was lost): answer these counts again.
    Replay { received: u64, lines: u64 },
}

impl InputState {
    /// May a part with `range` and a body of `body_len` bytes (when declared)
    /// come in, at most `max_part` bytes?
    pub fn admit(
        &self,
        range: PartRange,
        body_len: Option<u64>,
        max_part: u64,
    ) -> Result<Admission, InputError> {
        if let Some(p) =
            self.parts.iter().find(|p| p.start == range.start && p.end_inclusive == range.end_inclusive)
        {
            return Ok(Admission::Replay { received: p.received, lines: p.lines });
        }
        if let (Some(declared), Some(total)) = (self.size, range.total)
            && declared != total
        {
            return Err(InputError::Total { total, declared });
        }
        if range.start != self.received {
            return Err(InputError::Offset { start: range.start, received: self.received });
        }
        if let Some(declared) = self.size.filter(|d| range.end_inclusive >= *d) {
            return Err(InputError::PastTotal { end: range.end_inclusive, declared });
        }
        if let Some(body) = body_len.filter(|b| *b != range.bytes()) {
            return Err(InputError::Length { range: range.bytes(), body });
        }
        if range.bytes() > max_part {
            return Err(InputError::PartTooLarge { len: range.bytes(), max: max_part });
        }
        Ok(Admission::Take { number: self.parts.len() as u64 + 1, lines_before: self.lines })
    }

    /// Record a part taken with `lines` lines in it; what is recorded.
    pub fn take(&mut self, range: PartRange, lines: u64) -> TakenPart {
        self.received = range.end_inclusive + 1;
        self.lines += lines;
        if self.size.is_none() {
            self.size = range.total;
        }
        let part = TakenPart {
            start: range.start,
            end_inclusive: range.end_inclusive,
            received: self.received,
            lines: self.lines,
        };
        self.parts.push(part);
        part
    }

    /// Every byte declared has come. A job waits for its total to be declared
    /// (at open, or in a part's range): an uploader that stopped early must not
    /// make, and be billed for, a job of part of its data.
    pub fn complete(&self) -> bool {
        self.size.is_some_and(|total| self.received == total)
    }
}

/// Whether a part's last byte may end the part: every part ends with a line
/// end, except the input's last one (its total declared and reached).
pub fn ends_whole(range: &PartRange, last_byte: Option<u8>) -> Result<(), InputError> {
    match last_byte {
        Some(b'\n') => Ok(()),
        _ if range.is_last() => Ok(()),
        _ => Err(InputError::PartialLine),
    }
}

/// Why a part or an input is refused; each maps to one 4xx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputError {
    /// 400: an unreadable `Content-Range`.
    Range(String),
    /// 409: the part does not start where the input stands; resume from `received`.
    Offset { start: u64, received: u64 },
    /// 400: the range's total differs from the one declared.
    Total { total: u64, declared: u64 },
    /// 400: the part reaches past the declared total.
    PastTotal { end: u64, declared: u64 },
    /// 400: the body's length differs from the range.
    Length { range: u64, body: u64 },
    /// 413: a part larger than one request may carry.
    PartTooLarge { len: u64, max: u64 },
    /// 400: the part ends inside a line.
    PartialLine,
    /// 409: the input made a job already, or expired, or was deleted.
    Ended { why: String },
}

impl InputError {
    pub fn status(&self) -> u16 {
        match self {
            InputError::Offset { .. } | InputError::Ended { .. } => 409,
            InputError::PartTooLarge { .. } => 413,
            _ => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            InputError::Range(_) => "invalid_content_range",
            InputError::Offset { .. } => "wrong_offset",
            InputError::Total { .. } | InputError::PastTotal { .. } => "size_mismatch",
            InputError::Length { .. } => "length_mismatch",
            InputError::PartTooLarge { .. } => "part_too_large",
            InputError::PartialLine => "partial_line",
            InputError::Ended { .. } => "input_ended",
        }
    }

    pub fn message(&self) -> String {
        match self {
            InputError::Range(why) => why.clone(),
            InputError::Offset { start, received } => {
                format!("the part starts at byte {start} but the input holds {received}; resume from {received}")
            }
            InputError::Total { total, declared } => {
                format!("Content-Range says the input is {total} bytes; it was declared as {declared}")
            }
            InputError::PastTotal { end, declared } => {
                format!("the part reaches byte {end}, past the input's declared {declared} bytes")
            }
            InputError::Length { range, body } => format!("Content-Range covers {range} bytes but the body has {body}"),
            InputError::PartTooLarge { len, max } => format!("a part of {len} bytes; at most {max} per request"),
            InputError::PartialLine => {
                "the part ends inside a line: every part but the last of a declared total ends with a line end".into()
            }
            InputError::Ended { why } => why.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(h: &str) -> PartRange {
        PartRange::parse(h).unwrap()
    }

    #[test]
    fn a_range_has_a_total_or_a_star() {
        assert_eq!(range("bytes 0-9/100"), PartRange { start: 0, end_inclusive: 9, total: Some(100) });
        assert_eq!(range("bytes 10-19/*"), PartRange { start: 10, end_inclusive: 19, total: None });
        for bad in ["", "bytes 5-4/10", "bytes 0-10/10", "bytes a-b/*", "0-9/10", "bytes 0-9", "bytes -1-9/*"]
        {
            assert!(matches!(PartRange::parse(bad), Err(InputError::Range(_))), "{bad:?}");
        }
        assert!(range("bytes 90-99/100").is_last());
        assert!(!range("bytes 90-99/*").is_last());
    }

    #[test]
    fn parts_come_in_order_and_a_repeat_is_answered_not_taken() {
        let mut s = InputState::default();
        assert_eq!(
            s.admit(range("bytes 0-9/*"), Some(10), 64),
            Ok(Admission::Take { number: 1, lines_before: 0 })
        );
        s.take(range("bytes 0-9/*"), 3);
        assert_eq!(
            s.admit(range("bytes 0-9/*"), Some(10), 64),
            Ok(Admission::Replay { received: 10, lines: 3 })
        );
        assert_eq!(
            s.admit(range("bytes 20-29/*"), None, 64),
            Err(InputError::Offset { start: 20, received: 10 }),
            "a gap is refused with where to resume"
        );
        assert_eq!(
            s.admit(range("bytes 10-19/30"), Some(9), 64),
            Err(InputError::Length { range: 10, body: 9 })
        );
        assert_eq!(
            s.admit(range("bytes 10-99/100"), None, 64),
            Err(InputError::PartTooLarge { len: 90, max: 64 })
        );
        assert_eq!(
            s.admit(range("bytes 10-19/30"), None, 64),
            Ok(Admission::Take { number: 2, lines_before: 3 })
        );
        s.take(range("bytes 10-19/30"), 2);
        assert_eq!(s.size, Some(30), "a total once declared stays");
        assert_eq!(
            s.admit(range("bytes 20-29/40"), None, 64),
            Err(InputError::Total { total: 40, declared: 30 })
        );
        assert!(!s.complete());
        assert_eq!(
            s.admit(range("bytes 20-39/*"), None, 64),
            Err(InputError::PastTotal { end: 39, declared: 30 }),
            "a part without a total may not pass the one declared"
        );
        s.take(range("bytes 20-29/30"), 1);
        assert!(s.complete());
        assert_eq!((s.received, s.lines), (30, 6));
    }

    #[test]
    fn a_job_waits_for_a_declared_total_and_no_range_passes_two_to_the_53() {
        let mut s = InputState::default();
        s.take(range("bytes 0-9/*"), 1);
        assert!(!s.complete(), "no total declared: the uploader may not be done");
        for huge in
            ["bytes 0-18446744073709551615/*", "bytes 0-9007199254740991/*", "bytes 0-9/18446744073709551615"]
        {
            assert!(matches!(PartRange::parse(huge), Err(InputError::Range(_))), "{huge}");
        }
        let widest = PartRange { start: 0, end_inclusive: u64::MAX, total: None };
        assert_eq!(widest.bytes(), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn every_part_but_the_last_of_a_declared_total_ends_a_line() {
        assert_eq!(ends_whole(&range("bytes 0-9/*"), Some(b'\n')), Ok(()));
        assert_eq!(ends_whole(&range("bytes 0-9/*"), Some(b'}')), Err(InputError::PartialLine));
        assert_eq!(ends_whole(&range("bytes 0-9/20"), Some(b'}')), Err(InputError::PartialLine));
        assert_eq!(ends_whole(&range("bytes 10-19/20"), Some(b'}')), Ok(()));
        assert_eq!(ends_whole(&range("bytes 0-9/*"), None), Err(InputError::PartialLine));
    }

    proptest! {
        /// However an input is cut and whatever parts are repeated, the parts
        /// taken tile it from 0 with no gap or overlap, and a repeat never moves it.
        #[test]
        fn taken_parts_tile_the_input(cuts in prop::collection::vec(1u64..50, 1..20), repeats in prop::collection::vec(0usize..20, 0..10)) {
            let mut s = InputState::default();
            let mut start = 0;
            let mut ranges = vec![];
            for len in &cuts {
                ranges.push(PartRange { start, end_inclusive: start + len - 1, total: None });
                start += len;
            }
            for (i, r) in ranges.iter().enumerate() {
                prop_assert_eq!(s.admit(*r, Some(r.bytes()), 64), Ok(Admission::Take { number: i as u64 + 1, lines_before: i as u64 }));
                s.take(*r, 1);
                for &j in repeats.iter().filter(|&&j| j <= i) {
                    let before = (s.received, s.lines);
                    let replayed = matches!(s.admit(ranges[j], None, 64), Ok(Admission::Replay { .. }));
                    prop_assert!(replayed);
                    prop_assert_eq!((s.received, s.lines), before);
                }
            }
            prop_assert_eq!(s.received, start);
            let mut at = 0;
            for p in &s.parts {
                prop_assert_eq!(p.start, at);
                at = p.end_inclusive + 1;
            }
        }
    }
}
