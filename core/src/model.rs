//! Gemini model ids: the one place for their syntax and the `models/` prefix,
//! for when one id is a version of another (and so takes its price and limits),
//! and for how many output tokens each model may be asked for.

use std::fmt;

/// A model id as batchgate stores it: without `models/`, lowercase ASCII
/// letters, digits, `-` and `.`, at most 100 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelId(String);

/// `model` without the `models/` prefix Gemini's resource names carry (the one
/// place that knows the prefix).
pub fn bare(model: &str) -> &str {
    model.strip_prefix(PREFIX).unwrap_or(model)
}

const PREFIX: &str = "models/";

/// The resource name Gemini's URLs use for `model`: `models/{id}`.
pub fn resource(model: &str) -> String {
    format!("{PREFIX}{}", bare(model))
}

impl ModelId {
    /// `gemini-2.5-flash` or `models/gemini-2.5-flash`; anything else is refused
    /// with a message naming the id.
    pub fn parse(id: &str) -> Result<ModelId, String> {
        let m = bare(id);
        let ok = !m.is_empty()
            && m.len() <= 100
            && m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if ok { Ok(ModelId(m.to_string())) } else { Err(format!("model {id:?} is not a Gemini model id")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource name Gemini's URLs use: `models/{id}`.
    pub fn resource(&self) -> String {
        resource(&self.0)
    }

    /// Whether this id names `base` itself or a version of it.
    pub fn is_version_of(&self, base: &str) -> bool {
        is_version_of(&self.0, base)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `model` is `base` or a dated or numbered version of it
/// (`gemini-2.5-flash-001`, `gemini-2.5-flash-preview-09-2025`,
/// `gemini-2.5-flash-latest`). A longer name of another model is not a version:
/// `gemini-2.5-flash-image` and `gemini-2.5-flash-tts` produce other modalities
/// at other prices, so they never take `gemini-2.5-flash`'s.
pub fn is_version_of(model: &str, base: &str) -> bool {
    let (model, base) = (bare(model), bare(base));
    if model == base {
        return true;
    }
    let Some(rest) = model.strip_prefix(base).and_then(|r| r.strip_prefix('-')) else { return false };
    !rest.is_empty()
        && rest.split('-').all(|seg| {
            (!seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()))
                || matches!(seg, "preview" | "exp" | "latest")
        })
}

/// The most output tokens a request may ask for, per model (Gemini's model
/// cards); a versioned id takes its model's. A model not listed here gets
/// [`DEFAULT_OUTPUT_LIMIT`].
const OUTPUT_LIMITS: &[(&str, u64)] = &[
    ("gemini-3-pro-preview", 65_536),
    ("gemini-3-flash-preview", 65_536),
    ("gemini-2.5-pro", 65_536),
    ("gemini-2.5-flash", 65_536),
    ("gemini-2.5-flash-lite", 65_536),
    ("gemini-2.0-flash", 8_192),
    ("gemini-2.0-flash-lite", 8_192),
];

/// The output limit of a model batchgate has no card for (an operator's own
/// price-table entry): the 2.5 family's.
pub const DEFAULT_OUTPUT_LIMIT: u64 = 65_536;

/// The most `maxOutputTokens` a request to `model` may carry.
pub fn output_limit(model: &str) -> u64 {
    OUTPUT_LIMITS
        .iter()
        .filter(|(base, _)| is_version_of(model, base))
        .max_by_key(|(base, _)| base.len())
        .map_or(DEFAULT_OUTPUT_LIMIT, |(_, limit)| *limit)
}

/// Gemini answers at most this many candidates per request.
pub const MAX_CANDIDATES: u64 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_with_or_without_the_prefix_and_nothing_else() {
        assert_eq!(
            ModelId::parse("models/gemini-2.5-flash").map(|m| m.resource()),
            Ok("models/gemini-2.5-flash".into())
        );
        assert_eq!(ModelId::parse("gemini-2.5-flash").map(|m| m.to_string()), Ok("gemini-2.5-flash".into()));
        for bad in ["", "models/", "Gemini", "gemini 2.5", "gemini/x", "../x", &"a".repeat(101)] {
            let e = ModelId::parse(bad).unwrap_err();
            assert!(e.contains("is not a Gemini model id"), "{bad}: {e}");
        }
    }

    #[test]
    fn versions_are_numbers_dates_previews_and_latest() {
        for v in [
            "gemini-2.5-flash",
            "gemini-2.5-flash-001",
            "gemini-2.5-flash-preview-09-2025",
            "models/gemini-2.5-flash-latest",
            "gemini-2.5-flash-exp-0827",
        ] {
            assert!(is_version_of(v, "gemini-2.5-flash"), "{v}");
        }
        for other in [
            "gemini-2.5-flash-image",
            "gemini-2.5-flash-tts",
            "gemini-2.5-flash-image-preview",
            "gemini-2.5-flash-lite",
            "gemini-2.5-flashy",
            "gemini-2.5-flash-",
            "gemini-2.5-flash--1",
            "gemini-2.5",
        ] {
            assert!(!is_version_of(other, "gemini-2.5-flash"), "{other}");
        }
    }

    #[test]
    fn output_limits_follow_the_model_and_its_versions() {
        assert_eq!(output_limit("gemini-2.5-flash"), 65_536);
        assert_eq!(output_limit("gemini-2.0-flash-001"), 8_192);
        assert_eq!(output_limit("gemini-2.0-flash-lite-preview-02-05"), 8_192);
        assert_eq!(output_limit("my-own-model"), DEFAULT_OUTPUT_LIMIT);
    }
}
