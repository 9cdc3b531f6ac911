//! Cryptographically random bytes from the runtime's Web Crypto (secrets).

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
