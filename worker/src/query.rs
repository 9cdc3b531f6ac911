//! A request's query parameters, decoded by `form_urlencoded` from the query
//! part of the URL. (`Request::url` parses the whole URL with the `url` crate,
//! whose host parsing and IDNA code were a twelfth of the worker's wasm;
//! nothing here reads more of a URL than its path, which `worker` gives
//! without it, and its query.)

use worker::Request;

/// The raw query string: after the first `?`, before any `#`.
pub fn raw(req: &Request) -> String {
    let url = req.inner().url();
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query.split('#').next().unwrap_or_default().to_string()
}

/// The first value of `name`, decoded (`+` and `%XX` as browsers encode them).
pub fn param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(raw(req).as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
