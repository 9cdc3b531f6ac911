//! `cargo xtask tidy`: the invariants of ARCHITECTURE.md that a text search can
//! check, so a change that breaks the architecture fails `cargo xtask test`
//! with the rule it broke. Comments and `#[cfg(test)]` code (to the end of the
//! file, where tests live) are not checked.

use crate::run::root;
use std::path::{Path, PathBuf};

struct Rule {
    name: &'static str,
    /// Why it holds (printed with each offence).
    why: &'static str,
    /// The files it covers, by path from the workspace root.
    covers: fn(&str) -> bool,
    /// Whether a line of code breaks it (`file` is the path from the root).
    breaks: fn(file: &str, line: &str) -> bool,
}

const RULES: &[Rule] = &[
    Rule {
        name: "json-only-in-protocols",
        why: "internal calls are typed: no JSON built by hand outside an object's protocol.rs",
        covers: |f| in_worker(f) && !is_protocol(f) && !is_api_document(f),
        breaks: |_, l| l.contains("json!"),
    },
    Rule {
        name: "one-randomness",
        why: "randomness comes from platform/random.rs (Web Crypto) only",
        covers: |f| in_worker(f) || f.starts_with("core/src/"),
        breaks: |_, l| l.contains("Math::random") || l.contains("Math.random"),
    },
    Rule {
        name: "routes-in-their-tables",
        why: "a route is named in lib.rs (users') or an object's protocol.rs (internal), nowhere else",
        covers: |f| in_worker(f) && f != "worker/src/lib.rs" && !is_protocol(f) && !is_api_document(f),
        breaks: |_, l| route_literal(l),
    },
    Rule {
        name: "api-never-touches-sqlite",
        why: "api/ reaches storage through objects' clients",
        covers: |f| f.starts_with("worker/src/api/"),
        breaks: |_, l| ["SqlStorage", "sql_rows", ".exec(", ".sql()"].iter().any(|s| l.contains(s)),
    },
    Rule {
        name: "objects-never-parse-user-http",
        why: "objects get typed requests; reading users' queries, bodies and tokens is api/'s",
        covers: |f| f.starts_with("worker/src/objects/"),
        breaks: |_, l| {
            ["crate::api", "platform::query", "platform::body", "Query::"].iter().any(|s| l.contains(s))
        },
    },
    Rule {
        name: "platform-knows-no-route-or-object",
        why: "platform/ is the runtime's edge, below api/ and objects/ (no import circles)",
        covers: |f| f.starts_with("worker/src/platform/"),
        breaks: |_, l| l.contains("crate::api") || l.contains("crate::objects"),
    },
    Rule {
        name: "objects-through-their-clients",
        why: "an object is reached through its client and protocol, never its insides",
        covers: |f| f.starts_with("worker/src/api/") || f.starts_with("worker/src/objects/"),
        breaks: reaches_inside_an_object,
    },
    Rule {
        name: "settings-read-once",
        why: "Settings are read once: per request in lib.rs, per instance in an object's new()",
        covers: |f| in_worker(f) && f != "worker/src/lib.rs" && !is_object_root(f),
        breaks: |_, l| l.contains("Settings::from_env"),
    },
    Rule {
        name: "core-is-sans-io",
        why: "core holds the rules, free of I/O and of the worker crate",
        covers: |f| f.starts_with("core/src/"),
        breaks: |_, l| {
            [
                "worker::",
                "js_sys",
                "web_sys",
                "TcpStream",
                "TcpListener",
                "UdpSocket",
                "std::fs",
                "std::process",
                "tokio",
            ]
            .iter()
            .any(|s| l.contains(s))
        },
    },
    Rule {
        name: "one-models-prefix",
        why: "the `models/` prefix is core::model's (bare, resource)",
        covers: |f| {
            (f.starts_with("core/src/") || in_worker(f) || f.starts_with("sdk/src/"))
                && f != "core/src/model.rs"
        },
        breaks: |_, l| l.contains("\"models/"),
    },
];

