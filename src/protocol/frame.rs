//! Request and response frames: the size prefix, request parsing, response encoding.
//!
//! A Kafka frame is a big-endian i32 size followed by that many bytes: a header (whose version
//! depends on the api and api version) and a body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, VersionRange};

use super::ProtocolError;
use super::versions::supported_range;

/// Bytes of api key (i16) + api version (i16) + correlation id (i32) that start every request.
const FIXED_HEADER_LEN: usize = 8;

/// The length announced by a request's 4-byte size prefix, checked against `max_request_bytes`.
///
/// Rejecting ≤ 0 and > max here means the caller never allocates by a claimed length beyond
/// the limit.
pub fn frame_len(prefix: [u8; 4], max_request_bytes: usize) -> Result<usize, ProtocolError> {
    let claimed = i32::from_be_bytes(prefix);
    match usize::try_from(claimed) {
        Ok(len) if len > 0 && len <= max_request_bytes => Ok(len),
        _ => Err(ProtocolError::FrameSize { claimed, max: max_request_bytes }),
    }
}

/// A decoded request this broker serves, at a version it advertises.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// Which api the body belongs to.
    pub api_key: ApiKey,
    /// The version the body was decoded at; the response must be encoded at the same version.
    pub api_version: i16,
    /// Echoed in the response header so the client can match it to its request.
    pub correlation_id: i32,
    /// The client's self-chosen name, if it sent one (logging and quotas only).
    pub client_id: Option<String>,
    /// The decoded body.
    pub body: RequestKind,
}

/// What [`parse_request`] found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A request to hand to its handler. Boxed: a decoded body is hundreds of bytes, the
    /// other variant eight.
    Request(Box<ParsedRequest>),
    /// An ApiVersions request above our highest version. The body was not decoded (its layout
    /// may be newer than we know); answer with
    /// [`api_versions_unsupported`](super::versions::api_versions_unsupported) encoded at
    /// version 0 with this correlation id.
    ApiVersionsTooNew {
        /// Echoed in the v0 answer.
        correlation_id: i32,
        /// The version the client tried, for logging.
        api_version: i16,
    },
    /// A ListOffsets v0 request, decoded by [`list_offsets_v0`](super::list_offsets_v0): the
    /// crate knows no v0. Answer with [`list_offsets_v0::encode_response`](super::list_offsets_v0::encode_response).
    ListOffsetsV0 {
        /// Echoed in the answer.
        correlation_id: i32,
        /// The decoded body.
        request: super::list_offsets_v0::ListOffsetsV0,
    },
}

/// The fixed 8 bytes that start every request header, whatever its version.
struct RequestPrefix {
    key: i16,
    version: i16,
    correlation_id: i32,
}

/// Reads key, version and correlation id without consuming them (the header decoder reads
/// them again).
fn peek_prefix(frame: &[u8]) -> Result<RequestPrefix, ProtocolError> {
    let Some(fixed) = frame.first_chunk::<FIXED_HEADER_LEN>() else {
        return Err(ProtocolError::Truncated { len: frame.len() });
    };
    Ok(RequestPrefix {
        key: i16::from_be_bytes([fixed[0], fixed[1]]),
        version: i16::from_be_bytes([fixed[2], fixed[3]]),
        correlation_id: i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
    })
}

/// The answer to a served api at a version we do not advertise: the too-new marker for
/// ApiVersions above our max (Kafka answers those), an error for everything else.
fn out_of_range(api: ApiKey, prefix: &RequestPrefix, range: VersionRange) -> Result<Parsed, ProtocolError> {
    let (version, correlation_id) = (prefix.version, prefix.correlation_id);
    if api == ApiKey::ApiVersions && version > range.max {
        return Ok(Parsed::ApiVersionsTooNew { correlation_id, api_version: version });
    }
    Err(ProtocolError::UnsupportedVersion { api, version, min: range.min, max: range.max, correlation_id })
}

