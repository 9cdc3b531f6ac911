//! Copying a results file into R2 in resumable slices while indexing its lines.
//!
//! R2 multipart parts must all have the same size (but the last), and results
//! lines do not respect part boundaries, so the two are decoupled: part `n` is
//! bytes `[n·P, (n+1)·P)` of the file, copied verbatim; the line scanner reads
//! from `scan_offset` (the start of the first line not yet indexed) to the end of
//! that part. Everything a slice changes is in the returned cursor, which the
//! caller stores atomically with the slice's index rows: a slice cut off halfway
//! is simply done again (part numbers are deterministic, re-uploading overwrites).

use crate::results::{Outcome, Tally, scan_line};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// R2's smallest part (all but the last) is 5 MiB; 8 MiB keeps memory small.
pub const DEFAULT_PART_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// Parts already stored (the next part's 0-based index).
    pub parts_done: u64,
    /// File offset of the first line not yet indexed.
    pub scan_offset: u64,
    /// Non-blank lines indexed so far.
    pub lines: u64,
    /// The line at `scan_offset` is over the length cap: skip to its end.
    pub skipping: bool,
    pub tally: Tally,
}

/// What the next slice must fetch and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// Bytes to read from the results file.
    pub fetch: Range<u64>,
    /// The part to store: its 1-based number and the file range it covers
    /// (a suffix of `fetch`).
    pub part_number: u64,
    pub part: Range<u64>,
    pub last: bool,
}

/// Where a shard's result line `local` (1-based in its shard) sorts among
/// the job's: shards are ingested side by side, so a line cannot know how
/// many lines the shards before it hold; shard `s` numbers from `s × 2³²` (a
/// shard is one Gemini batch of at most 2 GB: far fewer lines). Shard 0's
/// numbers are its lines', as every job's were before shards ran side by side.
pub fn line_number(shard: u64, local: u64) -> u64 {
    (shard << 32).saturating_add(local)
}

/// The next slice, or `None` when every part is stored. A 0-byte file has one
/// empty last part.
pub fn next_slice(c: &Cursor, total: u64, part_bytes: u64) -> Option<Slice> {
    let start = c.parts_done * part_bytes;
    if start >= total && !(total == 0 && c.parts_done == 0) {
        return None;
    }
    let end = (start + part_bytes).min(total);
    Some(Slice {
        fetch: c.scan_offset.min(start)..end,
        part_number: c.parts_done + 1,
        part: start..end,
        last: end == total,
    })
}

/// The bytes to store for `slice`, given the fetched `bytes` (= `slice.fetch`):
/// the part's range, and a `\n` after the file's last line if Gemini sent
/// none, so every stored object ends its lines and a job's shard objects read
/// back to back never run two lines together. Line offsets are unchanged.
pub fn stored_part(slice: &Slice, bytes: &[u8]) -> Vec<u8> {
    let from = usize::try_from(slice.part.start.saturating_sub(slice.fetch.start)).unwrap_or(usize::MAX);
    let mut part = bytes.get(from..).unwrap_or_default().to_vec();
    if slice.last && bytes.last().is_some_and(|b| *b != b'\n') {
        part.push(b'\n');
    }
    part
}

/// One indexed line: where it is in the stored object and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRecord {
    /// 1-based among non-blank lines.
    pub number: u64,
    pub offset: u64,
    pub len: u64,
    pub key: Option<String>,
    pub outcome: Outcome,
}

/// Index the complete lines of `bytes` (= the file's `slice.fetch` range) and
/// return them with the cursor after this slice.
pub fn scan_slice(c: &Cursor, slice: &Slice, bytes: &[u8], max_line: u64) -> (Vec<LineRecord>, Cursor) {
    let mut next = c.clone();
    let mut records = Vec::new();
    let base = slice.fetch.start;
    let mut pos = (c.scan_offset - base) as usize;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (line, consumed, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (&rest[..nl], nl + 1, true),
            None if slice.last => (rest, rest.len(), true),
            None => (rest, 0, false),
        };
        if !complete {
            if rest.len() as u64 > max_line && !next.skipping {
                records.push(too_long(&mut next, base + pos as u64, rest.len() as u64, max_line));
                next.skipping = true;
            }
            break;
        }
        if consumed == 0 {
            break; // end of the last slice
        }
        let offset = base + pos as u64;
        pos += consumed;
        next.scan_offset = base + pos as u64;
        if std::mem::take(&mut next.skipping) {
            continue; // the rest of an over-long line, already recorded
        }
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if content.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if content.len() as u64 > max_line {
            records.push(too_long(&mut next, offset, content.len() as u64, max_line));
            continue;
        }
        let scanned = scan_line(content);
        next.lines += 1;
        next.tally.add(&scanned.outcome);
        records.push(LineRecord {
            number: next.lines,
            offset,
            len: content.len() as u64,
            key: scanned.key.map(|k| k.into_owned()),
            outcome: scanned.outcome,
        });
    }
    if next.skipping && slice.last {
        next.skipping = false;
        next.scan_offset = slice.fetch.end;
    }
    next.parts_done = slice.part_number;
    (records, next)
}

