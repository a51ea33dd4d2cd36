//! `<run dir>/aisexec.pid`: the daemon's pid, for `kill $(cat ...)` and
//! init scripts (after going to the background the pid is the child's).
//! Written once the daemon runs, removed when it exits cleanly; a file left
//! by a crash is overwritten at the next start (the IPC socket, not this
//! file, is what detects a running executive).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The pid file's name in the run directory.
pub const FILE_NAME: &str = "aisexec.pid";

/// The written pid file; removed on drop if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's pid to `dir/aisexec.pid`.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn write(dir: &Path) -> io::Result<PidFile> {
        let path = dir.join(FILE_NAME);
        let pid = std::process::id();
        fs::write(&path, format!("{pid}\n"))?;
        Ok(PidFile { path, pid })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours =
            fs::read_to_string(&self.path).is_ok_and(|text| text.trim() == self.pid.to_string());
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let f = PidFile::write(dir.path()).expect("written");
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).expect("read");
        assert_eq!(text.trim(), std::process::id().to_string());
        drop(f);
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
