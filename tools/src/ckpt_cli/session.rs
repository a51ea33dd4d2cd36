//! The CKPT requests `ais-ckpt` makes, over one [`Connection`] to the local
//! executive.
//!
//! The listing ([`LIST`]) and the store status ([`STORE_STATUS`]) are
//! answered from the node's replica without touching the ring or the
//! checkpoints. Reading or writing a section needs an open handle, so
//! [`Session::with_open`] opens the checkpoint through the ring (which
//! counts as an opener cluster-wide while the tool runs), runs the body and
//! closes it again, whatever the body returned.
//!
//! `SA_AIS_ERR_TRY_AGAIN` from a request (the node is synchronizing, or its
//! ring or queues are full; nothing was applied) is retried every
//! [`RETRY_PAUSE`] until the session's timeout has passed; any other error
//! is returned as it came, named in [`ToolError::Ais`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ais::client::{ClientConfig, Connection};
use proto::ckpt::{
    CheckpointInfo, CreationAttributes, HandleRequest, IterationInitialize, IterationReply,
    IterationRequest, List, ListReply, Open, OpenReply, Read, ReadElement, ReadReply,
    SectionCreate, SectionDescriptor, SectionOverwrite, SectionsChosen, StoreStatus, Unlink, Write,
    WriteElement, CHECKPOINT_COLLOCATED, CLOSE, ITERATION_FINALIZE, ITERATION_INITIALIZE,
    ITERATION_NEXT, LIST, MAX_DATA_BYTES, MAX_LIST_ENTRIES, OPEN, READ, SECTION_CREATE,
    SECTION_OVERWRITE, STORE_STATUS, TIME_END, UNLINK, VERSION, WRITE, WR_ALL_REPLICAS,
};
use proto::{AisError, ServiceId};

/// Pause between two tries of a request answered `SA_AIS_ERR_TRY_AGAIN`.
pub const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Most listing pages fetched: enough for every checkpoint a store can
/// hold after merges (16 x 4096, 64 a page), so a daemon that kept
/// answering `more` could not keep the tool forever.
pub const MAX_LIST_PAGES: usize = 16 * 4096 / MAX_LIST_ENTRIES + 1;

/// Most sections one `--all` dump iterates over (the executive's largest
/// `maxSections`).
pub const MAX_ITERATED_SECTIONS: usize = 65_536;

/// Why a command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolError {
    /// Nothing listens at the socket (the client's connect answered
    /// `SA_AIS_ERR_TRY_AGAIN`).
    NotRunning {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The executive (or the client library) answered `error` to `what`.
    Ais {
        /// What the tool asked, for the message ("open \"demo\"").
        what: String,
        /// The answer.
        error: AisError,
        /// What it usually means here (a parenthesis, or empty).
        hint: &'static str,
    },
    /// An answer did not decode, or a listing did not advance.
    Malformed {
        /// Which answer.
        what: &'static str,
    },
    /// A failure on this side: an argument the executive would refuse
    /// anyway, a file that cannot be read, standard output closed.
    Local(String),
}

impl ToolError {
    fn ais(what: impl Into<String>, error: AisError) -> ToolError {
        ToolError::Ais {
            what: what.into(),
            error,
            hint: hint(error),
        }
    }

