//! The trace of a run: one line per thing that happened, `time node what`.
//!
//! Off by default (then it costs one branch per event). A replayed seed
//! prints it to stdout; tests collect it in a buffer to prove that a seed
//! replays byte for byte.

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

/// Traces a line if tracing is on, without formatting anything otherwise.
#[macro_export]
macro_rules! trace {
    ($trace:expr, $at:expr, $who:expr, $($arg:tt)*) => {
        if $trace.on() {
            $trace.line($at, $who, format_args!($($arg)*));
        }
    };
}
