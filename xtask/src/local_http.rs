//! A minimal blocking HTTP/1.1 client for loopback calls (xtask stays std-only).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `(status, body)` of one request to `http://host:port/path`.
pub fn call(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    let (host, path) = url.strip_prefix("http://").and_then(|r| r.split_once('/'))?;
    let mut s = TcpStream::connect(host).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req = format!("{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// The string value of `"field":"..."` in a small JSON answer.
pub fn json_str(body: &str, field: &str) -> Option<String> {
    let at = body.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let rest = body.get(at..)?;
    Some(rest.get(..rest.find('"')?)?.to_string())
}