/// Parses one request frame: the bytes after the size prefix.
///
/// Unknown or unserved api keys and versions outside the advertised range are errors, except
/// an ApiVersions request that is too new: Kafka answers that one (see
/// [`Parsed::ApiVersionsTooNew`]). Bytes after the body are ignored, as Kafka does.
pub fn parse_request(mut frame: Bytes) -> Result<Parsed, ProtocolError> {
    let prefix = peek_prefix(&frame)?;
    let unsupported_api = || ProtocolError::UnsupportedApi {
        key: prefix.key,
        version: prefix.version,
        correlation_id: prefix.correlation_id,
    };
    let api = ApiKey::try_from(prefix.key).map_err(|()| unsupported_api())?;
    let range = supported_range(api).ok_or_else(unsupported_api)?;
    let (version, correlation_id) = (prefix.version, prefix.correlation_id);
    if !(range.min..=range.max).contains(&version) {
        return out_of_range(api, &prefix, range);
    }
    let malformed = |part: &str, e: &dyn std::fmt::Display| ProtocolError::Malformed {
        api,
        version,
        correlation_id,
        // NotEnoughBytesError's message ends in a newline; keep log lines whole.
        reason: format!("{part}: {e:#}").trim_end().to_owned(),
    };
    let header =
        RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| malformed("header", &e))?;
    if api == ApiKey::ListOffsets && version == 0 {
        let request = super::list_offsets_v0::decode(frame).map_err(|e| malformed("body", &e))?;
        return Ok(Parsed::ListOffsetsV0 { correlation_id, request });
    }
    let body = RequestKind::decode(api, &mut frame, version).map_err(|e| malformed("body", &e))?;
    Ok(Parsed::Request(Box::new(ParsedRequest {
        api_key: api,
        api_version: version,
        correlation_id,
        client_id: header.client_id.map(|id| id.to_string()),
        body,
    })))
}

/// The encoded size of `body` at `version`, and the api it belongs to, for the responses this
/// broker sends. `None` for any other kind: it is still encoded, only without pre-sizing.
macro_rules! response_size {
    ($body:expr, $version:expr; $($kind:ident),+ $(,)?) => {
        match $body {
            $(ResponseKind::$kind(m) => {
                Some((ApiKey::$kind, m.compute_size($version).map_err(|e| format!("{e:#}"))))
            })+
            _ => None,
        }
    };
}

/// See [`response_size!`]; every advertised API belongs here (a frame test checks that).
fn sized_response(body: &ResponseKind, version: i16) -> Option<(ApiKey, Result<usize, String>)> {
    response_size!(body, version;
        Produce, Fetch, ListOffsets, Metadata, ApiVersions, CreateTopics, DeleteTopics,
        CreatePartitions, DescribeConfigs, InitProducerId, OffsetForLeaderEpoch,
        FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
        DescribeGroups, ListGroups, DeleteGroups, AlterConfigs, IncrementalAlterConfigs, DescribeCluster,
        DeleteRecords, DescribeLogDirs,
        OffsetDelete, DescribeProducers, ElectLeaders, ListPartitionReassignments, AlterPartitionReassignments,
        SaslHandshake, SaslAuthenticate, DescribeUserScramCredentials, AlterUserScramCredentials,
        DescribeAcls, CreateAcls, DeleteAcls, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, DescribeTransactions,
        ListTransactions,
    )
}

/// The encoded size of `body` (0 when unknown: the buffer then grows as needed), or why it
/// cannot be encoded as an `api_key` response.
fn body_len(api_key: ApiKey, body: &ResponseKind, version: i16) -> Result<usize, String> {
    match sized_response(body, version) {
        Some((kind, _)) if kind != api_key => Err(format!("body is a {kind:?} response")),
        Some((_, size)) => size,
        None => Ok(0),
    }
}

/// Encodes a whole response frame: 4-byte size prefix, response header, body at `api_version`.
///
/// The header version comes from `api_key` (ApiVersions answers always use header v0). The
/// buffer is sized up front from `compute_size`, so a large fetch response is written once
/// without re-allocation.
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, ProtocolError> {
    let encode_err = |reason: String| ProtocolError::Encode { api: api_key, version: api_version, reason };
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_len =
        header.compute_size(header_version).map_err(|e| encode_err(format!("header v{header_version}: {e:#}")))?;
    let body_len = body_len(api_key, body, api_version).map_err(encode_err)?;
    let mut buf = BytesMut::with_capacity(4 + header_len + body_len);
    // Placeholder: the real size is patched in below from what was actually written.
    buf.put_i32(0);
    header.encode(&mut buf, header_version).map_err(|e| encode_err(format!("header v{header_version}: {e:#}")))?;
    body.encode(&mut buf, api_version).map_err(|e| encode_err(format!("{e:#}")))?;
    let written = buf.len() - 4;
    let len = i32::try_from(written).map_err(|_| encode_err(format!("{written} bytes exceed the i32 size prefix")))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}
