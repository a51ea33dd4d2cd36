//! Gives `libais.so` its soname, so C programs linked against it record
//! `libais.so.1` and keep working across compatible library updates.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libais.so.1");
    println!("cargo:rerun-if-changed=build.rs");
}
