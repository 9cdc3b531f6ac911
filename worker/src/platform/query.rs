//! A request's query parameters, decoded by `form_urlencoded` from the query
//! part of the URL. (`Request::url` parses the whole URL with the `url` crate,
//! whose host parsing and IDNA code were a twelfth of the worker's wasm;
//! nothing here reads more of a URL than its path, which `worker` gives
//! without it, and its query.)

use worker::Request;

/// The query string of a request, read from its URL once.
pub struct Query(String);

impl Query {
    pub fn of(req: &Request) -> Query {
        Query(query_part(&req.inner().url()).to_string())
    }

    /// The first value of `name`, decoded (`+` and `%XX` as browsers encode them).
    pub fn get(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.0.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// `scheme://host[:port]` the request was sent to (absolute URLs users are
/// given back, e.g. the Gemini drop-in's upload and download URLs).
pub fn origin(req: &Request) -> String {
    origin_of(&req.inner().url()).to_string()
}

fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// What follows the first `?` of a URL, up to any `#`.
fn query_part(url: &str) -> &str {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query.split_once('#').map_or(query, |(q, _)| q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_the_scheme_host_and_port() {
        for (url, origin) in [
            ("https://w.example/gemini/v1beta/files/x", "https://w.example"),
            ("http://127.0.0.1:8787/gemini?key=a/b", "http://127.0.0.1:8787"),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ] {
            assert_eq!(origin_of(url), origin, "{url}");
        }
    }

    #[test]
    fn the_query_is_between_the_first_question_mark_and_the_fragment() {
        for (url, query) in [
            ("https://w/v1/jobs", ""),
            ("https://w/v1/jobs?", ""),
            ("https://w/v1/jobs?limit=5&cursor=a%3Fb", "limit=5&cursor=a%3Fb"),
            ("https://w/x?a=1?b=2", "a=1?b=2"),
            ("https://w/x?a=1#frag?b", "a=1"),
        ] {
            assert_eq!(query_part(url), query, "{url}");
        }
        let q = Query(query_part("https://w/x?name=a+b%2Fc&name=second&empty=").to_string());
        assert_eq!(
            (q.get("name"), q.get("empty"), q.get("none")),
            (Some("a b/c".to_string()), Some(String::new()), None)
        );
    }
}
