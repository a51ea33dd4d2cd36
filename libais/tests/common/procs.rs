//! Running the C client programs: with `AIS_SOCKET` set, under valgrind
//! when it is installed, to completion within a time limit, or in the
//! background with their output lines on a channel.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// `prog args...` with `AIS_SOCKET=socket`.
pub fn client(prog: &Path, socket: &Path) -> Command {
    let mut cmd = Command::new(prog);
    cmd.env("AIS_SOCKET", socket);
    cmd
}

/// `prog` with `AIS_SOCKET=socket`, under valgrind's memcheck when it is
/// installed: any memory error or definite leak fails the run (exit 9).
pub fn checked_client(prog: &Path, socket: &Path) -> Command {
    let valgrind = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--quiet",
            "--error-exitcode=9",
            // Valgrind runs one thread at a time; without fair scheduling
            // a thread woken by its answer can wait behind busy ones for
            // seconds on a loaded machine (threads.c).
            "--fair-sched=try",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(prog);
        c
    } else {
        Command::new(prog)
    };
    cmd.env("AIS_SOCKET", socket);
    cmd
}

/// Runs `cmd` to completion within `timeout`; its stdout, or a panic with
/// everything it said.
pub fn run_ok(mut cmd: Command, timeout: Duration) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("client output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n--- stdout\n{stdout}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A running C client whose stdout lines arrive on a channel.
pub struct Lines {
    pub child: Child,
    rx: Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn spawn(mut cmd: Command) -> Lines {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("client starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line matching `pred`; the lines up to it.
    pub fn until(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let done = pred(&line);
                    got.push(line);
                    if done {
                        return got;
                    }
                }
                Err(_) => panic!(
                    "no matching line within {timeout:?}; so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().expect("piped stdin")
    }

    /// Waits for the exit; whether it succeeded.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Collect what is left of the output.
                while let Ok(line) = self.rx.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn assert_all_passed(out: &str) {
    assert!(out.lines().any(|l| l == "all passed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}
