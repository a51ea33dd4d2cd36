//! How `ais-ckpt` shows checkpoints, sections and the store status: text
//! for people, JSON for scripts, a `hexdump -C` layout for section data.
//!
//! # Names and section ids
//! Checkpoint names and section ids are bytes. They are shown escaped:
//! printable ASCII stays as it is, a backslash is `\\`, every other byte
//! (a double quote included) is `\xNN`. The JSON output carries the same
//! escaped strings, and [`unescape`] reads them back, so what the tool
//! prints can be given to it again. The default section (the empty id) is
//! shown as `(default)`.

use std::fmt::Write as _;

use proto::ckpt::{
    CheckpointInfo, CreationAttributes, SectionDescriptor, SectionState, StoreStatus,
    CHECKPOINT_COLLOCATED, TIME_END, WR_ACTIVE_REPLICA, WR_ACTIVE_REPLICA_WEAK, WR_ALL_REPLICAS,
};
use serde_json::{json, Value};

/// Bytes per line of a hex dump.
const HEX_LINE_BYTES: usize = 16;

/// `bytes` escaped (see the module docs).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\x22"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// The bytes an escaped string stands for (the inverse of [`escape`]).
///
/// # Errors
/// A backslash followed by anything but `\` or `xNN` (two hex digits).
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("`{text}`: \\x must be followed by two hex digits"))?;
                out.push(hex);
                i += 4;
            }
            _ => {
                return Err(format!(
                    "`{text}`: a backslash starts \\\\ or \\xNN (write a backslash as \\\\)"
                ))
            }
        }
    }
    Ok(out)
}

/// A checkpoint name for messages: escaped, in double quotes.
pub fn quoted(name: &[u8]) -> String {
    format!("\"{}\"", escape(name))
}

/// A section id for messages: `(default)`, or escaped in double quotes
/// after the word `section`.
pub fn section_name(id: &[u8]) -> String {
    if id.is_empty() {
        "the default section".into()
    } else {
        format!("section \"{}\"", escape(id))
    }
}

/// A section id as a column or JSON value: `(default)` or escaped.
pub fn section_label(id: &[u8]) -> String {
    if id.is_empty() {
        "(default)".into()
    } else {
        escape(id)
    }
}

/// The names of `SA_CKPT_WR_*` and `SA_CKPT_CHECKPOINT_COLLOCATED` in
/// `flags`, and any unknown bits in hex.
pub fn flag_names(flags: u32) -> Vec<String> {
    let known = [
        (WR_ALL_REPLICAS, "WR_ALL_REPLICAS"),
        (WR_ACTIVE_REPLICA, "WR_ACTIVE_REPLICA"),
        (WR_ACTIVE_REPLICA_WEAK, "WR_ACTIVE_REPLICA_WEAK"),
        (CHECKPOINT_COLLOCATED, "CHECKPOINT_COLLOCATED"),
    ];
    let mut names: Vec<String> = known
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| (*name).to_string())
        .collect();
    let rest = known.iter().fold(flags, |f, (bit, _)| f & !bit);
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    names
}

/// A duration in ns as an operator reads it: `forever` for `SA_TIME_END`,
/// else the largest whole unit (`5s`, `1500ms`, `7ns`).
pub fn duration(ns: i64) -> String {
    const MS: i64 = 1_000_000;
    const S: i64 = 1_000 * MS;
    match ns {
        TIME_END => "forever".into(),
        0 => "0s".into(),
        n if n % S == 0 => format!("{}s", n / S),
        n if n % MS == 0 => format!("{}ms", n / MS),
        n => format!("{n}ns"),
    }
}

