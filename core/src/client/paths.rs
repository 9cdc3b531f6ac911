//! The API's paths and queries, and the idempotency keys a submit carries.

use super::call::{Method, Request};

/// `encodeURIComponent`: every byte but the unreserved ones, percent-encoded.
pub fn enc(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// `?a=1&b=x` of the pairs given (none: empty).
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if let Some(v) = value {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(name);
            out.push('=');
            out.push_str(&enc(v));
        }
    }
    out
}

pub fn job(id: &str) -> String {
    ["/v1/jobs/", &enc(id)].concat()
}

/// `/v1/jobs/{id}/{what}`.
pub fn job_part(id: &str, what: &str) -> String {
    [&job(id), "/", what].concat()
}

pub fn result(id: &str, key: &str) -> String {
    [&job_part(id, "results"), "/", &enc(key)].concat()
}

pub fn result_media(id: &str, key: &str, n: u32) -> String {
    [&result(id, key), "/media/", &n.to_string()].concat()
}

pub fn upload(id: &str) -> String {
    ["/v1/uploads/", &enc(id)].concat()
}

pub fn input(id: &str) -> String {
    ["/v1/inputs/", &enc(id)].concat()
}

/// The job's WebSocket: the endpoint's scheme turned `ws`/`wss`, and a
/// single-use ticket in place of the token (URLs get logged; tokens live long).
pub fn watch_socket(endpoint: &str, id: &str, ticket: &str) -> String {
    let rest = endpoint.strip_prefix("http").unwrap_or(endpoint);
    ["ws", rest, &job_part(id, "watch"), "?ticket=", &enc(ticket)].concat()
}

pub fn watch_ticket(id: &str) -> Request {
    Request::new(Method::Post, job_part(id, "watch-ticket"))
}

/// The endpoint as calls are joined to it: without trailing slashes.
pub fn endpoint(raw: &str) -> &str {
    raw.trim_end_matches('/')
}

/// An idempotency key of 16 random bytes the transport draws: 32 hex digits.
pub fn idempotency_key(random: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    random.iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_are_encoded_as_one_segment() {
        assert_eq!(result("job/1", "a b?é"), "/v1/jobs/job%2F1/results/a%20b%3F%C3%A9");
        assert_eq!(result_media("j", "k", 2), "/v1/jobs/j/results/k/media/2");
        assert_eq!(
            query(&[
                ("state", Some("running,failed".into())),
                ("limit", None),
                ("cursor", Some("c&d".into()))
            ]),
            "?state=running%2Cfailed&cursor=c%26d"
        );
        assert_eq!(query(&[("limit", None)]), "");
        assert_eq!(endpoint("http://x//"), "http://x");
        assert_eq!(watch_socket("https://h", "j", "t/1"), "wss://h/v1/jobs/j/watch?ticket=t%2F1");
        assert_eq!(
            watch_socket("http://127.0.0.1:8787", "j", "t"),
            "ws://127.0.0.1:8787/v1/jobs/j/watch?ticket=t"
        );
        let key = idempotency_key([0xab; 16]);
        assert_eq!((key.len(), &key[..4]), (32, "abab"));
    }
}