fn too_long(next: &mut Cursor, offset: u64, len: u64, max_line: u64) -> LineRecord {
    next.lines += 1;
    let outcome = Outcome::Malformed(format!("result line longer than {max_line} bytes"));
    next.tally.add(&outcome);
    LineRecord { number: next.lines, offset, len, key: None, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(key: &str, tokens: u64) -> String {
        format!("{{\"key\":\"{key}\",\"response\":{{\"usageMetadata\":{{\"totalTokenCount\":{tokens}}}}}}}\n")
    }

    /// Drive a whole file through the planner, restarting some slices.
    fn ingest(file: &[u8], part: u64, max_line: u64, replay: &[bool]) -> (Vec<LineRecord>, Cursor, Vec<u8>) {
        let mut c = Cursor::default();
        let mut all = Vec::new();
        let mut stored: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut i = 0;
        while let Some(s) = next_slice(&c, file.len() as u64, part) {
            let bytes = &file[s.fetch.start as usize..s.fetch.end as usize];
            let (recs, next) = scan_slice(&c, &s, bytes, max_line);
            // A replayed slice: the work is done but its commit is lost.
            if replay.get(i).copied().unwrap_or(false) {
                i += 1;
                continue;
            }
            i += 1;
            stored.retain(|(n, _)| *n != s.part_number);
            stored.push((s.part_number, file[s.part.start as usize..s.part.end as usize].to_vec()));
            all.extend(recs);
            c = next;
        }
        stored.sort();
        (all, c, stored.into_iter().flat_map(|(_, b)| b).collect())
    }

    #[test]
    fn lines_spanning_parts_are_indexed_once_at_their_offsets() {
        let file: String = (0..50).map(|i| line(&format!("k{i}"), i)).collect();
        let (recs, c, stored) = ingest(file.as_bytes(), 64, 1000, &[]);
        assert_eq!(stored, file.as_bytes(), "the parts reassemble the file");
        assert_eq!(recs.len(), 50);
        assert_eq!(c.tally.succeeded, 50);
        assert_eq!(c.tally.usage.total, (0..50).sum::<u64>());
        for r in &recs {
            let text = &file[r.offset as usize..(r.offset + r.len) as usize];
            assert!(text.contains(r.key.as_deref().unwrap()));
        }
    }

    #[test]
    fn stored_parts_are_the_part_range_and_the_file_ends_with_a_newline() {
        let file = b"{\"key\":\"a\"}\n{\"key\":\"b\"}";
        let total = file.len() as u64;
        let first = next_slice(&Cursor::default(), total, 8).unwrap();
        let stored = stored_part(&first, &file[first.fetch.start as usize..first.fetch.end as usize]);
        assert_eq!(stored, file[..8].to_vec(), "a middle part is stored as fetched");
        let mut c = Cursor { parts_done: 2, scan_offset: 14, ..Cursor::default() };
        let last = next_slice(&c, total, 8).unwrap();
        assert!(last.last);
        let fetched = &file[last.fetch.start as usize..];
        assert_eq!(
            stored_part(&last, fetched),
            [&file[16..], b"\n"].concat(),
            "the unterminated last line gets its newline"
        );
        c.parts_done = 0;
        let whole = next_slice(&c, 0, 8).unwrap();
        assert_eq!(stored_part(&whole, b""), Vec::<u8>::new(), "an empty file stays empty");
        let ended = [&file[..], b"\n"].concat();
        let one = next_slice(&Cursor::default(), ended.len() as u64, 64).unwrap();
        assert_eq!(stored_part(&one, &ended), ended, "a terminated file is stored as is");
    }

    #[test]
    fn empty_and_unterminated_files() {
        let (recs, c, _) = ingest(b"", 64, 100, &[]);
        assert!(recs.is_empty());
        assert_eq!(c.parts_done, 1, "an empty file is one empty part");
        let (recs, _, _) = ingest(line("a", 1).trim_end().as_bytes(), 8, 100, &[]);
        assert_eq!(recs.len(), 1);
    }

    #[test]
    fn an_over_long_line_is_recorded_once_and_skipped() {
        let file = format!("{}{}{}", line("a", 1), "x".repeat(300) + "\n", line("b", 2));
        let (recs, c, _) = ingest(file.as_bytes(), 32, 100, &[]);
        let keys: Vec<Option<&str>> = recs.iter().map(|r| r.key.as_deref()).collect();
        assert_eq!(keys, vec![Some("a"), None, Some("b")]);
        assert_eq!((c.tally.succeeded, c.tally.malformed), (2, 1));
    }

    proptest! {
        /// Any part size, any line lengths, any slices replayed: every line is
        /// indexed exactly once and the stored bytes equal the file.
        #[test]
        fn replays_and_part_sizes_never_change_the_outcome(
            sizes in proptest::collection::vec(0usize..120, 1..40),
            part in 1u64..200,
            replay in proptest::collection::vec(any::<bool>(), 0..60),
            crlf in any::<bool>(),
        ) {
            let file: String = sizes.iter().enumerate().map(|(i, pad)| {
                let l = format!("{{\"key\":\"k{i}\",\"response\":{{}},\"pad\":\"{}\"}}", "p".repeat(*pad));
                if crlf { l + "\r\n" } else { l + "\n" }
            }).collect();
            let (clean, c0, _) = ingest(file.as_bytes(), part, 10_000, &[]);
            let (recs, c, stored) = ingest(file.as_bytes(), part, 10_000, &replay);
            prop_assert_eq!(&stored, &file.as_bytes().to_vec());
            prop_assert_eq!(recs.len(), sizes.len());
            prop_assert_eq!(&recs, &clean);
            prop_assert_eq!(c.tally, c0.tally);
        }
    }
}