/// An absolute SA time (ns since the epoch) in UTC, ISO 8601 with
/// milliseconds; `never` for `SA_TIME_END`.
pub fn time(ns: i64) -> String {
    if ns == TIME_END {
        return "never".into();
    }
    let secs = ns.div_euclid(1_000_000_000);
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where a checkpoint is in its life: opened, retained (with the time
/// left here), kept forever, or unlinked.
pub fn retention_state(c: &CheckpointInfo) -> String {
    match (c.linked, c.openers, c.retention_left_ms) {
        (false, n, _) => format!("unlinked, {n} opener(s); deleted at the last close"),
        (true, n, _) if n > 0 => format!("open by {n}"),
        (true, _, Some(ms)) => format!("closed by all; deleted in {ms} ms"),
        (true, _, None) if c.attributes.retention_duration_ns == TIME_END => {
            "closed by all; retained forever".into()
        }
        (true, _, None) => "closed by all; retention not running on this node".into(),
    }
}

/// The short name of the state [`retention_state`] describes, for JSON.
fn retention_key(c: &CheckpointInfo) -> &'static str {
    match (c.linked, c.openers, c.retention_left_ms) {
        (false, _, _) => "unlinked",
        (true, n, _) if n > 0 => "open",
        (true, _, Some(_)) => "retained",
        (true, _, None) if c.attributes.retention_duration_ns == TIME_END => "kept",
        (true, _, None) => "closed",
    }
}

/// The listing as text: a header with the node and the count, then a
/// block per checkpoint.
pub fn list_text(node_id: u32, list: &[CheckpointInfo]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Node {node_id}: {} checkpoint(s)", list.len());
    for c in list {
        let a = &c.attributes;
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", quoted(&c.name));
        let key = format!("{}/{}/{}", c.key.ring_seq, c.key.ring_rep, c.key.index);
        let rows: [(&str, String); 11] = [
            ("key", key),
            ("state", retention_state(c)),
            ("openers", c.openers.to_string()),
            (
                "active replica",
                match c.active_replica {
                    0 => "-".into(),
                    n => format!("node {n}"),
                },
            ),
            (
                "sections",
                format!("{} of at most {}", c.sections, a.max_sections),
            ),
            (
                "bytes used",
                format!("{} of at most {}", c.data_bytes, a.checkpoint_size),
            ),
            ("flags", flag_names(a.creation_flags).join(" | ")),
            ("retention", duration(a.retention_duration_ns)),
            ("max section size", a.max_section_size.to_string()),
            ("max section id", format!("{} bytes", a.max_section_id_size)),
            ("checkpoint size", a.checkpoint_size.to_string()),
        ];
        for (label, value) in rows {
            let _ = writeln!(out, "  {label:<17} {value}");
        }
    }
    out
}

/// Creation attributes as JSON.
fn attributes_json(a: &CreationAttributes) -> Value {
    json!({
        "creation_flags": a.creation_flags,
        "flags": flag_names(a.creation_flags),
        "checkpoint_size": a.checkpoint_size,
        "retention_duration_ns": a.retention_duration_ns,
        "retention_forever": a.retention_duration_ns == TIME_END,
        "max_sections": a.max_sections,
        "max_section_size": a.max_section_size,
        "max_section_id_size": a.max_section_id_size,
    })
}

/// The listing as one JSON object.
pub fn list_json(node_id: u32, list: &[CheckpointInfo]) -> Value {
    let checkpoints: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "name": escape(&c.name),
                "key": {
                    "ring_seq": c.key.ring_seq,
                    "ring_rep": c.key.ring_rep,
                    "index": c.key.index,
                },
                "linked": c.linked,
                "attributes": attributes_json(&c.attributes),
                "sections": c.sections,
                "data_bytes": c.data_bytes,
                "openers": c.openers,
                "active_replica": (c.active_replica != 0).then_some(c.active_replica),
                "retention_state": retention_key(c),
                "retention_left_ms": c.retention_left_ms,
            })
        })
        .collect();
    json!({ "node_id": node_id, "checkpoints": checkpoints })
}

/// The store status as text.
pub fn status_text(s: &StoreStatus) -> String {
    let rows: [(&str, String); 8] = [
        ("Node", s.node_id.to_string()),
        (
            "Synchronized",
            if s.synced {
                "yes"
            } else {
                "no (sync in progress)"
            }
            .into(),
        ),
        ("Checkpoints", s.checkpoints.to_string()),
        ("Sections", s.sections.to_string()),
        ("Data bytes", s.data_bytes.to_string()),
        ("Local bytes", s.local_bytes.to_string()),
        ("Memory limit", format!("{} bytes", s.memory_limit_bytes)),
        ("Digest", format!("{:#010x}", s.digest)),
    ];
    let mut out = String::new();
    for (label, value) in rows {
        let _ = writeln!(out, "{label:<13} {value}");
    }
    out
}

/// The store status as one JSON object (the digest as a number and in
/// hex).
pub fn status_json(s: &StoreStatus) -> Value {
    json!({
        "node_id": s.node_id,
        "synced": s.synced,
        "checkpoints": s.checkpoints,
        "sections": s.sections,
        "data_bytes": s.data_bytes,
        "local_bytes": s.local_bytes,
        "memory_limit_bytes": s.memory_limit_bytes,
        "digest": s.digest,
        "digest_hex": format!("{:#010x}", s.digest),
    })
}

/// The line above a dumped section: which, how big, and (from an
/// iteration) its expiration, state and last update.
pub fn section_header(name: &[u8], id: &[u8], len: usize, d: Option<&SectionDescriptor>) -> String {
    let mut line = format!("{} of {}: {len} bytes", section_name(id), quoted(name));
    if let Some(d) = d {
        let state = match d.state {
            SectionState::Valid => "valid",
            SectionState::Corrupted => "CORRUPTED",
        };
        let _ = write!(
            line,
            ", expires {}, {state}, last update {}",
            time(d.expiration_time_ns),
            time(d.last_update_ns)
        );
    }
    line.push('\n');
    line
}