    /// A NOT_EXIST from a section of `opened` says the other reason it has
    /// where the checkpoint is collocated: no active replica is set.
    fn on_section(self, opened: &Opened) -> ToolError {
        let a = opened.attributes.creation_flags;
        match self {
            ToolError::Ais {
                what,
                error: AisError::NotExist,
                ..
            } if a & CHECKPOINT_COLLOCATED != 0 && a & WR_ALL_REPLICAS == 0 => ToolError::Ais {
                what,
                error: AisError::NotExist,
                hint: " (no such section, or no active replica is set for this collocated \
                       checkpoint: saCkptActiveReplicaSet)",
            },
            other => other,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::NotRunning { socket } => write!(
                f,
                "aisexec is not running (nothing listens on {}); start it, or point \
                 --socket / AIS_SOCKET at its socket",
                socket.display()
            ),
            ToolError::Ais { what, error, hint } => write!(f, "{what}: {}{hint}", error.c_name()),
            ToolError::Malformed { what } => {
                write!(
                    f,
                    "the executive sent a malformed {what} (SA_AIS_ERR_LIBRARY)"
                )
            }
            ToolError::Local(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for ToolError {}

/// What an error usually means for an operator of `ais-ckpt`.
fn hint(error: AisError) -> &'static str {
    match error {
        AisError::NotExist => " (no such checkpoint or section)",
        AisError::Exist => " (the checkpoint exists with other creation attributes)",
        AisError::Access => " (this user may not use the socket; see uidgid in the config)",
        AisError::Timeout => " (the executive did not answer in time)",
        AisError::TryAgain => " (the node stayed busy or synchronizing; try again)",
        AisError::NotSupported => " (the executive does not host CKPT; is it disabled?)",
        AisError::Version => " (the executive does not speak CKPT B.01.01)",
        AisError::NoSpace => " (the checkpoint is full: max sections or checkpoint size)",
        AisError::InvalidParam => " (a value is out of the checkpoint's limits)",
        AisError::NoMemory => " (a replica is over its memory limit)",
        AisError::NoResources => " (the executive is at one of its limits)",
        AisError::FailedOperation => " (the section was lost on the active replica)",
        AisError::TooBig => " (more than one request may carry)",
        _ => "",
    }
}

/// A checkpoint opened by [`Session::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Its name.
    pub name: Vec<u8>,
    /// The executive's handle.
    pub handle: u64,
    /// The checkpoint's creation attributes.
    pub attributes: CreationAttributes,
}

/// How [`Session::put_section`] changed a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The section's whole contents were replaced.
    Overwritten,
    /// The section did not exist and was created with the data.
    Created,
    /// The data was written at an offset of the existing section.
    Written,
}

/// One connection to the CKPT service of the local executive.
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    /// How long a request answered TRY_AGAIN is retried.
    retry_for: Duration,
    /// TRY_AGAIN answers retried so far.
    try_agains: u64,
}

impl Session {
    /// Connects to CKPT at `socket`; every call waits at most `timeout`.
    ///
    /// # Errors
    /// [`ToolError::NotRunning`] when nothing listens there; otherwise the
    /// connect's error (ACCESS, NOT_SUPPORTED, VERSION, TIMEOUT, ...).
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Session, ToolError> {
        let mut config = ClientConfig::with_socket(socket);
        config.timeout = timeout;
        match Connection::connect_with(&config, ServiceId::Ckpt, VERSION) {
            Ok(conn) => Ok(Session {
                conn,
                retry_for: timeout,
                try_agains: 0,
            }),
            Err(AisError::TryAgain) => Err(ToolError::NotRunning {
                socket: socket.to_path_buf(),
            }),
            Err(e) => Err(ToolError::ais(
                format!("connect to CKPT at {}", socket.display()),
                e,
            )),
        }
    }

