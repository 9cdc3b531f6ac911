//! The Files API `File` resource.

use super::int64;
use super::status::Status;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileState {
    #[default]
    StateUnspecified,
    Processing,
    Active,
    Failed,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileSource {
    #[default]
    SourceUnspecified,
    Uploaded,
    Generated,
    Registered,
}

/// Field order follows the real finalize response (CAP-2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mime_type: String,
    #[serde(default, with = "int64::string", skip_serializing_if = "int64::is_zero")]
    pub size_bytes: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub create_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub update_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expiration_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_uri: Option<String>,
    #[serde(default)]
    pub state: FileState,
    #[serde(default)]
    pub source: FileSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
}

/// `GET /v1beta/files` answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListFilesResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The longest id a client may choose for a file.
pub const MAX_CLIENT_ID_LEN: usize = 40;

/// `files/abc` → `abc`; also accepts a bare id. `None` for anything else.
pub fn file_id(name: &str) -> Option<&str> {
    let id = name.strip_prefix("files/").unwrap_or(name);
    valid_resource_id(id).then_some(id)
}

/// Ids are `[a-z0-9-]`, not starting or ending with `-`. Client-chosen ids are at
/// most [`MAX_CLIENT_ID_LEN`] chars, but generated ones are longer: a batch's
/// results file is `files/batch-{36-char batch id}`.
pub fn valid_resource_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn real_finalize_body_round_trips() {
        let real = json!({
            "name": "files/nst3vx34zemo",
            "displayName": "batch_file",
            "mimeType": "application/pdf",
            "sizeBytes": "334640",
            "createTime": "2026-01-06T08:17:49.426944Z",
            "updateTime": "2026-01-06T08:17:49.426944Z",
            "expirationTime": "2026-01-08T08:17:48.680029535Z",
            "sha256Hash": "OTIw",
            "uri": "https://generativelanguage.googleapis.com/v1beta/files/nst3vx34zemo",
            "state": "ACTIVE",
            "source": "UPLOADED"
        });
        let f: File = serde_json::from_value(real.clone()).unwrap();
        assert_eq!(f.size_bytes, 334_640);
        assert_eq!(f.state, FileState::Active);
        assert_eq!(serde_json::to_value(&f).unwrap(), real);
    }

    #[test]
    fn ids_follow_the_resource_rules() {
        assert_eq!(file_id("files/batch-abc123"), Some("batch-abc123"));
        assert_eq!(file_id("abc"), Some("abc"));
        assert_eq!(file_id("files/-abc"), None);
        assert_eq!(file_id("files/ABC"), None);
        assert_eq!(file_id("files/a/b"), None);
        let generated = format!("files/batch-{}", "a".repeat(36));
        assert!(file_id(&generated).is_some(), "results files have 42-char ids");
    }
}