/// `data` in the layout of `hexdump -C`: offset, 16 bytes in hex, the
/// printable ones as text; a last line with the length.
pub fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (n, line) in data.chunks(HEX_LINE_BYTES).enumerate() {
        let _ = write!(out, "{:08x} ", n * HEX_LINE_BYTES);
        for i in 0..HEX_LINE_BYTES {
            if i == HEX_LINE_BYTES / 2 {
                out.push(' ');
            }
            match line.get(i) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        out.extend(line.iter().map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                char::from(b)
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    let _ = writeln!(out, "{:08x}", data.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ckpt::CheckpointKey;

    fn info() -> CheckpointInfo {
        CheckpointInfo {
            key: CheckpointKey {
                ring_seq: 8,
                ring_rep: 1,
                index: 3,
            },
            name: b"demo".to_vec().into(),
            linked: true,
            attributes: CreationAttributes {
                creation_flags: WR_ACTIVE_REPLICA | CHECKPOINT_COLLOCATED,
                checkpoint_size: 4096,
                retention_duration_ns: 5_000_000_000,
                max_sections: 4,
                max_section_size: 1024,
                max_section_id_size: 32,
            },
            sections: 2,
            data_bytes: 10,
            openers: 0,
            active_replica: 2,
            retention_left_ms: Some(1500),
        }
    }

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let text = escape(&all);
        assert!(text.is_ascii());
        assert!(!text.contains('"'), "quotes are escaped: {text}");
        assert_eq!(unescape(&text), Ok(all));
        assert_eq!(escape(b"a b\\c\n"), "a b\\\\c\\x0a");
        assert_eq!(unescape("x\\x41\\\\"), Ok(b"xA\\".to_vec()));
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
        assert!(unescape("\\xzz").is_err());
    }

    #[test]
    fn flags_durations_and_times_read_well() {
        assert_eq!(
            flag_names(WR_ALL_REPLICAS | 0x100),
            ["WR_ALL_REPLICAS", "0x100"]
        );
        assert_eq!(duration(TIME_END), "forever");
        assert_eq!(duration(5_000_000_000), "5s");
        assert_eq!(duration(1_500_000_000), "1500ms");
        assert_eq!(duration(7), "7ns");
        assert_eq!(time(TIME_END), "never");
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_709_210_096_789_000_000), "2024-02-29T12:34:56.789Z");
        assert_eq!(time(-1_000_000), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn listing_shows_attributes_and_retention() {
        let text = list_text(2, &[info()]);
        assert!(text.starts_with("Node 2: 1 checkpoint(s)\n"), "{text}");
        assert!(text.contains("\n\"demo\"\n"), "{text}");
        assert!(text.contains("closed by all; deleted in 1500 ms"), "{text}");
        assert!(
            text.contains("WR_ACTIVE_REPLICA | CHECKPOINT_COLLOCATED"),
            "{text}"
        );
        assert!(text.contains("sections          2 of at most 4"), "{text}");
        assert!(text.contains("active replica    node 2"), "{text}");
        let json = list_json(2, &[info()]);
        let c = &json["checkpoints"][0];
        assert_eq!(c["name"], "demo");
        assert_eq!(c["retention_state"], "retained");
        assert_eq!(c["retention_left_ms"], 1500);
        assert_eq!(c["attributes"]["max_sections"], 4);
        assert_eq!(c["attributes"]["retention_forever"], false);
        let mut open = info();
        open.openers = 3;
        assert_eq!(retention_state(&open), "open by 3");
        open.linked = false;
        assert_eq!(
            list_json(1, &[open])["checkpoints"][0]["retention_state"],
            "unlinked"
        );
    }

    #[test]
    fn status_and_hex_dump_layout() {
        let s = StoreStatus {
            node_id: 3,
            synced: true,
            checkpoints: 1,
            sections: 2,
            data_bytes: 3,
            local_bytes: 4,
            memory_limit_bytes: 5,
            digest: 0xbeef,
        };
        assert!(status_text(&s).contains("Digest        0x0000beef\n"));
        assert_eq!(status_json(&s)["digest"], 0xbeef);
        assert_eq!(
            hex_dump(b"hello, world\n\x00\x01\x02\x03"),
            "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 00 01 02  |hello, world....|\n\
             00000010  03                                                |.|\n\
             00000011\n"
        );
        assert_eq!(hex_dump(b""), "00000000\n");
    }
}
