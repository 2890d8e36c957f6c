//! Frame limits and hostile or broken input: every case must be an error, never a panic.
//!
//! No test here decodes a frame whose array count is huge: kafka-protocol pre-allocates by the
//! claimed count, which could abort the test process (guarded at the allocator in the binary).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind, ResponseKind};

use super::ProtocolError;
use super::frame::{Parsed, encode_response, frame_len, parse_request};
use super::sample_requests::{client_frame, sample_request};
use super::sample_responses::{decode_response_frame, sample_response};
use super::versions::{ADVERTISED_APIS, api_versions_response, api_versions_unsupported};

const MAX: usize = 100 * 1024 * 1024;

/// A frame holding just the fixed 8-byte prefix plus `rest`.
fn raw_frame(key: i16, version: i16, correlation_id: i32, rest: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(key);
    buf.put_i16(version);
    buf.put_i32(correlation_id);
    buf.put_slice(rest);
    buf.freeze()
}

#[test]
fn frame_len_rejects_non_positive_and_oversized() {
    for claimed in [-1, 0, i32::MIN] {
        let err = frame_len(claimed.to_be_bytes(), MAX).unwrap_err();
        assert_eq!(err, ProtocolError::FrameSize { claimed, max: MAX });
    }
    let over = i32::try_from(MAX + 1).expect("fits");
    assert!(matches!(frame_len(over.to_be_bytes(), MAX), Err(ProtocolError::FrameSize { .. })));
    assert_eq!(frame_len(1i32.to_be_bytes(), MAX), Ok(1));
    let max = i32::try_from(MAX).expect("fits");
    assert_eq!(frame_len(max.to_be_bytes(), MAX), Ok(MAX));
}

#[test]
fn fewer_than_eight_bytes_is_truncated() {
    let frame = raw_frame(3, 12, 1, &[]);
    for len in 0..8 {
        assert_eq!(parse_request(frame.slice(..len)), Err(ProtocolError::Truncated { len }));
    }
}

#[test]
fn header_cut_mid_client_id_is_malformed() {
    let body = sample_request(ApiKey::Metadata, 4);
    let frame = client_frame(ApiKey::Metadata, 4, 9, Some("a-client-id"), &body);
    // 8 fixed bytes, 2 bytes of string length, then 3 of the 11 client id bytes.
    let err = parse_request(frame.slice(..13)).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Malformed { api: ApiKey::Metadata, version: 4, correlation_id: 9, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("header"), "{err}");
}

#[test]
fn body_cut_is_malformed() {
    let body = sample_request(ApiKey::Produce, 9);
    let frame = client_frame(ApiKey::Produce, 9, 5, Some("p"), &body);
    let err = parse_request(frame.slice(..frame.len() - 10)).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed { api: ApiKey::Produce, version: 9, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("body") && message.contains("correlation id 5"), "{message}");
    assert!(!message.ends_with('\n'), "{message:?}");
}

#[test]
fn unknown_and_unserved_api_keys_are_unsupported() {
    let err = parse_request(raw_frame(9999, 0, 77, &[0; 16])).unwrap_err();
    assert_eq!(err, ProtocolError::UnsupportedApi { key: 9999, version: 0, correlation_id: 77 });
    assert_eq!(err.correlation_id(), Some(77));
    // WriteTxnMarkers exists in Kafka but is not in our table: brokers send markers over the
    // wal port.
    let err = parse_request(raw_frame(ApiKey::WriteTxnMarkers as i16, 1, 78, &[0; 16])).unwrap_err();
    assert!(matches!(err, ProtocolError::UnsupportedApi { key: 27, .. }), "{err:?}");
}

#[test]
fn versions_outside_the_table_are_unsupported() {
    for (api, version) in [(ApiKey::Produce, 2), (ApiKey::Produce, 12), (ApiKey::Fetch, 18), (ApiKey::ApiVersions, -1)]
    {
        let err = parse_request(raw_frame(api as i16, version, 3, &[0; 16])).unwrap_err();
        assert!(
            matches!(err, ProtocolError::UnsupportedVersion { api: a, version: v, correlation_id: 3, .. } if a == api && v == version),
            "{api:?} v{version}: {err:?}"
        );
    }
}

#[test]
fn http_request_is_rejected_without_panicking() {
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // The first 4 bytes read as a size prefix claim ~1.1 GiB.
    let prefix = [http[0], http[1], http[2], http[3]];
    assert!(matches!(frame_len(prefix, MAX), Err(ProtocolError::FrameSize { .. })));
    // As frame contents after a valid prefix: "GE" is api key 18245.
    let err = parse_request(Bytes::from_static(http)).unwrap_err();
    assert!(matches!(err, ProtocolError::UnsupportedApi { key: 0x4745, .. }), "{err:?}");
}

