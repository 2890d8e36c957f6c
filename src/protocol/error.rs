//! The protocol layer's error type.

use kafka_protocol::messages::ApiKey;

/// Why a frame could not be read or a response could not be written.
///
/// Every variant that happens after the first 8 bytes were read carries the correlation id, so
/// the connection can log which request failed (or answer it, where Kafka expects an answer).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The 4-byte size prefix claims a length that is not positive or exceeds the limit.
    #[error("request size prefix claims {claimed} bytes; allowed is 1..={max}")]
    FrameSize {
        /// The size the client claimed.
        claimed: i32,
        /// The configured maximum request size.
        max: usize,
    },

    /// The frame is too short to hold the api key, api version and correlation id.
    #[error("request frame of {len} bytes is shorter than the 8 bytes of key, version and correlation id")]
    Truncated {
        /// How many bytes the frame had.
        len: usize,
    },

    /// The api key is unknown to Kafka or not one this broker advertises.
    #[error("api key {key} (version {version}, correlation id {correlation_id}) is not supported by this broker")]
    UnsupportedApi {
        /// The raw api key from the request.
        key: i16,
        /// The raw api version from the request.
        version: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },

    /// A known api at a version outside the range this broker advertises.
    #[error(
        "{api:?} version {version} (correlation id {correlation_id}) is outside the advertised range {min}..={max}"
    )]
    UnsupportedVersion {
        /// The api that was requested.
        api: ApiKey,
        /// The version the client sent.
        version: i16,
        /// The lowest version we advertise for this api.
        min: i16,
        /// The highest version we advertise for this api.
        max: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },

    /// The request header or body did not decode at the version the client announced.
    #[error("malformed {api:?} v{version} request (correlation id {correlation_id}): {reason}")]
    Malformed {
        /// The api of the request.
        api: ApiKey,
        /// The version the client announced.
        version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// The decoder's explanation, with its whole cause chain.
        reason: String,
    },

    /// A response could not be encoded: a field set that the version lacks, an over-long value,
    /// or a body of the wrong api. A bug on our side, never the client's.
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode {
        /// The api of the response.
        api: ApiKey,
        /// The version it was to be encoded at.
        version: i16,
        /// What went wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The correlation id of the failed request, when enough of it was read to know one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            Self::FrameSize { .. } | Self::Truncated { .. } | Self::Encode { .. } => None,
            Self::UnsupportedApi { correlation_id, .. }
            | Self::UnsupportedVersion { correlation_id, .. }
            | Self::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}
