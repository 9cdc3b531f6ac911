use super::*;
use proptest::prelude::*;

const MB8: u64 = 8 * 1024 * 1024;

fn range(start: u64, end: u64, total: u64) -> ContentRange {
    ContentRange { start, end_inclusive: end, total }
}

#[test]
fn types_and_sizes_are_checked() {
    let r = UploadRules::default();
    assert_eq!(r.check_file("application/pdf", 10), Ok("application/pdf".into()));
    assert_eq!(r.check_file("Text/Plain; charset=utf-8", 10), Ok("text/plain".into()));
    assert_eq!(r.check_file("application/x-msdownload", 10).map_err(|e| e.status()), Err(415));
    assert_eq!(r.check_file("image/png", 0).map_err(|e| e.code()), Err("invalid_size"));
    assert_eq!(r.check_file("image/png", MAX_FILE_BYTES + 1).map_err(|e| e.status()), Err(413));
}

#[test]
fn content_ranges_parse_strictly() {
    assert_eq!(ContentRange::parse("bytes 0-9/10"), Ok(range(0, 9, 10)));
    for bad in ["0-9/10", "bytes 5-4/10", "bytes 0-10/10", "bytes a-b/c", "bytes 0-9", "bytes */10"] {
        assert!(ContentRange::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn chunks_must_continue_where_the_session_is() {
    let r = UploadRules::default();
    let total = 3 * MB8 + 5;
    assert_eq!(
        r.check_chunk(range(0, MB8 - 1, total), Some(MB8), total, 0),
        Ok(Chunk { offset: 0, len: MB8, last: false })
    );
    // A retry of the chunk already stored, or one skipping ahead: say where to resume.
    assert_eq!(
        r.check_chunk(range(0, MB8 - 1, total), None, total, MB8),
        Err(UploadError::Offset { start: 0, received: MB8 })
    );
    assert_eq!(
        r.check_chunk(range(2 * MB8, 3 * MB8 - 1, total), None, total, MB8).map_err(|e| e.status()),
        Err(409)
    );
    // Not a multiple of the granularity, unless last.
    assert_eq!(
        r.check_chunk(range(0, MB8, total), None, total, 0).map_err(|e| e.code()),
        Err("invalid_chunk_size")
    );
    assert_eq!(
        r.check_chunk(range(3 * MB8, total - 1, total), None, total, 3 * MB8),
        Ok(Chunk { offset: 3 * MB8, len: 5, last: true })
    );
    // Declared size, body length, and the per-request cap.
    assert_eq!(r.check_chunk(range(0, 9, 10), None, total, 0).map_err(|e| e.code()), Err("size_mismatch"));
    assert_eq!(
        r.check_chunk(range(0, MB8 - 1, total), Some(7), total, 0).map_err(|e| e.code()),
        Err("length_mismatch")
    );
    let big = 9 * MB8;
    assert_eq!(
        r.check_chunk(range(0, big - 1, 10 * MB8), None, 10 * MB8, 0).map_err(|e| e.status()),
        Err(413)
    );
}

#[test]
fn file_uris_name_their_file() {
    assert_eq!(
        canonical_file_name("https://generativelanguage.googleapis.com/v1beta/files/abc-123").as_deref(),
        Some("files/abc-123")
    );
    assert_eq!(canonical_file_name("files/xyz").as_deref(), Some("files/xyz"));
    assert_eq!(canonical_file_name("gs://bucket/object"), None);
    assert_eq!(canonical_file_name("https://x/files/"), None);
}

proptest! {
    /// Chunks accepted in order, each starting where the last ended, add up to
    /// exactly the declared size and end with the one finalizing chunk.
    #[test]
    fn accepted_chunks_tile_the_file(total in 1u64..40 * MB8, sizes in prop::collection::vec(1u64..10, 1..20)) {
        let r = UploadRules::default();
        let mut received = 0;
        let mut finals = 0;
        for s in sizes.iter().cycle().take(200) {
            if received == total {
                break;
            }
            let len = (s * MB8).min(total - received);
            match r.check_chunk(range(received, received + len - 1, total), Some(len), total, received) {
                Ok(c) => {
                    prop_assert_eq!(c.offset, received);
                    received += c.len;
                    finals += u32::from(c.last);
                    prop_assert_eq!(c.last, received == total);
                }
                Err(e) => prop_assert!(len > r.max_chunk, "refused {len}: {e:?}"),
            }
        }
        prop_assert!(received <= total);
        prop_assert!(finals <= 1);
    }
}
