//! `ais-backup`'s output: jobs, verify reports and restore progress as
//! text for people and JSON for scripts.

use ais::backup::{RestoreProgress, VerifyReport};
use proto::backup::JobStatus;
use serde_json::{json, Value};

use crate::ckpt_cli::render::escape;

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A job id as the tool prints and reads it: 16 hex digits.
pub fn job_id(id: u64) -> String {
    format!("{id:016x}")
}

/// Reads a job id (hex, with or without `0x`, or `backup-<hex>`).
///
/// # Errors
/// A message when it is not one.
pub fn parse_job_id(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_prefix("backup-").unwrap_or(t);
    let t = t.strip_prefix("0x").unwrap_or(t);
    u64::from_str_radix(t, 16).map_err(|e| format!("{text:?} is not a backup id: {e}"))
}

/// One progress line of a running job.
pub fn progress_line(j: &JobStatus) -> String {
    format!(
        "backup {}: {} {}/{} checkpoints, {} of {}",
        job_id(j.backup_id),
        j.phase.name(),
        j.checkpoints_done,
        j.checkpoints_total,
        mib(j.bytes_done),
        mib(j.bytes_total)
    )
}

/// A job, as `status` prints it.
pub fn job_text(j: &JobStatus) -> String {
    let mut s = format!(
        "backup {}\n  phase        {}\n  master       node {}\n  directory    {}\n  checkpoints  {} of {} written\n  data         {} of {}\n",
        job_id(j.backup_id),
        j.phase.name(),
        j.master,
        j.directory,
        j.checkpoints_done,
        j.checkpoints_total,
        mib(j.bytes_done),
        mib(j.bytes_total),
    );
    if !j.reason.is_empty() {
        s.push_str(&format!("  reason       {}\n", j.reason));
    }
    for f in &j.failed {
        s.push_str(&format!(
            "  failed       \"{}\": {}: {}\n",
            escape(&f.name),
            f.class,
            f.message
        ));
    }
    for e in &j.errors {
        s.push_str(&format!(
            "  error        node {}: {}: {}\n",
            e.node, e.class, e.message
        ));
    }
    s
}

/// A job as JSON.
pub fn job_json(j: &JobStatus) -> Value {
    json!({
        "backup_id": job_id(j.backup_id),
        "phase": j.phase.name(),
        "master": j.master,
        "destination": j.destination,
        "directory": j.directory,
        "checkpoints_total": j.checkpoints_total,
        "checkpoints_done": j.checkpoints_done,
        "bytes_total": j.bytes_total,
        "bytes_done": j.bytes_done,
        "reason": j.reason,
        "failed": j.failed.iter().map(|f| json!({
            "name": escape(&f.name), "class": f.class.name(), "message": f.message,
        })).collect::<Vec<_>>(),
        "errors": j.errors.iter().map(|e| json!({
            "node": e.node, "class": e.class.name(), "message": e.message,
        })).collect::<Vec<_>>(),
    })
}

/// The jobs, one line each, as `list` prints them.
pub fn list_text(jobs: &[JobStatus]) -> String {
    if jobs.is_empty() {
        return "no backup jobs\n".to_owned();
    }
    let mut s = format!(
        "{:<16}  {:<9}  {:>11}  {:>12}  DIRECTORY\n",
        "ID", "PHASE", "CHECKPOINTS", "DATA"
    );
    for j in jobs {
        s.push_str(&format!(
            "{:<16}  {:<9}  {:>5}/{:<5}  {:>12}  {}\n",
            job_id(j.backup_id),
            j.phase.name(),
            j.checkpoints_done,
            j.checkpoints_total,
            mib(j.bytes_total),
            j.directory
        ));
    }
    s
}

/// A verify report as text.
pub fn verify_text(r: &VerifyReport) -> String {
    let m = &r.manifest;
    let mut s = format!(
        "backup {}: cut at ring {}:{} position {}, members {:?}, {} checkpoint(s), {} failed\n",
        job_id(m.backup_id),
        m.cut.ring_seq,
        m.cut.ring_rep,
        m.cut.position,
        m.members,
        m.entries.len(),
        m.failed.len()
    );
    s.push_str(&format!(
        "checked {} data file(s), {}\n",
        r.files_checked,
        mib(r.bytes_checked)
    ));
    for (f, p) in &r.problems {
        s.push_str(&format!("BAD {f}: {p}\n"));
    }
    s.push_str(if r.is_ok() { "OK\n" } else { "FAILED\n" });
    s
}

/// A verify report as JSON.
pub fn verify_json(r: &VerifyReport) -> Value {
    json!({
        "backup_id": job_id(r.manifest.backup_id),
        "ok": r.is_ok(),
        "files_checked": r.files_checked,
        "bytes_checked": r.bytes_checked,
        "checkpoints": r.manifest.entries.iter().map(|e| json!({
            "name": escape(&e.name), "file": e.file, "size": e.digest.size,
            "crc32": format!("{:08x}", e.digest.crc32), "written_by": e.written_by,
        })).collect::<Vec<_>>(),
        "failed": r.manifest.failed.iter().map(|f| json!({
            "name": escape(&f.name), "class": f.class.name(), "message": f.message,
        })).collect::<Vec<_>>(),
        "problems": r.problems.iter().map(|(f, p)| json!({"file": f, "problem": p.to_string()}))
            .collect::<Vec<_>>(),
    })
}

/// One progress line of a restore.
pub fn restore_line(p: &RestoreProgress) -> String {
    format!(
        "restore: {}/{} checkpoints, {} of {}",
        p.checkpoints_done,
        p.checkpoints_total,
        mib(p.bytes_done),
        mib(p.bytes_total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_read_back() {
        for id in [0u64, 1, 0x1_2345_6789, u64::MAX] {
            assert_eq!(parse_job_id(&job_id(id)), Ok(id));
            assert_eq!(parse_job_id(&format!("backup-{}", job_id(id))), Ok(id));
        }
        assert!(parse_job_id("zz").is_err());
    }
}
