//! Uploading and downloading a large file through the emulator versus the
//! baseline server: MB/s and the emulator's peak memory (it must stream, so its
//! peak stays flat whatever the file size).

use super::{Row, Section, mb_per_s, median};
use crate::process::{Service, memory_kib};
use futures_util::StreamExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const CHUNK: usize = 8 * 1024 * 1024;
const KEY: &str = "bench-key";

async fn upload_chunks(c: &reqwest::Client, url: &str, file: &Path, size: u64, resumable: bool) -> Duration {
    let mut f = tokio::fs::File::open(file).await.unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK];
    while offset < size {
        let n = fill(&mut f, &mut buf).await;
        if n == 0 {
            break;
        }
        let last = offset + n as u64 >= size;
        let mut req = c.post(url).body(buf[..n].to_vec());
        if resumable {
            req = req
                .header("X-Goog-Upload-Command", if last { "upload, finalize" } else { "upload" })
                .header("X-Goog-Upload-Offset", offset.to_string());
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("upload: {e:?}"));
        assert!(r.status().is_success(), "upload chunk failed: {}", r.status());
        offset += n as u64;
    }
    t.elapsed()
}

/// Read until `buf` is full or the file ends (a single read may return less).
async fn fill(f: &mut tokio::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

async fn download(c: &reqwest::Client, url: &str) -> (Duration, u64) {
    let t = Instant::now();
    let r = c.get(url).header("x-goog-api-key", KEY).send().await.unwrap_or_else(|e| panic!("download: {e}"));
    assert!(r.status().is_success(), "download failed: {}", r.status());
    let mut n = 0u64;
    let mut s = r.bytes_stream();
    while let Some(chunk) = s.next().await {
        n += chunk.map(|c| c.len() as u64).unwrap_or(0);
    }
    (t.elapsed(), n)
}

async fn start_session(c: &reqwest::Client, base: &str, size: u64) -> String {
    let r = c
        .post(format!("{base}/upload/v1beta/files"))
        .header("x-goog-api-key", KEY)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Length", size.to_string())
        .header("X-Goog-Upload-Header-Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    r.headers().get("x-goog-upload-url").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

pub async fn run(size_mb: u64, reps: usize, bench_bin: &Path) -> Section {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("payload.bin");
    let size = size_mb * 1024 * 1024;
    {
        let mut block = vec![0u8; CHUNK];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        let mut f = std::fs::File::create(&file).unwrap_or_else(|e| panic!("{e}"));
        let mut left = size;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            std::io::Write::write_all(&mut f, &block[..n]).unwrap_or_else(|e| panic!("{e}"));
            left -= n as u64;
        }
    }
    let data_dir = dir.path().join("emulator-data");
    let data_dir_s = data_dir.display().to_string();
    let emu = Service::emulator(&[
        "--api-key",
        KEY,
        "--data-dir",
        &data_dir_s,
        "--config",
        r#"{"downloadUploadedFiles": true}"#,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let base = Service::spawn(
        bench_bin,
        &["--serve-baseline", &file.display().to_string()],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let idle_kib = memory_kib(emu.pid()).map_or(0, |m| m.1);
    let c = reqwest::Client::new();

    let (mut up, mut up_base, mut down, mut down_base) = (vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        let session = start_session(&c, &emu.url, size).await;
        up.push(mb_per_s(size, upload_chunks(&c, &session, &file, size, true).await));
        up_base
            .push(mb_per_s(size, upload_chunks(&c, &format!("{}/sink", base.url), &file, size, false).await));
        // The newest file is the one just uploaded.
        let list: serde_json::Value = c
            .get(format!("{}/v1beta/files?pageSize=1", emu.url))
            .header("x-goog-api-key", KEY)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        let name = list["files"][0]["name"].as_str().unwrap_or_default().to_string();
        let (d, n) = download(&c, &format!("{}/v1beta/{name}:download?alt=media", emu.url)).await;
        assert_eq!(n, size, "downloaded every byte");
        down.push(mb_per_s(size, d));
        let (d, _) = download(&c, &format!("{}/source", base.url)).await;
        down_base.push(mb_per_s(size, d));
        let _ = c.delete(format!("{}/v1beta/{name}", emu.url)).header("x-goog-api-key", KEY).send().await;
    }
    let (peak_kib, _) = memory_kib(emu.pid()).unwrap_or((0, 0));
    let (up, up_base, down, down_base) = (median(up), median(up_base), median(down), median(down_base));
    let peak_mb = peak_kib as f64 / 1024.0;
    Section {
        title: format!("Emulator: {size_mb} MiB upload and download"),
        how: format!(
            "The resumable protocol in 8 MiB chunks, then `:download?alt=media`, against a baseline server \
             (separate process) that discards the same chunks and streams the same file. Median of {reps} \
             alternating runs. Peak RSS is the emulator's `VmHWM` (idle: {:.1} MiB).",
            idle_kib as f64 / 1024.0
        ),
        rows: vec![
            Row {
                metric: "upload MB/s".into(),
                value: format!("{up:.0}"),
                baseline: format!("{up_base:.0}"),
                ratio: Some(up / up_base),
                target: None,
            },
            Row {
                metric: "download MB/s".into(),
                value: format!("{down:.0}"),
                baseline: format!("{down_base:.0}"),
                ratio: Some(down / down_base),
                target: None,
            },
            Row {
                metric: "emulator peak RSS".into(),
                value: format!("{peak_mb:.1} MiB"),
                baseline: format!("{size_mb} MiB moved"),
                ratio: None,
                target: Some(("< 100 MiB".into(), peak_mb < 100.0)),
            },
        ],
    }
}
