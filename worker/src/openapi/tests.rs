//! The served document is the generated one, and it describes exactly the
//! routes of the route table.

use serde_json::Value;
use std::collections::BTreeSet;

const SERVED: &str = include_str!("../../openapi.json");
const ROUTE_TABLE: &str = include_str!("../lib.rs");

#[test]
fn the_served_document_is_generated_from_the_types() {
    let generated = super::document();
    let text = format!("{}\n", serde_json::to_string_pretty(&generated).unwrap_or_default());
    if std::env::var_os("BATCHGATE_BLESS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let written = std::fs::write(path, &text);
        assert!(written.is_ok(), "{path}: {written:?}");
        return;
    }
    let served: Value = serde_json::from_str(SERVED).unwrap_or(Value::Null);
    assert!(
        served == generated,
        "worker/openapi.json is not what the types and routes.rs describe now: \
         run `BATCHGATE_BLESS=1 cargo test -p batchgate-worker openapi` and commit it"
    );
}

/// `(METHOD, /path/{}/…)` of every arm of `route` in lib.rs: string literals
/// are segments, bindings are parameters.
fn table_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for arm in ROUTE_TABLE.split("(Method::").skip(1) {
        let Some((method, rest)) = arm.split_once(", [") else { continue };
        let Some((segments, _)) = rest.split_once(']') else { continue };
        let path: String = segments
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| if s.starts_with('"') { s.trim_matches('"').to_string() } else { "{}".into() })
            .map(|s| format!("/{s}"))
            .collect();
        routes.insert((method.to_uppercase(), path));
    }
    routes
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let template: String = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| if s.starts_with('{') { "/{}".to_string() } else { format!("/{s}") })
            .collect();
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m.to_uppercase()) {
            routes.insert((method, template.clone()));
        }
    }
    routes
}

#[test]
fn every_route_of_the_table_is_described_and_no_other() {
    let table = table_routes();
    assert!(table.len() > 30, "the route table was not read: {table:?}");
    let described = document_routes(&super::document());
    let missing: Vec<_> = table.difference(&described).collect();
    let extra: Vec<_> = described.difference(&table).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    assert!(extra.is_empty(), "the document describes routes the worker does not have: {extra:?}");
}

#[test]
fn every_reference_names_a_component_of_the_document() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = super::document();
    let mut found = vec![];
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let component = r.strip_prefix("#/components/").and_then(|r| r.split_once('/'));
        assert!(
            component.is_some_and(|(kind, name)| doc["components"][kind].get(name).is_some()),
            "{r} names no component of the document"
        );
    }
}

#[test]
fn every_operation_has_a_unique_id_and_an_answer() {
    let doc = super::document();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(ids.insert(id.to_string()), "{id} is used twice");
            let answers =
                op["responses"].as_object().map(|r| r.keys().any(|k| k.starts_with('2') || k == "101"));
            assert_eq!(answers, Some(true), "{method} {path} has no success answer");
        }
    }
}
