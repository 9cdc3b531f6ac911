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
        Option::<StrOrNum>::deserialize(d)?.map(|v| v.into_u64()).transpose()
    }
}

fn parse<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    StrOrNum::deserialize(d)?.into_u64()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Num(u64),
    Str(String),
}

impl StrOrNum {
    fn into_u64<E: de::Error>(self) -> Result<u64, E> {
        match self {
            StrOrNum::Num(n) => Ok(n),
            StrOrNum::Str(s) => {
                s.trim().parse().map_err(|_| E::custom(format!("expected an int64, got {s:?}")))
            }
        }
    }
}

/// `skip_serializing_if` helper: proto3 omits zero-valued fields.
pub fn is_zero(v: &u64) -> bool {
    *v == 0
}
