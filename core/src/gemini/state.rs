//! `metadata.state`: the wire says `BATCH_STATE_*`, the SDKs and the docs say
//! `JOB_STATE_*`. Both parse to one enum; unknown values are kept, not rejected.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum BatchState {
    #[default]
    Unspecified,
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
    /// A value this client does not know, kept verbatim.
    Unknown(String),
}

impl BatchState {
    /// The wire spelling (`BATCH_STATE_*`).
    pub fn as_wire(&self) -> &str {
        match self {
            BatchState::Unspecified => "BATCH_STATE_UNSPECIFIED",
            BatchState::Pending => "BATCH_STATE_PENDING",
            BatchState::Running => "BATCH_STATE_RUNNING",
            BatchState::Succeeded => "BATCH_STATE_SUCCEEDED",
            BatchState::Failed => "BATCH_STATE_FAILED",
            BatchState::Cancelled => "BATCH_STATE_CANCELLED",
            BatchState::Expired => "BATCH_STATE_EXPIRED",
            BatchState::Unknown(s) => s,
        }
    }

    /// Parse either prefix, or the bare suffix (`SUCCEEDED`).
    pub fn parse(s: &str) -> BatchState {
        let suffix = s.strip_prefix("BATCH_STATE_").or_else(|| s.strip_prefix("JOB_STATE_")).unwrap_or(s);
        match suffix {
            "UNSPECIFIED" => BatchState::Unspecified,
            "PENDING" => BatchState::Pending,
            "RUNNING" => BatchState::Running,
            "SUCCEEDED" => BatchState::Succeeded,
            "FAILED" => BatchState::Failed,
            "CANCELLED" => BatchState::Cancelled,
            "EXPIRED" => BatchState::Expired,
            _ => BatchState::Unknown(s.to_string()),
        }
    }

    /// SUCCEEDED, FAILED, CANCELLED and EXPIRED end a batch.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            BatchState::Succeeded | BatchState::Failed | BatchState::Cancelled | BatchState::Expired
        )
    }

    /// PENDING or RUNNING: counts against the concurrency and enqueued-token quotas.
    pub fn is_active(&self) -> bool {
        matches!(self, BatchState::Pending | BatchState::Running)
    }
}

impl Serialize for BatchState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

impl<'de> Deserialize<'de> for BatchState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(BatchState::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_prefixes_parse_to_the_same_state() {
        for (a, b) in [
            ("BATCH_STATE_PENDING", "JOB_STATE_PENDING"),
            ("BATCH_STATE_SUCCEEDED", "JOB_STATE_SUCCEEDED"),
            ("BATCH_STATE_EXPIRED", "JOB_STATE_EXPIRED"),
        ] {
            assert_eq!(BatchState::parse(a), BatchState::parse(b));
            assert_eq!(BatchState::parse(a).as_wire(), a);
        }
    }

    #[test]
    fn unknown_states_pass_through_and_are_not_terminal() {
        let s = BatchState::parse("BATCH_STATE_FOOBAR");
        assert_eq!(s, BatchState::Unknown("BATCH_STATE_FOOBAR".into()));
        assert_eq!(s.as_wire(), "BATCH_STATE_FOOBAR");
        assert!(!s.is_terminal());
    }
}
