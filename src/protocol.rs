//! Glue around the `kafka-protocol` crate: the pieces a connection needs between the socket and
//! the request handlers.
//!
//! # Layout
//! - [`versions`]: the table of APIs and version ranges this broker advertises, and the
//!   ApiVersions answers built from it.
//! - [`frame`]: the size prefix limit, parsing a request frame (header + body) and encoding a
//!   response frame (size prefix + header + body).
//! - [`list_offsets_v0`]: ListOffsets v0, which the crate does not decode.
//! - [`ProtocolError`]: everything that can go wrong in this layer, each with its context.
//!
//! The connection reads 4 bytes, calls [`frame::frame_len`], reads that many bytes, calls
//! [`frame::parse_request`], hands the body to a handler, and writes what
//! [`frame::encode_response`] returns.

mod error;
pub mod frame;
pub mod list_offsets_v0;
pub mod versions;

#[cfg(test)]
mod frame_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod sample_requests;
#[cfg(test)]
mod sample_responses;

pub use error::ProtocolError;
pub use frame::{Parsed, ParsedRequest, encode_response, frame_len, parse_request};
pub use versions::{ADVERTISED_APIS, api_versions_response, api_versions_unsupported, supported_range};
