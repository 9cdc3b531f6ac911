//! The Durable Objects, one folder each: the object, its SQLite store, its
//! protocol (requests and replies as types) and its typed client. Objects are
//! called only through their clients and never parse HTTP from users.

pub mod account;
pub mod input;
pub mod job;
pub mod quota;
pub mod rpc;
pub mod upload;
