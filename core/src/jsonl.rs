//! Incremental JSONL splitting: bytes arrive in chunks split anywhere (inside a
//! line, inside a UTF-8 sequence, between `\r` and `\n`); lines come out whole,
//! numbered from 1, with a hard cap on their length so memory stays bounded.
//!
//! A UTF-8 BOM at the start of the stream is dropped, `\r\n` is accepted as a line
//! end, and blank lines are skipped (but still counted, so numbers match what an
//! editor shows).

use std::fmt;

/// Default cap on one line: a Gemini request with inline media can be large, but
/// anything bigger belongs in the Files API.
pub const DEFAULT_MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, PartialEq, Eq)]
pub enum SplitError<E> {
    /// Line `line` grew past `limit` bytes before its end was seen.
    LineTooLong { line: u64, limit: usize },
    /// The line handler refused line `line`.
    Handler { line: u64, error: E },
}

impl<E: fmt::Display> fmt::Display for SplitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::LineTooLong { line, limit } => {
                write!(f, "line {line} is longer than {limit} bytes")
            }
            SplitError::Handler { line, error } => write!(f, "line {line}: {error}"),
        }
    }
}

/// Feed it chunks; it calls back once per non-blank line.
#[derive(Debug)]
pub struct LineSplitter {
    /// The unfinished tail of the current line (never more than `max_line` bytes).
    partial: Vec<u8>,
    /// Number of the line currently being assembled (1-based).
    line: u64,
    max_line: usize,
    /// Bytes seen so far, to recognise a BOM split across chunks.
    seen: u64,
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter { partial: Vec::new(), line: 1, max_line: max_line_bytes, seen: 0 }
    }

    /// Lines completed so far (including blank ones).
    pub fn lines_seen(&self) -> u64 {
        self.line - 1
    }

    /// Split `chunk`; `on_line(number, bytes)` gets each complete non-blank line
    /// without its terminator.
    pub fn feed<E>(
        &mut self,
        mut chunk: &[u8],
        mut on_line: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), SplitError<E>> {
        chunk = self.strip_bom(chunk);
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = chunk.split_at(pos);
            chunk = rest.get(1..).unwrap_or_default();
            if self.partial.is_empty() {
                self.check_len(head.len())?;
                self.emit(head, &mut on_line)?;
            } else {
                self.check_len(self.partial.len() + head.len())?;
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(head);
                let result = self.emit(&whole, &mut on_line);
                whole.clear();
                self.partial = whole; // keep the allocation
                result?;
            }
        }
        self.check_len(self.partial.len() + chunk.len())?;
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// End of input: a last line without a terminator still counts.
    pub fn finish<E>(
        mut self,
        mut on_line: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<u64, SplitError<E>> {
        let tail = std::mem::take(&mut self.partial);
        self.emit(&tail, &mut on_line)?;
        Ok(self.lines_seen())
    }

    fn strip_bom<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let start = self.seen;
        self.seen += chunk.len() as u64;
        if start >= BOM.len() as u64 {
            return chunk;
        }
        // The stream so far (partial + chunk) may be a BOM prefix; only strip
        // bytes that really complete a BOM at offset 0.
        let have = &self.partial;
        let mut probe: Vec<u8> = have.clone();
        probe.extend(chunk.iter().take(BOM.len()));
        if probe.len() >= BOM.len() && probe.starts_with(BOM) {
            let from_chunk = BOM.len() - have.len();
            self.partial.clear();
            return chunk.get(from_chunk..).unwrap_or_default();
        }
        chunk
    }

    fn check_len<E>(&self, len: usize) -> Result<(), SplitError<E>> {
        // Allow one extra byte for a trailing `\r` that is not part of the content.
        if len > self.max_line + 1 {
            return Err(SplitError::LineTooLong { line: self.line, limit: self.max_line });
        }
        Ok(())
    }

    fn emit<E>(
        &mut self,
        raw: &[u8],
        on_line: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), SplitError<E>> {
        let line = self.line;
        self.line += 1;
        let content = raw.strip_suffix(b"\r").unwrap_or(raw);
        if content.len() > self.max_line {
            return Err(SplitError::LineTooLong { line, limit: self.max_line });
        }
        if content.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        on_line(line, content).map_err(|error| SplitError::Handler { line, error })
    }
}

/// Split a whole buffer at once (tests, small inputs).
pub fn split_all(
    bytes: &[u8],
    max_line: usize,
) -> Result<Vec<(u64, Vec<u8>)>, SplitError<std::convert::Infallible>> {
    let mut out = Vec::new();
    let mut s = LineSplitter::new(max_line);
    s.feed(bytes, |n, l| {
        out.push((n, l.to_vec()));
        Ok(())
    })?;
    s.finish(|n, l| {
        out.push((n, l.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(out: &[(u64, Vec<u8>)]) -> Vec<(u64, String)> {
        out.iter().map(|(n, l)| (*n, String::from_utf8_lossy(l).into_owned())).collect()
    }

    #[test]
    fn crlf_bom_blank_and_unterminated_last_line() {
        let input = b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"b\":2}\n  \n{\"c\":3}";
        let out = split_all(input, 100).unwrap();
        assert_eq!(
            lines(&out),
            vec![(1, "{\"a\":1}".into()), (3, "{\"b\":2}".into()), (5, "{\"c\":3}".into())]
        );
    }

    #[test]
    fn a_long_line_is_refused_with_its_number_before_it_is_buffered_whole() {
        let mut s = LineSplitter::new(10);
        assert!(s.feed(b"short\n", |_, _| Ok::<(), ()>(())).is_ok());
        let err = s.feed(b"0123456789abc", |_, _| Ok::<(), ()>(())).unwrap_err();
        assert_eq!(err, SplitError::LineTooLong { line: 2, limit: 10 });
    }

    #[test]
    fn handler_errors_carry_the_line_number() {
        let mut s = LineSplitter::new(100);
        let err = s.feed(b"ok\nbad\n", |_, l| if l == b"bad" { Err("nope") } else { Ok(()) }).unwrap_err();
        assert_eq!(err.to_string(), "line 2: nope");
    }

    proptest! {
        /// However the stream is cut into chunks, the same lines come out.
        #[test]
        fn chunking_never_changes_the_lines(
            body in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), any::<u8>()], 0..400),
            bom in any::<bool>(),
            cuts in proptest::collection::vec(0usize..420, 0..12),
        ) {
            let mut input = if bom { BOM.to_vec() } else { vec![] };
            input.extend_from_slice(&body);
            let whole = split_all(&input, 1000).unwrap();

            let mut cuts = cuts.into_iter().filter(|&c| c <= input.len()).collect::<Vec<_>>();
            cuts.sort_unstable();
            let mut s = LineSplitter::new(1000);
            let mut got = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                s.feed(&input[last..c], |n, l| { got.push((n, l.to_vec())); Ok::<(), ()>(()) }).unwrap();
                last = c;
            }
            s.finish(|n, l| { got.push((n, l.to_vec())); Ok::<(), ()>(()) }).unwrap();
            prop_assert_eq!(got, whole);
        }
    }
}
