//! The daemon's log: `log` records from every crate, tagged with the
//! subsystem they come from, filtered by the config's `logging` section, and
//! written to stderr, a file and/or syslog.
//!
//! `fern` dispatches and formats (`LEVEL [TAG] message`); the sinks behind it
//! are ours so that SIGHUP can change them at run time ([`Logging::apply`]):
//! stderr and the file get a timestamp in front when `timestamp` is on,
//! syslog gets the line without one (syslog stamps it) at the record's
//! severity.
//!
//! Subsystem tags follow corosync's habit (`[TOTEM]`, `[SYNC]`, ...). A
//! record's tag is its `log` target when that is already a tag (all capital
//! letters, as the IPC server writes `target: "IPC"`), else derived from its
//! module path by [`subsystem`]. `logger_subsys { subsys: TOTEM debug: on }`
//! sets the level of one tag.
//!
//! Nothing here is per packet: the event loop aggregates repeated events
//! into periodic counter lines (see `counters.rs`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use aisexec::config::{DebugLevel, LoggingConfig};
use log::{Level, LevelFilter, Metadata, Record};

/// The syslog connection type of the `syslog` crate.
type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// Where records go (changed by [`Logging::apply`]).
#[derive(Default)]
struct Sinks {
    stderr: bool,
    timestamp: bool,
    file: Option<(PathBuf, File)>,
    syslog: Option<Syslog>,
}

/// Which records pass: a level for every tag, with exceptions.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Levels {
    default: LevelFilter,
    by_tag: BTreeMap<String, LevelFilter>,
}

impl Levels {
    /// `debug` for every tag, `logger_subsys { debug }` for its tag.
    fn from_config(config: &LoggingConfig) -> Levels {
        Levels {
            default: level_filter(config.debug),
            by_tag: config
                .subsystems
                .iter()
                .filter_map(|s| Some((s.subsys.to_ascii_uppercase(), level_filter(s.debug?))))
                .collect(),
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let tag = subsystem(metadata.target());
        let level = self
            .by_tag
            .get(tag.as_ref())
            .copied()
            .unwrap_or(self.default);
        metadata.level() <= level
    }

    fn max(&self) -> LevelFilter {
        self.by_tag.values().copied().fold(self.default, Ord::max)
    }
}

/// The handle the daemon keeps to change the log at run time.
#[derive(Clone)]
pub struct Logging {
    sinks: Arc<Mutex<Sinks>>,
    levels: Arc<RwLock<Levels>>,
}

impl std::fmt::Debug for Logging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logging").finish_non_exhaustive()
    }
}

/// Why a logging setting could not be applied (the others were).
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The log file could not be opened for appending.
    #[error("cannot open log file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No syslog daemon listens on the local socket.
    #[error("cannot connect to syslog: {0}")]
    Syslog(String),
}

impl Logging {
    /// Installs the logger: info and above to stderr until [`Logging::apply`]
    /// is given the config.
    ///
    /// # Panics
    /// If a logger was installed before (it is called once, from `main`).
    pub fn install() -> Logging {
        let logging = Logging {
            sinks: Arc::new(Mutex::new(Sinks {
                stderr: true,
                ..Sinks::default()
            })),
            levels: Arc::new(RwLock::new(Levels {
                default: LevelFilter::Info,
                by_tag: BTreeMap::new(),
            })),
        };
        let levels = Arc::clone(&logging.levels);
        let sinks = Arc::clone(&logging.sinks);
        fern::Dispatch::new()
            .filter(move |metadata| {
                levels
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .enabled(metadata)
            })
            .format(|out, message, record| {
                out.finish(format_args!(
                    "{:<5} [{}] {}",
                    level_name(record.level()),
                    subsystem(record.target()),
                    message
                ));
            })
            .chain(fern::Output::call(move |record| {
                sinks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write(record);
            }))
            .apply()
            .expect("the logger is installed once, first thing in main");
        log::set_max_level(LevelFilter::Info);
        logging
    }

    /// Applies the `logging` section: levels, destinations, timestamps. The
    /// log file is (re)opened, so SIGHUP after a rotation starts a new file.
    /// A destination that cannot be set up is left out and reported; the
    /// rest applies.
    pub fn apply(&self, config: &LoggingConfig) -> Vec<LoggingError> {
        let mut errors = Vec::new();
        let levels = Levels::from_config(config);
        let file = match (config.to_logfile, &config.logfile) {
            (true, Some(path)) => match OpenOptions::new().create(true).append(true).open(path) {
                Ok(f) => Some((path.clone(), f)),
                Err(source) => {
                    errors.push(LoggingError::File {
                        path: path.clone(),
                        source,
                    });
                    None
                }
            },
            _ => None,
        };
        let syslog = if config.to_syslog {
            let formatter = syslog::Formatter3164 {
                facility: syslog::Facility::LOG_DAEMON,
                hostname: None,
                process: "aisexec".into(),
                pid: std::process::id(),
            };
            match syslog::unix(formatter) {
                Ok(s) => Some(s),
                Err(e) => {
                    errors.push(LoggingError::Syslog(e.to_string()));
                    None
                }
            }
        } else {
            None
        };
        let max = levels.max();
        *self.levels.write().unwrap_or_else(PoisonError::into_inner) = levels;
        {
            let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
            sinks.stderr = config.to_stderr;
            sinks.timestamp = config.timestamp;
            sinks.file = file;
            sinks.syslog = syslog;
        }
        log::set_max_level(max);
        errors
    }

