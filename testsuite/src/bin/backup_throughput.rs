//! Backup and restore throughput on a running cluster (issue #6's closing
//! figures; not part of `make test`).
//!
//! ```text
//! backup_throughput --socket SOCK --dest DIR [--mib 1024] [--checkpoints 64]
//! ```
//! Loads MIB MiB of checkpoint data (CHECKPOINTS checkpoints of 1 MiB
//! sections, written with 1 MiB writes) through the executive at SOCK,
//! then times a backup of everything into DIR (start to completion,
//! manifest flushed) and a restore of it over the same checkpoints
//! (`--overwrite`: unlink, create, write every section through the ring).
//! Prints MiB/s of checkpoint data for each.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ais::backup::{self, Backup, RestoreOptions};
use ais::ckpt::{Ckpt, WriteElement};
use ais::client::ClientConfig;
use proto::ckpt::{CreationAttributes, OPEN_CREATE, OPEN_WRITE, TIME_END, WR_ALL_REPLICAS};
use proto::AisError;

const SECTION_BYTES: usize = 1 << 20;

fn retry<T>(mut f: impl FnMut() -> Result<T, AisError>) -> T {
    loop {
        match f() {
            Ok(v) => return v,
            Err(AisError::TryAgain) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("cluster call failed: {e}"),
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let socket = PathBuf::from(arg(&args, "--socket").expect("--socket SOCK"));
    let dest = PathBuf::from(arg(&args, "--dest").expect("--dest DIR"));
    let mib: usize = arg(&args, "--mib").map_or(1024, |v| v.parse().expect("--mib N"));
    let ckpts: usize = arg(&args, "--checkpoints").map_or(64, |v| v.parse().expect("N"));
    let mut cfg = ClientConfig::with_socket(&socket);
    cfg.timeout = Duration::from_secs(60);
    let per = mib / ckpts;
    let a = CreationAttributes {
        creation_flags: WR_ALL_REPLICAS,
        checkpoint_size: (per * SECTION_BYTES) as u64,
        retention_duration_ns: TIME_END,
        max_sections: per as u32,
        max_section_size: SECTION_BYTES as u64,
        max_section_id_size: 16,
    };
    let mut ck = retry(|| Ckpt::connect_with(&cfg));
    let t = Instant::now();
    let mut data = vec![0u8; SECTION_BYTES];
    for c in 0..ckpts {
        let name = format!("tp-{c:03}");
        let h = retry(|| ck.open(name.as_bytes(), Some(a), OPEN_WRITE | OPEN_CREATE, None));
        for s in 0..per {
            for (i, b) in data.iter_mut().enumerate() {
                *b = (i as u8) ^ (s as u8) ^ (c as u8);
            }
            let id = format!("s{s}");
            retry(|| {
                ck.section_create(&h, id.as_bytes(), TIME_END, &[])
                    .map(|_| ())
            });
            let el = [WriteElement {
                section_id: id.as_bytes(),
                offset: 0,
                data: &data,
            }];
            retry(|| ck.write(&h, &el).map_err(|e| e.error));
        }
        retry(|| ck.close(&h));
    }
    let total = (ckpts * per * SECTION_BYTES) as f64 / (1024.0 * 1024.0);
    let load = t.elapsed();
    println!(
        "load:    {total:.0} MiB in {:.2} s = {:.1} MiB/s",
        load.as_secs_f64(),
        total / load.as_secs_f64()
    );

    let mut b = retry(|| Backup::connect_with(&cfg));
    let t = Instant::now();
    let id = retry(|| b.start(1, &dest, &[]));
    let done = b
        .wait_complete(
            id,
            Duration::from_secs(3600),
            Duration::from_secs(1),
            &mut |_| {},
        )
        .expect("backup ends");
    let took = t.elapsed();
    assert_eq!(done.status, Ok(()), "{:?}", done.job);
    println!(
        "backup:  {total:.0} MiB in {:.2} s = {:.1} MiB/s ({} checkpoints)",
        took.as_secs_f64(),
        total / took.as_secs_f64(),
        done.job.checkpoints_done
    );
    let dir = dest.join(proto::backup_file::backup_dir_name(id));
    let t = Instant::now();
    let r = backup::verify(&dir).expect("verify");
    assert!(r.is_ok());
    println!(
        "verify:  {total:.0} MiB in {:.2} s = {:.1} MiB/s",
        t.elapsed().as_secs_f64(),
        total / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let rep = backup::restore(&cfg, &dir, RestoreOptions { overwrite: true }, &mut |_| {})
        .expect("restore");
    let took = t.elapsed();
    println!(
        "restore: {total:.0} MiB in {:.2} s = {:.1} MiB/s ({} checkpoints, verify included)",
        took.as_secs_f64(),
        total / took.as_secs_f64(),
        rep.checkpoints
    );
}
