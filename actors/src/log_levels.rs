//! Log levels changed at run time, Kafka's BROKER_LOGGER configs: a logger is a `tracing`
//! target (`chronik_actors::replica`, `openraft`, …) or `root`, its value a log4j level name.
//! As in Kafka, they hold for this process only; a restart starts again from `RUST_LOG`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

/// The logger Kafka calls the default for every other.
pub const ROOT: &str = "root";

/// Swaps the process's filter (a `tracing_subscriber::reload::Handle` behind a closure, so this
/// module does not name the subscriber's type).
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The process's log levels: the directives it started with and the loggers changed since.
pub struct LogLevels {
    /// `RUST_LOG` (or the built-in default) as started, e.g. `info,openraft=warn`.
    base: String,
    /// Loggers set at run time, target → level directive (`debug`, `off`, …).
    changed: Mutex<BTreeMap<String, String>>,
    /// Installs a new filter.
    reload: Reload,
}

static LEVELS: OnceLock<LogLevels> = OnceLock::new();

/// Called once by the binary after installing its subscriber; without it (tests, embedding)
/// the loggers cannot be changed.
pub fn install(base: String, reload: Reload) {
    let _ = LEVELS.set(LogLevels { base, changed: Mutex::new(BTreeMap::new()), reload });
}

/// The process's levels, if the binary installed them.
pub fn levels() -> Option<&'static LogLevels> {
    LEVELS.get()
}

/// Why a logger change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    /// Not a log4j level name Kafka accepts.
    #[error(
        "invalid log level {level:?} for logger {logger:?}: expected TRACE, DEBUG, INFO, WARN, ERROR, FATAL or OFF"
    )]
    Level {
        /// The logger.
        logger: String,
        /// The value given.
        level: String,
    },
    /// Not something `tracing` can filter on.
    #[error("invalid logger name {0:?}")]
    Name(String),
    /// The filter could not be swapped.
    #[error("cannot apply the log levels: {0}")]
    Reload(String),
}

/// The `tracing` directive for a log4j level name (FATAL has no own level: ERROR).
fn directive_level(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// A target `tracing` accepts in a directive: a Rust path, no spaces or directive syntax.
fn valid_logger(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
}

/// Splits directives into the bare default level and `target → level`.
fn parse(directives: &str) -> (Option<String>, BTreeMap<String, String>) {
    let mut root = None;
    let mut targets = BTreeMap::new();
    for part in directives.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((target, level)) => {
                targets.insert(target.to_string(), level.to_string());
            }
            None => root = Some(part.to_string()),
        }
    }
    (root, targets)
}

impl LogLevels {
    /// Every logger with a level of its own, `root` first, as `(logger, LEVEL)`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let (root, targets) = self.effective();
        let upper = |l: &str| l.to_ascii_uppercase();
        let mut out = vec![(ROOT.to_string(), upper(root.as_deref().unwrap_or("error")))];
        out.extend(targets.into_iter().map(|(t, l)| (t, upper(&l))));
        out
    }

    /// Applies SETs (`Some(level)`) and DELETEs (`None`, back to the started level) together:
    /// all or none. With `validate_only`, only checks them.
    pub fn apply(&self, changes: &[(String, Option<String>)], validate_only: bool) -> Result<(), LoggerError> {
        let mut changed = self.changed.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = changed.clone();
        for (logger, level) in changes {
            if !valid_logger(logger) {
                return Err(LoggerError::Name(logger.clone()));
            }
            match level {
                Some(level) => {
                    let directive = directive_level(level)
                        .ok_or_else(|| LoggerError::Level { logger: logger.clone(), level: level.clone() })?;
                    next.insert(logger.clone(), directive.to_string());
                }
                None => {
                    next.remove(logger);
                }
            }
        }
        let filter = EnvFilter::try_new(self.directives(&next)).map_err(|e| LoggerError::Reload(e.to_string()))?;
        if validate_only {
            return Ok(());
        }
        (self.reload)(filter).map_err(LoggerError::Reload)?;
        *changed = next;
        Ok(())
    }

    fn effective(&self) -> (Option<String>, BTreeMap<String, String>) {
        let changed = self.changed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.merged(&changed)
    }

    /// The base directives with `changed` over them: the root level and each target once, so
    /// which one wins never depends on the order `tracing` reads them in.
    fn merged(&self, changed: &BTreeMap<String, String>) -> (Option<String>, BTreeMap<String, String>) {
        let (mut root, mut targets) = parse(&self.base);
        for (logger, level) in changed {
            if logger == ROOT {
                root = Some(level.clone());
            } else {
                targets.insert(logger.clone(), level.clone());
            }
        }
        (root, targets)
    }

    fn directives(&self, changed: &BTreeMap<String, String>) -> String {
        let (root, targets) = self.merged(changed);
        root.into_iter().chain(targets.into_iter().map(|(t, l)| format!("{t}={l}"))).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn levels(base: &str) -> (LogLevels, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let reload: Reload = Box::new(move |f: EnvFilter| {
            record.lock().unwrap().push(f.to_string());
            Ok(())
        });
        (LogLevels { base: base.into(), changed: Mutex::new(BTreeMap::new()), reload }, seen)
    }

    #[test]
    fn set_and_delete_rebuild_the_filter_with_each_target_once() {
        let (l, seen) = levels("info,openraft=warn");
        assert_eq!(l.describe(), [("root".into(), "INFO".into()), ("openraft".into(), "WARN".into())]);
        l.apply(
            &[("openraft".into(), Some("debug".into())), ("chronik_actors::replica".into(), Some("TRACE".into()))],
            false,
        )
        .expect("set");
        let last = seen.lock().unwrap().last().cloned().expect("reloaded");
        assert!(last.contains("openraft=debug") && !last.contains("openraft=warn"), "{last}");
        assert!(last.contains("chronik_actors::replica=trace"), "{last}");
        l.apply(&[(ROOT.into(), Some("FATAL".into())), ("openraft".into(), None)], false).expect("set root, delete");
        assert_eq!(
            l.describe(),
            [
                ("root".into(), "ERROR".into()),
                ("chronik_actors::replica".into(), "TRACE".into()),
                ("openraft".into(), "WARN".into())
            ]
        );
    }

    #[test]
    fn a_bad_level_or_name_changes_nothing() {
        let (l, seen) = levels("info");
        let e = l
            .apply(&[("a".into(), Some("debug".into())), ("b".into(), Some("LOUD".into()))], false)
            .expect_err("level");
        assert_eq!(e, LoggerError::Level { logger: "b".into(), level: "LOUD".into() });
        assert!(matches!(l.apply(&[("a=b".into(), Some("info".into()))], false), Err(LoggerError::Name(_))));
        l.apply(&[("a".into(), Some("debug".into()))], true).expect("valid");
        assert!(seen.lock().unwrap().is_empty(), "nothing reloaded");
        assert_eq!(l.describe(), [("root".into(), "INFO".into())]);
    }
}