    /// Whether records go to stderr.
    pub fn writes_to_stderr(&self) -> bool {
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stderr
    }

    /// Whether any destination is open besides stderr (which is closed
    /// once the daemon goes to the background).
    pub fn has_durable_sink(&self) -> bool {
        let sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        sinks.file.is_some() || sinks.syslog.is_some()
    }
}

impl Sinks {
    /// Writes one formatted record; failures are ignored (there is nowhere
    /// left to report them).
    fn write(&mut self, record: &Record<'_>) {
        let stamp = if self.timestamp && (self.stderr || self.file.is_some()) {
            format!("{} ", humantime::format_rfc3339_millis(SystemTime::now()))
        } else {
            String::new()
        };
        if self.stderr {
            let _ = writeln!(std::io::stderr().lock(), "{stamp}{}", record.args());
        }
        if let Some((_, file)) = &mut self.file {
            let _ = writeln!(file, "{stamp}{}", record.args());
        }
        if let Some(syslog) = &mut self.syslog {
            let line = record.args().to_string();
            let _ = match record.level() {
                Level::Error => syslog.err(line),
                Level::Warn => syslog.warning(line),
                Level::Info => syslog.info(line),
                Level::Debug | Level::Trace => syslog.debug(line),
            };
        }
    }
}

fn level_filter(debug: DebugLevel) -> LevelFilter {
    match debug {
        DebugLevel::Off => LevelFilter::Info,
        DebugLevel::On => LevelFilter::Debug,
        DebugLevel::Trace => LevelFilter::Trace,
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// The subsystem tag of a record's target: the target itself when it is a
/// tag already (`IPC`), else by module path: `totem::*` is TOTEM, the
/// barrier and table of `services` are SYNC and each engine its own name
/// (`services::clm` is CLM), `node::*` is NODE, this daemon's transport NET,
/// its config CONFIG, its IPC server IPC, the rest of it MAIN; another
/// crate is its name in capitals.
pub fn subsystem(target: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if !target.is_empty() && target.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Cow::Borrowed(target);
    }
    let mut parts = target.split("::");
    let krate = parts.next().unwrap_or_default();
    let module = parts.next().unwrap_or_default();
    let tag = match (krate, module) {
        ("totem", _) => "TOTEM",
        ("services", "barrier" | "table" | "engine" | "") => "SYNC",
        ("services", engine) => return Cow::Owned(engine.to_ascii_uppercase()),
        ("node", _) => "NODE",
        ("aisexec", "transport") => "NET",
        ("aisexec", "config") => "CONFIG",
        ("aisexec", "ipc") => "IPC",
        ("aisexec", _) => "MAIN",
        (other, _) => return Cow::Owned(other.to_ascii_uppercase()),
    };
    Cow::Borrowed(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisexec::config::LoggerSubsys;

    #[test]
    fn subsystem_tags() {
        let table = [
            ("totem::srp", "TOTEM"),
            ("totem", "TOTEM"),
            ("services::barrier", "SYNC"),
            ("services::table", "SYNC"),
            ("services::clm", "CLM"),
            ("node::node", "NODE"),
            ("aisexec::transport", "NET"),
            ("aisexec::daemon", "MAIN"),
            ("aisexec", "MAIN"),
            ("aisexec::config::model", "CONFIG"),
            ("IPC", "IPC"),
            ("mio::poll", "MIO"),
        ];
        for (target, tag) in table {
            assert_eq!(subsystem(target), tag, "{target}");
        }
    }

    fn meta(level: Level, target: &str) -> Metadata<'_> {
        Metadata::builder().level(level).target(target).build()
    }

    #[test]
    fn per_subsystem_debug_overrides_the_default() {
        let config = LoggingConfig {
            debug: DebugLevel::Off,
            subsystems: vec![LoggerSubsys {
                subsys: "totem".into(),
                debug: Some(DebugLevel::On),
                line: 1,
            }],
            ..LoggingConfig::default()
        };
        let levels = Levels::from_config(&config);
        assert!(levels.enabled(&meta(Level::Debug, "totem::srp")));
        assert!(!levels.enabled(&meta(Level::Trace, "totem::srp")));
        assert!(!levels.enabled(&meta(Level::Debug, "node::node")));
        assert!(levels.enabled(&meta(Level::Info, "node::node")));
        assert_eq!(levels.max(), LevelFilter::Debug);
    }
}
