//! The trace of a run: one line per thing that happened, `time node what`.
//!
//! Off by default (then it costs one branch per event). A replayed seed
//! prints it to stdout; tests collect it in a buffer to prove that a seed
//! replays byte for byte.
//!
//! The protocol's own `log` records can join the trace: install
//! [`capture_protocol_log`] once (the `sim` binary does for `--seed` and
//! `--trace`), and the simulator moves what each node logged into the trace
//! after every input it hands that node ([`take_protocol_log`]).

use std::cell::RefCell;
use std::fmt;
use std::io::{BufWriter, Stdout, Write};

use totem::{Instant, NodeId};

#[derive(Debug)]
enum Sink {
    Off,
    Stdout(BufWriter<Stdout>),
    Buffer(Vec<u8>),
}

/// Where the trace goes, and how much of it.
#[derive(Debug)]
pub struct Trace {
    sink: Sink,
    packets: bool,
}

impl Trace {
    /// No trace.
    pub fn off() -> Trace {
        Trace {
            sink: Sink::Off,
            packets: false,
        }
    }

    /// To stdout; with `packets`, every datagram sent and received too.
    pub fn stdout(packets: bool) -> Trace {
        Trace {
            sink: Sink::Stdout(BufWriter::new(std::io::stdout())),
            packets,
        }
    }

    /// Into a buffer, returned by [`Trace::into_buffer`].
    pub fn buffer(packets: bool) -> Trace {
        Trace {
            sink: Sink::Buffer(Vec::new()),
            packets,
        }
    }

    /// Whether anything is traced.
    pub fn on(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// Whether datagrams are traced.
    pub fn packets(&self) -> bool {
        self.packets && self.on()
    }

    /// Writes one line. Errors writing to stdout (a closed pipe) are
    /// ignored: the trace is a convenience, the run goes on.
    pub fn line(&mut self, at: Instant, who: Option<NodeId>, what: fmt::Arguments<'_>) {
        let who = who.map_or_else(|| "--".to_string(), |n| format!("n{n}"));
        let at = at.to_string();
        let _ = match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Stdout(w) => writeln!(w, "{at:>14} {who:<4} {what}"),
            Sink::Buffer(b) => writeln!(b, "{at:>14} {who:<4} {what}"),
        };
    }

    /// The collected lines, if this trace went to a buffer.
    pub fn into_buffer(mut self) -> Option<Vec<u8>> {
        match std::mem::replace(&mut self.sink, Sink::Off) {
            Sink::Buffer(b) => Some(b),
            Sink::Stdout(mut w) => {
                let _ = w.flush();
                None
            }
            Sink::Off => None,
        }
    }
}

thread_local! {
    /// Whether the run on this thread traces (only then are records kept).
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Log records of the protocol, captured on this thread since the last
    /// [`take_protocol_log`]. Bounded by that call after every node input.
    static CAPTURED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The `log` backend that keeps records for the trace.
#[derive(Debug)]
struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) && CAPTURING.with(std::cell::Cell::get) {
            let line = format!("log {} {}", record.level(), record.args());
            CAPTURED.with(|c| c.borrow_mut().push(line));
        }
    }

    fn flush(&self) {}
}

static LOGGER: CaptureLogger = CaptureLogger;

/// Routes the protocol's `log` records (debug and above) into the traces
/// of the runs on the calling threads. Call once per process; a second call
/// (or another logger already installed) changes nothing. Costs a little
/// per record, so swarms without a trace leave it off.
pub fn capture_protocol_log() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Whether records logged on this thread are kept for the trace (the
/// simulator turns it on for a run with a trace, off after).
pub fn set_protocol_log_capture(on: bool) {
    CAPTURING.with(|c| c.set(on));
    if !on {
        CAPTURED.with(|c| c.borrow_mut().clear());
    }
}

/// The records captured on this thread since the last call, oldest first.
pub fn take_protocol_log() -> Vec<String> {
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// Traces a line if tracing is on, without formatting anything otherwise.
#[macro_export]
macro_rules! trace {
    ($trace:expr, $at:expr, $who:expr, $($arg:tt)*) => {
        if $trace.on() {
            $trace.line($at, $who, format_args!($($arg)*));
        }
    };
}
