//! The Gemini Batch API wire protocol (`v1beta`), field by field as
//! `shared/research/gemini-batch-protocol.md` describes it.
//!
//! Serialization emits exactly what the real server emits (camelCase, int64 as
//! strings, zero and default values omitted); deserialization is lenient the way
//! a robust client must be (both state prefixes, int64 as string or number,
//! unknown fields ignored).

pub mod client;
pub mod file;
pub mod int64;
pub mod operation;
pub mod request;
pub mod state;
pub mod status;
pub mod timestamp;
pub mod upload_answer;

pub use file::{File, FileSource, FileState, ListFilesResponse};
pub use operation::{
    BATCH_METADATA_TYPE, BATCH_OUTPUT_TYPE, BatchMetadata, BatchOutput, BatchStats, InlinedResponse,
    InlinedResponses, InputConfigEcho, ListOperationsResponse, Operation, OutputEnvelope,
};
pub use state::BatchState;
pub use status::{Code, ErrorEnvelope, Status};