#[test]
fn api_versions_above_v4_gets_the_too_new_marker() {
    let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
    let frame = client_frame(ApiKey::ApiVersions, 4, 42, Some("kafka-python"), &body);
    assert!(matches!(parse_request(frame), Ok(Parsed::Request(_))));
    let mut frame = BytesMut::from(&client_frame(ApiKey::ApiVersions, 4, 42, Some("kafka-python"), &body)[..]);
    frame[2..4].copy_from_slice(&5i16.to_be_bytes());
    assert_eq!(parse_request(frame.freeze()), Ok(Parsed::ApiVersionsTooNew { correlation_id: 42, api_version: 5 }));
    // A future layout we cannot decode must not matter: the body is never read.
    let garbage = raw_frame(ApiKey::ApiVersions as i16, 9, 43, &[0xff; 3]);
    assert_eq!(parse_request(garbage), Ok(Parsed::ApiVersionsTooNew { correlation_id: 43, api_version: 9 }));
}

#[test]
fn unsupported_answer_in_v0_layout_decodes_with_error_35() {
    let body = ResponseKind::ApiVersions(api_versions_unsupported());
    let frame = encode_response(ApiKey::ApiVersions, 0, 42, &body).expect("encode");
    let (correlation_id, decoded) = decode_response_frame(ApiKey::ApiVersions, 0, frame);
    assert_eq!(correlation_id, 42);
    let ResponseKind::ApiVersions(decoded) = decoded else { panic!("not ApiVersions") };
    assert_eq!(decoded.error_code, 35);
    assert_eq!(decoded.api_keys.len(), ADVERTISED_APIS.len());
}

#[test]
fn api_versions_v3_answer_has_no_tagged_fields_and_header_v0() {
    let body = ResponseKind::ApiVersions(api_versions_response(3));
    let mut frame = encode_response(ApiKey::ApiVersions, 3, 1, &body).expect("encode");
    let size = frame.get_i32();
    assert_eq!(frame.get_i32(), 1, "header v0 is just the correlation id");
    // error(2) + compact array length(1) + rows * (key, min, max, empty tags = 7) + throttle(4)
    // + empty top-level tags(1): any written tagged field would add bytes.
    let rows = ADVERTISED_APIS.len();
    assert_eq!(usize::try_from(size).ok(), Some(4 + 2 + 1 + rows * 7 + 4 + 1));
    assert_eq!(frame.last(), Some(&0));
}

#[test]
fn long_client_id_parses() {
    let client_id = "c".repeat(270);
    for version in [4, 12] {
        let body = sample_request(ApiKey::Metadata, version);
        let frame = client_frame(ApiKey::Metadata, version, 1, Some(&client_id), &body);
        let Ok(Parsed::Request(parsed)) = parse_request(frame) else { panic!("v{version} did not parse") };
        assert_eq!(parsed.client_id.as_deref(), Some(client_id.as_str()), "v{version}");
    }
}

#[test]
fn null_client_id_is_none() {
    let body = sample_request(ApiKey::ApiVersions, 3);
    let frame = client_frame(ApiKey::ApiVersions, 3, 1, None, &body);
    let Ok(Parsed::Request(parsed)) = parse_request(frame) else { panic!("did not parse") };
    assert_eq!(parsed.client_id, None);
}

#[test]
fn response_body_of_another_api_is_an_encode_error() {
    let body = sample_response(ApiKey::Metadata, 12);
    let err = encode_response(ApiKey::Produce, 9, 1, &body).unwrap_err();
    assert!(matches!(err, ProtocolError::Encode { api: ApiKey::Produce, version: 9, .. }), "{err:?}");
    assert!(err.to_string().contains("Metadata"), "{err}");
}

#[test]
fn every_advertised_response_is_checked_against_its_api() {
    // Only kinds listed in frame.rs's `sized_response` are checked (and pre-sized).
    for (api, range) in ADVERTISED_APIS {
        let other = if *api == ApiKey::Metadata { ApiKey::Produce } else { ApiKey::Metadata };
        let body = sample_response(*api, range.max);
        let result = encode_response(other, range.max, 1, &body);
        assert!(matches!(result, Err(ProtocolError::Encode { .. })), "{api:?} body sent as {other:?}: {result:?}");
    }
}

#[test]
fn response_version_the_crate_lacks_is_an_encode_error() {
    let body = sample_response(ApiKey::Metadata, 12);
    let err = encode_response(ApiKey::Metadata, 99, 1, &body).unwrap_err();
    assert!(matches!(err, ProtocolError::Encode { api: ApiKey::Metadata, version: 99, .. }), "{err:?}");
}

#[test]
fn list_offsets_v0_parses_with_its_own_codec() {
    let mut body = BytesMut::new();
    body.put_i16(-1); // null client id (header v1)
    body.put_i32(-1); // replica id
    body.put_i32(1);
    body.put_i16(6);
    body.put_slice(b"orders");
    body.put_i32(1);
    body.put_i32(2);
    body.put_i64(-2);
    body.put_i32(1);
    let frame = raw_frame(ApiKey::ListOffsets as i16, 0, 77, &body);
    let Ok(Parsed::ListOffsetsV0 { correlation_id, request }) = parse_request(frame.clone()) else {
        panic!("v0 did not parse")
    };
    assert_eq!(correlation_id, 77);
    assert_eq!(request.topics[0].name, "orders");
    assert_eq!(request.topics[0].partitions[0].timestamp, -2);
    let truncated = frame.slice(..frame.len() - 3);
    assert!(matches!(parse_request(truncated), Err(ProtocolError::Malformed { correlation_id: 77, .. })));
}
