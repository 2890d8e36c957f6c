//! The log layer's error type.

use std::path::PathBuf;

use super::batch::BatchError;

/// Everything that can go wrong in a partition's log. `Io` and `Corrupt` are faults of the disk
/// or of this process (the owner should restart and recover); `OffsetOutOfRange` and `Batch`
/// answer a bad request.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file system call failed; `context` names the operation and the file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, to which file.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A read or truncation asked for an offset outside `[log_start, log_end]`.
    #[error("offset {offset} is out of range: the log holds [{log_start}, {log_end})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The first offset still in the log.
        log_start: i64,
        /// The next offset to be assigned.
        log_end: i64,
    },
    /// Bytes in a segment do not form valid batches where the log needs them to.
    #[error("segment {}: corrupt at byte {position}: {reason}", .segment.display())]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte position of the bad batch in the file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A batch handed to `append` is malformed.
    #[error("refused to append: {0}")]
    Batch(#[from] BatchError),
    /// A replicated batch does not start at the log end (the follower and leader disagree).
    #[error("replicated batch starts at offset {base_offset}, but the log ends at {log_end}")]
    NotContiguous {
        /// The batch's base offset.
        base_offset: i64,
        /// The log end offset it should have had.
        log_end: i64,
    },
    /// The log settings are unusable.
    #[error("invalid log config for {}: {}", .dir.display(), .problems.join("; "))]
    InvalidConfig {
        /// The partition directory being opened.
        dir: PathBuf,
        /// One line per problem, naming the key.
        problems: Vec<String>,
    },
}

/// Attaches context to `io::Error`s, as `LogError::Io`.
pub(crate) trait IoContext<T> {
    /// Wraps the error with the message `context` builds (only called on error).
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, LogError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, LogError> {
        self.map_err(|source| LogError::Io { context: context(), source })
    }
}