    /// Sends request `id` and returns the body of its OK answer, retrying
    /// TRY_AGAIN answers until the session's timeout passed.
    fn call(
        &mut self,
        what: impl Fn() -> String,
        id: u16,
        body: &[u8],
    ) -> Result<Vec<u8>, ToolError> {
        let deadline = Instant::now() + self.retry_for;
        loop {
            match self.conn.request(id, body).and_then(|r| r.into_result()) {
                Ok(body) => return Ok(body.to_vec()),
                Err(AisError::TryAgain) if Instant::now() + RETRY_PAUSE < deadline => {
                    self.try_agains += 1;
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(e) => return Err(ToolError::ais(what(), e)),
            }
        }
    }

    /// How many TRY_AGAIN answers this session retried so far.
    pub fn try_agains(&self) -> u64 {
        self.try_agains
    }

    /// This node's store status and digest.
    ///
    /// # Errors
    /// The executive's error, or [`ToolError::Malformed`].
    pub fn store_status(&mut self) -> Result<StoreStatus, ToolError> {
        let body = self.call(|| "store status".into(), STORE_STATUS, &[])?;
        StoreStatus::decode(&body).map_err(|_| ToolError::Malformed {
            what: "store status",
        })
    }

    /// Every checkpoint in this node's store (unlinked ones included), in
    /// key order, fetched page by page.
    ///
    /// # Errors
    /// The executive's error, or [`ToolError::Malformed`] for an answer
    /// that does not decode or a page that does not advance.
    pub fn list(&mut self) -> Result<Vec<CheckpointInfo>, ToolError> {
        let mut all: Vec<CheckpointInfo> = Vec::new();
        let mut after = None;
        for _ in 0..MAX_LIST_PAGES {
            let body = self.call(|| "list checkpoints".into(), LIST, &List { after }.encode())?;
            let page = ListReply::decode(&body).map_err(|_| ToolError::Malformed {
                what: "checkpoint list",
            })?;
            let last = page.entries.last().map(|e| e.key);
            let advanced = match (after, last) {
                (_, None) => !page.more,
                (None, Some(_)) => true,
                (Some(a), Some(l)) => l > a,
            };
            if !advanced {
                return Err(ToolError::Malformed {
                    what: "checkpoint list (a page that does not advance)",
                });
            }
            all.extend(page.entries);
            if !page.more {
                return Ok(all);
            }
            after = last;
        }
        Err(ToolError::Malformed {
            what: "checkpoint list (more pages than a store holds)",
        })
    }

    /// Opens checkpoint `name` with `flags` (and `attributes` exactly when
    /// `flags` has `SA_CKPT_CHECKPOINT_CREATE`).
    ///
    /// # Errors
    /// The executive's error (NOT_EXIST, EXIST for other attributes, ...).
    pub fn open(
        &mut self,
        name: &[u8],
        flags: u32,
        attributes: Option<CreationAttributes>,
    ) -> Result<Opened, ToolError> {
        let open = Open {
            name: name.to_vec().into(),
            attributes,
            open_flags: flags,
        };
        let reply = self.call(
            || format!("open {}", super::render::quoted(name)),
            OPEN,
            &open.encode(),
        )?;
        let reply =
            OpenReply::decode(&reply).map_err(|_| ToolError::Malformed { what: "open reply" })?;
        Ok(Opened {
            name: name.to_vec(),
            handle: reply.handle,
            attributes: reply.attributes,
        })
    }

    /// Runs `body` on an opened checkpoint, then closes it, also when
    /// `body` failed.
    ///
    /// # Errors
    /// `body`'s error; else the close's.
    pub fn run_and_close<T>(
        &mut self,
        opened: Opened,
        body: impl FnOnce(&mut Session, &Opened) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        let result = body(self, &opened);
        let close = HandleRequest {
            handle: opened.handle,
        };
        let closed = self.call(
            || format!("close {}", super::render::quoted(&opened.name)),
            CLOSE,
            &close.encode(),
        );
        let value = result?;
        closed?;
        Ok(value)
    }

    /// [`Session::open`], then [`Session::run_and_close`].
    ///
    /// # Errors
    /// The open's error; else `body`'s; else the close's.
    pub fn with_open<T>(
        &mut self,
        name: &[u8],
        flags: u32,
        attributes: Option<CreationAttributes>,
        body: impl FnOnce(&mut Session, &Opened) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        let opened = self.open(name, flags, attributes)?;
        self.run_and_close(opened, body)
    }

    /// The whole data of section `id` (the empty id: the default section)
    /// of an opened checkpoint.
    ///
    /// # Errors
    /// The read's error (NOT_EXIST for a missing section,
    /// FAILED_OPERATION for a lost one), or [`ToolError::Malformed`].
    pub fn read_section(&mut self, opened: &Opened, id: &[u8]) -> Result<Vec<u8>, ToolError> {
        // A section never holds more than maxSectionSize bytes, and no
        // read may ask for more (INVALID_PARAM) or return more than one
        // answer carries (TOO_BIG).
        let chunk = opened
            .attributes
            .max_section_size
            .min(MAX_DATA_BYTES as u64);
        let shown = format!(
            "{} of {}",
            super::render::section_name(id),
            super::render::quoted(&opened.name)
        );
        let mut data = Vec::new();
        loop {
            let read = Read {
                handle: opened.handle,
                elements: vec![ReadElement {
                    section_id: id.to_vec().into(),
                    offset: data.len() as u64,
                    size: chunk,
                }],
            };
            let body = self
                .call(|| format!("read {shown}"), READ, &read.encode())
                .map_err(|e| e.on_section(opened))?;
            let reply = ReadReply::decode(&body)
                .map_err(|_| ToolError::Malformed { what: "read reply" })?;
            let got = reply.data.into_iter().next().ok_or(ToolError::Malformed {
                what: "read reply (no element)",
            })?;
            data.extend_from_slice(&got);
            if got.is_empty() || (got.len() as u64) < chunk {
                return Ok(data);
            }
        }
    }

    /// At most `size` bytes at `offset` of section `id` of an opened
    /// checkpoint, by one read request.
    ///
    /// # Errors
    /// The read's error, or [`ToolError::Malformed`].
    pub fn read_once(
        &mut self,
        opened: &Opened,
        id: &[u8],
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>, ToolError> {
        let read = Read {
            handle: opened.handle,
            elements: vec![ReadElement {
                section_id: id.to_vec().into(),
                offset,
                size,
            }],
        };
        let body = self
            .call(
                || {
                    format!(
                        "read {} of {}",
                        super::render::section_name(id),
                        super::render::quoted(&opened.name)
                    )
                },
                READ,
                &read.encode(),
            )
            .map_err(|e| e.on_section(opened))?;
        let reply =
            ReadReply::decode(&body).map_err(|_| ToolError::Malformed { what: "read reply" })?;
        reply
            .data
            .into_iter()
            .next()
            .ok_or(ToolError::Malformed {
                what: "read reply (no element)",
            })
            .map(|d| d.to_vec())
    }

    /// Every section of an opened checkpoint (`SA_CKPT_SECTIONS_ANY`), in
    /// the executive's order, by one section iteration.
    ///
    /// # Errors
    /// The iteration's error, or [`ToolError::Malformed`].
    pub fn sections(&mut self, opened: &Opened) -> Result<Vec<SectionDescriptor>, ToolError> {
        let init = IterationInitialize {
            handle: opened.handle,
            sections_chosen: SectionsChosen::Any,
            expiration_time_ns: 0,
        };
        let body = self.call(
            || "start a section iteration".into(),
            ITERATION_INITIALIZE,
            &init.encode(),
        )?;
        let it = IterationReply::decode(&body).map_err(|_| ToolError::Malformed {
            what: "iteration reply",
        })?;
        let request = IterationRequest {
            iteration: it.iteration,
        }
        .encode();
        let mut found = Vec::new();
        let result = loop {
            if found.len() >= MAX_ITERATED_SECTIONS {
                break Ok(());
            }
            match self.call(|| "next section".into(), ITERATION_NEXT, &request) {
                Ok(body) => match SectionDescriptor::decode(&body) {
                    Ok(d) => found.push(d),
                    Err(_) => {
                        break Err(ToolError::Malformed {
                            what: "section descriptor",
                        })
                    }
                },
                Err(ToolError::Ais {
                    error: AisError::NoSections,
                    ..
                }) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let finalized = self.call(
            || "finalize the section iteration".into(),
            ITERATION_FINALIZE,
            &request,
        );
        result?;
        finalized?;
        Ok(found)
    }

    /// Makes section `id` of an opened checkpoint hold `data`: at `offset`
    /// of the existing section when given (`saCkptCheckpointWrite`), else
    /// as its whole contents (`saCkptSectionOverwrite`), creating the
    /// section (never expiring) if it does not exist and `id` is not the
    /// default section's.
    ///
    /// # Errors
    /// The executive's error (NOT_EXIST, NO_SPACE, INVALID_PARAM, ...).
    pub fn put_section(
        &mut self,
        opened: &Opened,
        id: &[u8],
        offset: Option<u64>,
        data: &[u8],
    ) -> Result<Put, ToolError> {
        let shown = format!(
            "{} of {}",
            super::render::section_name(id),
            super::render::quoted(&opened.name)
        );
        if let Some(offset) = offset {
            if data.is_empty() {
                return Err(ToolError::Local(
                    "a write at an offset needs at least one byte of data".into(),
                ));
            }
            let write = Write {
                handle: opened.handle,
                elements: vec![WriteElement {
                    section_id: id.to_vec().into(),
                    offset,
                    data: data.to_vec().into(),
                }],
            };
            self.call(|| format!("write {shown}"), WRITE, &write.encode())
                .map_err(|e| e.on_section(opened))?;
            return Ok(Put::Written);
        }
        let overwrite = SectionOverwrite {
            handle: opened.handle,
            section_id: id.to_vec().into(),
            data: data.to_vec().into(),
        };
        match self.call(
            || format!("overwrite {shown}"),
            SECTION_OVERWRITE,
            &overwrite.encode(),
        ) {
            Ok(_) => Ok(Put::Overwritten),
            // The empty id would ask for a generated one: never create the
            // default section.
            Err(ToolError::Ais {
                error: AisError::NotExist,
                ..
            }) if !id.is_empty() => {
                let create = SectionCreate {
                    handle: opened.handle,
                    section_id: id.to_vec().into(),
                    expiration_time_ns: TIME_END,
                    initial_data: data.to_vec().into(),
                };
                self.call(
                    || format!("create {shown}"),
                    SECTION_CREATE,
                    &create.encode(),
                )
                .map_err(|e| e.on_section(opened))?;
                Ok(Put::Created)
            }
            Err(e) => Err(e.on_section(opened)),
        }
    }

    /// Unlinks checkpoint `name`.
    ///
    /// # Errors
    /// The executive's error (NOT_EXIST when no checkpoint has the name).
    pub fn unlink(&mut self, name: &[u8]) -> Result<(), ToolError> {
        let shown = super::render::quoted(name);
        let unlink = Unlink {
            name: name.to_vec().into(),
        };
        self.call(|| format!("unlink {shown}"), UNLINK, &unlink.encode())?;
        Ok(())
    }
}
