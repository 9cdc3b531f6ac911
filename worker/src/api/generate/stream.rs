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

/// The largest event the meter reads (usage rides on small ones; an image chunk is skipped).
const MAX_METERED_EVENT: usize = 1 << 20;

/// Answer with Gemini's event stream as it arrives; settle when it ends. The
/// cost comes last, as an SSE comment line every client ignores:
/// `: batchgate-cost {"standard", "charged"}`.
pub fn pass_through(cx: &Ctx<'_>, answer: Response, call: Call, timeout_ms: u64) -> Result<Response> {
    let (tx, rx) = mpsc::unbounded::<Vec<u8>>();
    cx.ctx.wait_until(pump(answer, tx, call.clone(), timeout_ms));
    let resp = Response::from_stream(rx.map(Ok::<Vec<u8>, worker::Error>))?;
    resp.headers().set("content-type", "text/event-stream")?;
    resp.headers().set("cache-control", "no-cache")?;
    resp.headers().set("batchgate-call-id", &call.id)?;
    Ok(resp)
}

async fn pump(mut answer: Response, tx: mpsc::UnboundedSender<Vec<u8>>, call: Call, timeout_ms: u64) {
    let mut meter = StreamMeter::new(MAX_METERED_EVENT);
    let ended_cleanly = match answer.stream() {
        Err(_) => false,
        Ok(mut body) => loop {
            match with_timeout(timeout_ms, body.next(), || ()).await {
                Some(None) => break true,
                Some(Some(Ok(chunk))) => {
                    meter.feed(&chunk);
                    // The user may be gone: the reading goes on regardless.
                    let _ = tx.unbounded_send(chunk);
                }
                None | Some(Some(Err(_))) => break false,
            }
        },
    };
    let bill = call.bill(meter.settle(ended_cleanly).as_ref());
    let cost =
        serde_json::to_string(&Cost { standard: bill.charge, charged: bill.charge }).unwrap_or_default();
    let _ = tx.unbounded_send(format!(": batchgate-cost {cost}\n\n").into_bytes());
    drop(tx);
    call.settle(bill, if bill.measured { "answered" } else { "unmeasured" }).await;
}
