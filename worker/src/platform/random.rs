//! The one source of randomness: the runtime's Web Crypto. Secrets, tickets,
//! ids and the scheduler's jitter all come from here.

use wasm_bindgen::JsCast;
use worker::Result;

pub fn bytes(n: u32) -> Result<Vec<u8>> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())?;
    let fill: js_sys::Function = js_sys::Reflect::get(&crypto, &"getRandomValues".into())?
        .dyn_into()
        .map_err(|_| worker::Error::RustError("crypto.getRandomValues is missing".into()))?;
    let out = js_sys::Uint8Array::new_with_length(n);
    fill.call1(&crypto, &out)?;
    Ok(out.to_vec())
}

/// `n` random bytes as `2n` lowercase hex digits.
pub fn hex(n: u32) -> Result<String> {
    Ok(bytes(n)?.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random `u64` (jitter, nonces).
pub fn u64() -> Result<u64> {
    let b = bytes(8)?;
    Ok(b.iter().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
}
