//! ApiVersions: the table of what this broker speaks.

use chronik::protocol::api_versions_response;
use kafka_protocol::messages::ResponseKind;

/// Handles one ApiVersions request at a version we support.
pub fn handle(version: i16) -> ResponseKind {
    ResponseKind::ApiVersions(api_versions_response(version))
}
