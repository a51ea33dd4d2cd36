//! Shared by the C tests: the staged install (headers and `libais.so`
//! laid out as `make install` lays them out) and the C compiler.
//!
//! The stage lives in `target/<profile>/libais-ctest/<test binary>/`:
//! `include/` holds copies of `libais/include/*.h`, `lib/` holds the
//! freshly built cdylib as `libais.so` and `libais.so.1` (its soname), and
//! `bin/` the compiled C programs (kept for inspection after a failure).

#![allow(dead_code)] // each test binary uses part of it

pub mod cluster;
pub mod procs;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// Where the headers, the library and the C programs are.
#[derive(Debug)]
pub struct Stage {
    pub root: PathBuf,
    pub include: PathBuf,
    pub lib: PathBuf,
    pub bin: PathBuf,
    pub ctest: PathBuf,
}

/// The headers this crate installs.
pub const HEADERS: [&str; 5] = ["saAis.h", "saClm.h", "saCkpt.h", "evs.h", "ais_backup.h"];

/// The cargo profile directory this test binary was built into.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// The C compiler: `$CC`, else `cc`.
pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// The C++ compiler, if there is one: `$CXX`, else `g++`, else `c++`.
pub fn cxx() -> Option<String> {
    let candidates = match std::env::var("CXX") {
        Ok(c) => vec![c],
        Err(_) => vec!["g++".to_string(), "c++".to_string()],
    };
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The stage, made once per test binary.
pub fn stage() -> &'static Stage {
    static STAGE: OnceLock<Stage> = OnceLock::new();
    STAGE.get_or_init(make_stage)
}

fn make_stage() -> Stage {
    let profile = profile_dir();
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "ctest".into());
    let root = profile.join("libais-ctest").join(name);
    let _ = fs::remove_dir_all(&root);
    let include = root.join("include");
    let lib = root.join("lib");
    let bin = root.join("bin");
    for d in [&include, &lib, &bin] {
        fs::create_dir_all(d).expect("stage directory");
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for h in HEADERS {
        fs::copy(crate_dir.join("include").join(h), include.join(h)).expect("header copied");
    }
    // `cargo test` builds the rlib the tests link, not the cdylib: build
    // it (a no-op when `make test`'s `cargo build` already did).
    build_cdylib(&profile);
    // The cdylib (lib name "ais" in Cargo.toml): libais.so.
    let built = profile.join("libais.so");
    assert!(
        built.is_file(),
        "{} is missing: cargo builds it with the tests",
        built.display()
    );
    fs::copy(&built, lib.join("libais.so.1")).expect("library copied");
    std::os::unix::fs::symlink("libais.so.1", lib.join("libais.so")).expect("symlink");
    Stage {
        root,
        include,
        lib,
        bin,
        ctest: crate_dir.join("ctest"),
    }
}

/// Runs `cargo build -p libais --lib` for the profile whose output
/// directory is `profile` (`debug`: dev, else its own name).
fn build_cdylib(profile: &Path) {
    let dir = profile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cargo_profile = if dir == "debug" {
        "dev".to_string()
    } else {
        dir
    };
    let target_dir = profile.parent().expect("target directory");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "libais", "--lib", "--profile"])
        .arg(&cargo_profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = run(&mut cmd) {
        panic!("building libais.so: {e}");
    }
}

/// The flags every C compilation gets.
pub const C_FLAGS: [&str; 5] = ["-Wall", "-Wextra", "-Werror", "-std=c99", "-pedantic"];

/// Runs `cmd`, returning its output, or its stderr as the error.
pub fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{cmd:?} did not start: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Compiles `ctest/<source>` (with `extra` flags) against the staged
/// headers and library into `bin/<name>`; returns the program's path.
/// Each program is built once per test binary: tests running in parallel
/// share it (rewriting a program another test runs fails with ETXTBSY).
///
/// # Panics
/// When it does not compile, with the compiler's output.
pub fn build_c(source: &str, extra: &[&str]) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("{source} {}", extra.join(" "));
    if let Some(prog) = built.get(&key) {
        return prog.clone();
    }
    let prog = compile_c(source, extra);
    built.insert(key, prog.clone());
    prog
}

fn compile_c(source: &str, extra: &[&str]) -> PathBuf {
    let s = stage();
    let name = source.trim_end_matches(".c");
    let out = s.bin.join(name);
    let mut cmd = Command::new(cc());
    cmd.args(C_FLAGS)
        .arg("-D_DEFAULT_SOURCE")
        .arg("-I")
        .arg(&s.include)
        .arg(s.ctest.join(source))
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(&s.lib)
        .arg(format!("-Wl,-rpath,{}", s.lib.display()))
        .arg("-lais")
        .arg("-lpthread");
    if let Err(e) = run(&mut cmd) {
        panic!("{source} does not build: {e}");
    }
    out
}
