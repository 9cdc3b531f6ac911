//! Reading Gemini's answer: whole through a byte cap, or streamed through to
//! the user as server-sent events while core's `StreamMeter` reads the usage.
//! The stream is pumped by a task the runtime keeps alive past the response
//! (`wait_until`): a user who disconnects stops receiving, not the reading,
//! so the call is still settled from what Gemini reports at its end.

use super::{Call, Cost};
use crate::api::{Ctx, Result};
use crate::platform::gemini::with_timeout;
use batchgate_core::realtime::StreamMeter;
use futures_channel::mpsc;
use futures_util::StreamExt;
use worker::Response;

/// Chunks held for a reader that has not taken them yet.
const BUFFERED_CHUNKS: usize = 16;

/// The largest event the meter reads (usage rides on small ones; an image chunk is skipped).
const MAX_METERED_EVENT: usize = 1 << 20;

/// Answer with Gemini's event stream as it arrives; settle when it ends. The
/// cost comes last, as an SSE comment line every client ignores:
/// `: batchgate-cost {"standard", "charged"}`.
pub fn pass_through(cx: &Ctx<'_>, answer: Response, call: Call, timeout_ms: u64) -> Result<Response> {
    // Bounded: a slow reader slows the reading of Gemini's answer, it does not fill memory.
    let (tx, rx) = mpsc::channel::<Vec<u8>>(BUFFERED_CHUNKS);
    let cap = cx.settings.realtime.max_answer_bytes;
    cx.ctx.wait_until(pump(answer, tx, call.clone(), (timeout_ms, cap)));
    let resp = Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>))?;
    resp.headers().set("content-type", "text/event-stream")?;
    resp.headers().set("cache-control", "no-cache")?;
    resp.headers().set("batchgate-call-id", &call.id)?;
    Ok(resp)
}

/// Hand a chunk to the reader once it has room; false when the reader is gone.
async fn send(tx: &mut mpsc::Sender<Vec<u8>>, chunk: Vec<u8>) -> bool {
    if std::future::poll_fn(|cx| tx.poll_ready(cx)).await.is_err() {
        return false;
    }
    tx.try_send(chunk).is_ok()
}

async fn pump(
    mut answer: Response,
    mut tx: mpsc::Sender<Vec<u8>>,
    call: Call,
    (timeout_ms, cap): (u64, u64),
) {
    let mut meter = StreamMeter::new(MAX_METERED_EVENT);
    let mut read = 0u64;
    let mut reader_gone = false;
    let ended_cleanly = match answer.stream() {
        Err(_) => false,
        Ok(mut body) => loop {
            match with_timeout(timeout_ms, body.next(), || ()).await {
                Some(None) => break true,
                Some(Some(Ok(chunk))) => {
                    read = read.saturating_add(chunk.len() as u64);
                    if read > cap {
                        // Too long to pass on: cut, and charged its reservation.
                        break false;
                    }
                    meter.feed(&chunk);
                    // The user may be gone: the reading goes on regardless.
                    if !reader_gone && !send(&mut tx, chunk).await {
                        reader_gone = true;
                    }
                }
                None | Some(Some(Err(_))) => break false,
            }
        },
    };
    let bill = call.bill(meter.settle(ended_cleanly).as_ref());
    let cost =
        serde_json::to_string(&Cost { standard: bill.charge, charged: bill.charge }).unwrap_or_default();
    if !reader_gone {
        send(&mut tx, format!(": batchgate-cost {cost}\n\n").into_bytes()).await;
    }
    drop(tx);
    call.settle(bill, if bill.measured { "answered" } else { "unmeasured" }).await;
}
