//! The soak's delivery logs: one text file per EVS client session (one
//! library connection, from connect to its end), one event per line, so a
//! log can be read, diffed and doctored by hand.
//!
//! ```text
//! C <node> <client> <session>          header: whose session this is
//! V <r|t> <seq> <rep> <m1,m2,...>      a configuration change: regular or
//!                                      transitional, its ring, its members
//! J                                    the group join returned: every
//!                                      callback after it is live
//! A <seq>                              a multicast of message <seq> is tried
//! S <seq>                              ... and was accepted (queued)
//! T <seq>                              ... and was refused (TRY_AGAIN: not
//!                                      queued; retried with the same seq)
//! F <seq>                              ... and failed with the outcome
//!                                      unknown (the connection broke)
//! D <node> <client> <session> <seq>    a message delivered
//! X <text>                             a delivered payload was corrupt
//! E clean|broken <why>                 the session's end
//! ```
//!
//! A file without an `E` line is read as ended broken (the writer died).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A message's identity: who sent it (node, client on that node, the
/// client's session) and its number in that session (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId {
    /// The sender's node.
    pub node: u8,
    /// The sending client on that node.
    pub client: u8,
    /// The sending client's session.
    pub session: u16,
    /// The message's number in the session.
    pub seq: u32,
}

impl MsgId {
    /// The session that sent it.
    pub fn sender(&self) -> SessionId {
        SessionId {
            node: self.node,
            client: self.client,
            session: self.session,
        }
    }
}

impl std::fmt::Display for MsgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n{}c{}s{}#{}",
            self.node, self.client, self.session, self.seq
        )
    }
}

/// A client session's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    /// The node the client talks to.
    pub node: u8,
    /// The client on that node.
    pub client: u8,
    /// The session (connection) of that client, from 1.
    pub session: u16,
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}c{}s{}", self.node, self.client, self.session)
    }
}

/// A configuration as Totem names it: its ring and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfId {
    /// The ring's sequence number.
    pub seq: u64,
    /// The ring's representative.
    pub rep: u32,
    /// The transitional configuration before that ring's regular one.
    pub transitional: bool,
}

impl std::fmt::Display for ConfId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.transitional {
            "transitional"
        } else {
            "regular"
        };
        write!(f, "{kind} {}/{}", self.seq, self.rep)
    }
}

/// One line of a session log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A configuration change.
    Conf {
        /// Which.
        id: ConfId,
        /// Its members, ascending.
        members: Vec<u32>,
    },
    /// The group join returned.
    Joined,
    /// A multicast is tried.
    Attempt(u32),
    /// It was accepted.
    Accepted(u32),
    /// It was refused (not queued).
    Refused(u32),
    /// It failed with the outcome unknown.
    Failed(u32),
    /// A message delivered.
    Deliver(MsgId),
    /// A corrupt delivery.
    Corrupt(String),
    /// The end.
    End {
        /// Ended by the soak (after the drain), not by a broken connection.
        clean: bool,
        /// Why.
        why: String,
    },
}

/// A session's log, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLog {
    /// Whose.
    pub id: SessionId,
    /// Its events in order (ending with [`Event::End`] once parsed).
    pub events: Vec<Event>,
}

impl Event {
    /// The event as a log line (without the newline).
    pub fn line(&self) -> String {
        match self {
            Event::Conf { id, members } => {
                let mut s = format!(
                    "V {} {} {} ",
                    if id.transitional { 't' } else { 'r' },
                    id.seq,
                    id.rep
                );
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let _ = write!(s, "{m}");
                }
                s
            }
            Event::Joined => "J".to_owned(),
            Event::Attempt(n) => format!("A {n}"),
            Event::Accepted(n) => format!("S {n}"),
            Event::Refused(n) => format!("T {n}"),
            Event::Failed(n) => format!("F {n}"),
            Event::Deliver(m) => format!("D {} {} {} {}", m.node, m.client, m.session, m.seq),
            Event::Corrupt(t) => format!("X {}", t.replace('\n', " ")),
            Event::End { clean, why } => format!(
                "E {} {}",
                if *clean { "clean" } else { "broken" },
                why.replace('\n', " ")
            ),
        }
    }

    /// Parses one line.
    ///
    /// # Errors
    /// What was malformed.
    pub fn parse(line: &str) -> Result<Event, String> {
        let mut words = line.split(' ');
        let tag = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let num = |i: usize| -> Result<u64, String> {
            rest.get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("`{line}`: field {} is not a number", i + 1))
        };
        let seq = |i: usize| num(i).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()));
        Ok(match tag {
            "V" => {
                let transitional = match rest.first() {
                    Some(&"t") => true,
                    Some(&"r") => false,
                    _ => return Err(format!("`{line}`: kind is neither r nor t")),
                };
                let members = rest
                    .get(3)
                    .copied()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|_| format!("`{line}`: bad member")))
                    .collect::<Result<Vec<u32>, String>>()?;
                Event::Conf {
                    id: ConfId {
                        seq: num(1)?,
                        rep: u32::try_from(num(2)?).map_err(|e| e.to_string())?,
                        transitional,
                    },
                    members,
                }
            }
            "J" => Event::Joined,
            "A" => Event::Attempt(seq(0)?),
            "S" => Event::Accepted(seq(0)?),
            "T" => Event::Refused(seq(0)?),
            "F" => Event::Failed(seq(0)?),
            "D" => Event::Deliver(MsgId {
                node: u8::try_from(num(0)?).map_err(|e| e.to_string())?,
                client: u8::try_from(num(1)?).map_err(|e| e.to_string())?,
                session: u16::try_from(num(2)?).map_err(|e| e.to_string())?,
                seq: seq(3)?,
            }),
            "X" => Event::Corrupt(rest.join(" ")),
            "E" => Event::End {
                clean: rest.first() == Some(&"clean"),
                why: rest.get(1..).map(|w| w.join(" ")).unwrap_or_default(),
            },
            _ => return Err(format!("`{line}`: unknown event")),
        })
    }
}

