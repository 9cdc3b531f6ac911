//! proto3 JSON encodes int64 as a string on output; clients send either form.

use serde::{Deserialize, Deserializer, Serializer, de};

/// Serialize as a JSON string, accept a string or a number.
pub mod string {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        parse(d)
    }
}

/// The same for `Option<u64>`.
pub mod opt_string {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Option::<StrOrNum>::deserialize(d)?.map(|v| v.0))
    }
}

fn parse<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    StrOrNum::deserialize(d).map(|v| v.0)
}

/// An int64 given as a JSON number or a decimal string. A hand-written
/// visitor, not `#[serde(untagged)]`: that buffers every value into serde's
/// `Content` first, code the worker's and the SDK's wasm would carry for each use.
struct StrOrNum(u64);

impl<'de> Deserialize<'de> for StrOrNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StrOrNum, D::Error> {
        d.deserialize_any(Int64Visitor).map(StrOrNum)
    }
}

struct Int64Visitor;

impl de::Visitor<'_> for Int64Visitor {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an int64 as a number or a string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("expected a count, got {v}")))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        s.trim().parse().map_err(|_| E::custom(format!("expected an int64, got {s:?}")))
    }
}

/// `skip_serializing_if` helper: proto3 omits zero-valued fields.
pub fn is_zero(v: &u64) -> bool {
    *v == 0
}
