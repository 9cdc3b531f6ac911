//! The Gemini API keys a deployment runs on (`GEMINI_API_KEYS`, or the one
//! `GEMINI_API_KEY`). Each key is known everywhere else by its id, a short
//! hash: jobs store it to poll a batch with the key that made it, the quota
//! counts per id, the operator sees ids. The key itself stays here and in the
//! one header the worker sends to Gemini.

use sha2::{Digest, Sha256};

/// A key and its id.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub id: String,
    secret: String,
}

impl Key {
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// Never the key itself, even in a debug print.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// The keys, in the operator's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<Key>,
}

/// `key-` and the first 8 hex digits of the key's SHA-256: stable across
/// reorderings of the list, and no help in guessing the key.
pub fn key_id(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("key-{hex}")
}

impl KeyRing {
    /// From `GEMINI_API_KEYS` (comma-separated) if set, else `GEMINI_API_KEY`.
    /// Blank items and repeats are dropped.
    pub fn parse(list: Option<&str>, single: Option<&str>) -> KeyRing {
        let text = list.filter(|l| !l.trim().is_empty()).or(single).unwrap_or_default();
        let mut keys: Vec<Key> = vec![];
        for secret in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let id = key_id(secret);
            if keys.iter().all(|k| k.id != id) {
                keys.push(Key { id, secret: secret.to_string() });
            }
        }
        KeyRing { keys }
    }

    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this id; `None` asks for the first (a batch made before
    /// keys were tracked was made with the deployment's only key, which an
    /// operator adding keys lists first).
    pub fn get(&self, id: Option<&str>) -> Option<&Key> {
        match id {
            None => self.keys.first(),
            Some(id) => self.keys.iter().find(|k| k.id == id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_wins_over_the_single_key_and_repeats_count_once() {
        let ring = KeyRing::parse(Some(" a, b ,,a "), Some("c"));
        assert_eq!(ring.ids(), vec![key_id("a"), key_id("b")]);
        assert_eq!(KeyRing::parse(Some(" "), Some("c")).ids(), vec![key_id("c")]);
        assert!(KeyRing::parse(None, None).is_empty());
    }

    #[test]
    fn a_key_is_found_by_its_id_and_never_printed() {
        let ring = KeyRing::parse(Some("secret-one,secret-two"), None);
        let two = key_id("secret-two");
        assert_eq!(ring.get(Some(&two)).map(Key::secret), Some("secret-two"));
        assert_eq!(ring.get(None).map(Key::secret), Some("secret-one"));
        assert_eq!(ring.get(Some("key-00000000")), None);
        assert!(!format!("{ring:?}").contains("secret"));
        assert!(two.starts_with("key-") && two.len() == 12);
        assert_ne!(key_id("secret-one"), two);
    }
}