fn in_worker(f: &str) -> bool {
    f.starts_with("worker/src/")
}

/// `worker/src/openapi/`: the OpenAPI document, built as JSON and naming every
/// route (compiled only for tests, which check it against lib.rs's route table).
fn is_api_document(f: &str) -> bool {
    f.starts_with("worker/src/openapi/")
}

fn is_protocol(f: &str) -> bool {
    f.starts_with("worker/src/objects/") && f.ends_with("/protocol.rs")
}

/// `worker/src/objects/<name>/mod.rs`: where an object is constructed.
fn is_object_root(f: &str) -> bool {
    f.strip_prefix("worker/src/objects/")
        .and_then(|r| r.strip_suffix("/mod.rs"))
        .is_some_and(|n| !n.contains('/'))
}

/// A string literal that starts with `/` and a name: `"/view"`, `"/v1/jobs"`.
fn route_literal(line: &str) -> bool {
    line.match_indices("\"/").any(|(i, _)| {
        line.get(i + 2..)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
    })
}

/// `crate::objects::<name>::<part>` where `<part>` is neither `client` nor
/// `protocol` and `<name>` is not the file's own object.
fn reaches_inside_an_object(file: &str, line: &str) -> bool {
    let own = file.strip_prefix("worker/src/objects/").and_then(|r| r.split('/').next());
    line.match_indices("crate::objects::").any(|(i, m)| {
        let rest = line.get(i + m.len()..).unwrap_or_default();
        let mut parts = rest.split("::");
        let name = parts.next().unwrap_or_default();
        let part: String = parts
            .next()
            .unwrap_or_default()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        name != "rpc"
            && Some(name.as_str()) != own
            && !part.is_empty()
            && part != "client"
            && part != "protocol"
    })
}

/// Every request in an object's route table is served by the object: a
/// client can never call a route the object does not know (its `internal_route`
/// 500 is a guard, not a path).
fn unserved_routes(root: &Path) -> Result<Vec<String>, String> {
    let objects = root.join("worker/src/objects");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&objects).map_err(|e| e.to_string())?.flatten() {
        let dir = entry.path();
        let Ok(protocol) = std::fs::read_to_string(dir.join("protocol.rs")) else { continue };
        let mut code = String::new();
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for f in files.iter().filter(|f| !f.ends_with("protocol.rs")) {
            code.push_str(&std::fs::read_to_string(f).map_err(|e| e.to_string())?);
        }
        for request in routed_requests(&protocol) {
            if !code.contains(&format!("{request}::ROUTE")) {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                found.push(format!(
                    "worker/src/objects/{name}: every-route-served ({request} is in the route table, \
                     and its object never serves `{request}::ROUTE`)"
                ));
            }
        }
    }
    Ok(found)
}

/// The request types of a protocol's `routes!` table.
fn routed_requests(protocol: &str) -> Vec<String> {
    let Some(table) = protocol.split("routes! {").nth(1) else { return vec![] };
    let table = table.split('}').next().unwrap_or_default();
    table
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .filter_map(|l| l.split_once(" =>").map(|(name, _)| name.trim().to_string()))
        .collect()
}

/// Unit tests in their own file (`foo/tests.rs`) are tests, not code.
fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The offences in one file's text.
fn offences(file: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        for rule in RULES.iter().filter(|r| (r.covers)(file) && (r.breaks)(file, line)) {
            found.push(format!("{file}:{}: {} ({})\n    {}", n + 1, rule.name, rule.why, line.trim()));
        }
    }
    found
}