impl SessionLog {
    /// Parses a whole log (header first).
    ///
    /// # Errors
    /// A missing or malformed header, a malformed line.
    pub fn parse(text: &str) -> Result<SessionLog, String> {
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let header = lines.next().ok_or("empty log")?;
        let h: Vec<&str> = header.split(' ').collect();
        let field = |i: usize| -> Result<u64, String> {
            h.get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| format!("header `{header}` is malformed"))
        };
        if h.first() != Some(&"C") {
            return Err(format!("header `{header}` does not start with C"));
        }
        let id = SessionId {
            node: u8::try_from(field(1)?).map_err(|e| e.to_string())?,
            client: u8::try_from(field(2)?).map_err(|e| e.to_string())?,
            session: u16::try_from(field(3)?).map_err(|e| e.to_string())?,
        };
        let mut events = lines.map(Event::parse).collect::<Result<Vec<_>, _>>()?;
        if !matches!(events.last(), Some(Event::End { .. })) {
            events.push(Event::End {
                clean: false,
                why: "log has no end line".to_owned(),
            });
        }
        Ok(SessionLog { id, events })
    }

    /// The log as text.
    pub fn text(&self) -> String {
        let mut s = format!(
            "C {} {} {}\n",
            self.id.node, self.id.client, self.id.session
        );
        for e in &self.events {
            s.push_str(&e.line());
            s.push('\n');
        }
        s
    }
}

/// Writes one session's log as it happens.
#[derive(Debug)]
pub struct SessionWriter {
    out: BufWriter<fs::File>,
}

impl SessionWriter {
    /// Creates `dir/node<N>/c<C>-s<S>.log` with its header.
    ///
    /// # Errors
    /// The file could not be created.
    pub fn create(dir: &Path, id: SessionId) -> io::Result<SessionWriter> {
        let path = session_path(dir, id);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut out = BufWriter::new(fs::File::create(path)?);
        writeln!(out, "C {} {} {}", id.node, id.client, id.session)?;
        Ok(SessionWriter { out })
    }

    /// Appends an event (an error here is ignored: the checker then sees a
    /// log without an end, read as broken).
    pub fn log(&mut self, event: &Event) {
        let _ = writeln!(self.out, "{}", event.line());
    }

    /// Appends the end and flushes.
    pub fn end(mut self, clean: bool, why: &str) {
        self.log(&Event::End {
            clean,
            why: why.to_owned(),
        });
        let _ = self.out.flush();
    }
}

/// Where session `id`'s log goes under `dir`.
pub fn session_path(dir: &Path, id: SessionId) -> PathBuf {
    dir.join(format!("node{}", id.node))
        .join(format!("c{}-s{}.log", id.client, id.session))
}

/// Reads every session log under `dir` (as [`SessionWriter`] lays them
/// out), sorted by session.
///
/// # Errors
/// A directory or file that cannot be read, a malformed log (with its
/// path).
pub fn read_all(dir: &Path) -> Result<Vec<SessionLog>, String> {
    let mut logs = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for node_dir in entries.flatten() {
        let path = node_dir.path();
        if !path.is_dir() {
            continue;
        }
        let files = fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for f in files.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "log") {
                let text = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                logs.push(SessionLog::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?);
            }
        }
    }
    logs.sort_by_key(|l| l.id);
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_through_its_line() {
        let log = SessionLog {
            id: SessionId {
                node: 3,
                client: 1,
                session: 7,
            },
            events: vec![
                Event::Conf {
                    id: ConfId {
                        seq: 40,
                        rep: 1,
                        transitional: true,
                    },
                    members: vec![1, 3],
                },
                Event::Joined,
                Event::Attempt(1),
                Event::Accepted(1),
                Event::Refused(2),
                Event::Failed(2),
                Event::Deliver(MsgId {
                    node: 3,
                    client: 1,
                    session: 7,
                    seq: 1,
                }),
                Event::Corrupt("bad magic".into()),
                Event::End {
                    clean: true,
                    why: "soak over".into(),
                },
            ],
        };
        assert_eq!(SessionLog::parse(&log.text()), Ok(log));
    }

    #[test]
    fn a_log_without_an_end_is_broken_and_garbage_is_refused() {
        let l = SessionLog::parse("C 1 1 1\nJ\n").unwrap();
        assert!(matches!(
            l.events.last(),
            Some(Event::End { clean: false, .. })
        ));
        assert!(SessionLog::parse("").is_err());
        assert!(SessionLog::parse("C 1 1\n").is_err());
        assert!(SessionLog::parse("C 1 1 1\nQ 4\n").is_err());
        assert!(SessionLog::parse("C 1 1 1\nD 1 2 x 4\n").is_err());
    }
}
