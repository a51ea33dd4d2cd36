//! The backup manifest and data file readers (proto::backup_file) on
//! arbitrary bytes: they must never panic, never allocate by an unchecked
//! length, and what decodes must encode back to the same manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::backup_file::{read_data_file, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::decode(data) {
        let again = Manifest::decode(&m.encode()).expect("a decoded manifest re-encodes");
        assert_eq!(again, m);
    }
    // Also with a valid trailer, so the parser (not only the CRC check)
    // sees the forged fields.
    if data.len() >= 8 {
        let mut v = b"AISBKMAN".to_vec();
        v.extend_from_slice(&data[8..]);
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        let _ = Manifest::decode(&v);
    }
    let _ = read_data_file(data);
});