pub fn tidy(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("unknown option {a}"));
    }
    let root = root();
    let mut files = Vec::new();
    for dir in ["worker/src", "core/src", "sdk/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut found = Vec::new();
    for path in files.iter().filter(|p| !is_test_file(p)) {
        let file = path.strip_prefix(&root).unwrap_or(path).to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
        found.extend(offences(&file, &text));
    }
    found.extend(unserved_routes(&root)?);
    let manifest = std::fs::read_to_string(root.join("core/Cargo.toml")).map_err(|e| e.to_string())?;
    if manifest.lines().any(|l| l.trim_start().starts_with("worker")) {
        found.push("core/Cargo.toml: core-is-sans-io (core does not depend on the worker crate)".into());
    }
    for f in &found {
        eprintln!("{f}");
    }
    eprintln!("tidy: {} files, {} rules, {} offences", files.len(), RULES.len() + 1, found.len());
    if found.is_empty() { Ok(()) } else { Err(format!("{} architecture rules broken", found.len())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(file: &str, line: &str) -> Vec<&'static str> {
        RULES.iter().filter(|r| (r.covers)(file) && (r.breaks)(file, line)).map(|r| r.name).collect()
    }

    #[test]
    fn each_rule_catches_what_it_names_and_spares_the_places_allowed() {
        let api = "worker/src/api/jobs/mod.rs";
        assert_eq!(broken(api, r#"let v = json!({"a": 1});"#), ["json-only-in-protocols"]);
        assert!(broken("worker/src/objects/job/protocol.rs", r#"json!({"a": 1})"#).is_empty());
        assert!(
            broken("worker/src/openapi/routes.rs", r#"doc.add("GET", "/v1/jobs", json!({}))"#).is_empty()
        );
        assert_eq!(broken(api, "let r = js_sys::Math::random();"), ["one-randomness"]);
        assert_eq!(broken(api, r#"call(stub, "/view")"#), ["routes-in-their-tables"]);
        assert!(broken("worker/src/lib.rs", r#"(Method::Get, ["v1"]) => "/v1/jobs""#).is_empty());
        assert!(broken(api, r#"format!("jobs/{id}/results.jsonl")"#).is_empty(), "an R2 key is no route");
        assert_eq!(broken(api, "sql.exec(\"DELETE\", None)?;"), ["api-never-touches-sqlite"]);
        assert_eq!(
            broken("worker/src/objects/job/mod.rs", "let q = Query::of(&req);"),
            ["objects-never-parse-user-http"]
        );
        assert_eq!(
            broken("worker/src/platform/body.rs", "use crate::objects::rpc;"),
            ["platform-knows-no-route-or-object"]
        );
        assert_eq!(broken(api, "use crate::objects::job::store::Store;"), ["objects-through-their-clients"]);
        assert!(broken(api, "use crate::objects::job::client::JobRef;").is_empty());
        assert!(broken("worker/src/objects/job/run.rs", "use crate::objects::job::store::Store;").is_empty());
        assert!(
            broken("worker/src/objects/job/mod.rs", "use crate::objects::account::client as accounts;")
                .is_empty()
        );
        assert_eq!(broken(api, "let s = Settings::from_env(env);"), ["settings-read-once"]);
        assert!(broken("worker/src/objects/job/mod.rs", "let s = Settings::from_env(&env);").is_empty());
        assert_eq!(broken("core/src/job.rs", "use worker::Env;"), ["core-is-sans-io"]);
        assert_eq!(broken("sdk/src/quote.rs", r#"m.strip_prefix("models/")"#), ["one-models-prefix"]);
        assert!(broken("core/src/model.rs", r#"const PREFIX: &str = "models/";"#).is_empty());
    }

    #[test]
    fn a_route_table_lists_its_requests() {
        let protocol = "struct A;\nroutes! {\n    // a comment\n    A => \"/a\", ();\n    Bee => \"/b\", Vec<(u64, String)>;\n}\n";
        assert_eq!(routed_requests(protocol), ["A", "Bee"]);
        assert!(routed_requests("no table").is_empty());
    }

    #[test]
    fn comments_and_tests_are_not_code() {
        let text =
            "// json!({}) in a comment\nfn a() {}\n#[cfg(test)]\nmod tests { fn b() { json!({}); } }\n";
        assert!(offences("worker/src/api/x.rs", text).is_empty());
        assert_eq!(offences("worker/src/api/x.rs", "fn a() { json!({}) }\n").len(), 1);
    }
}
