//! Fuzzes the daemon's config parser: the brace syntax and the typed
//! model built from it, as `aisexec -c FILE` reads a file, and the
//! mapping of a parsed config onto Totem's settings. Nothing may panic; a
//! rejected file's error must carry a line inside the file.

#![no_main]

use aisexec::config::ClusterConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ClusterConfig::parse("fuzz.conf", data) {
        Ok((cfg, _warnings)) => {
            for node in &cfg.nodes {
                let _ = cfg.node_addr(node);
                let _ = cfg.totem_config(node.node_id);
            }
        }
        Err(e) => {
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(
                e.line >= 1 && (e.line as usize) <= lines + 1,
                "error at line {} of a {lines}-line file",
                e.line
            );
            assert_eq!(e.file, "fuzz.conf");
        }
    }
});
