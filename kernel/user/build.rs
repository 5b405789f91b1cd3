//! Links every user program as a static, non-PIE executable at `abi::USER_IMAGE_BASE`.
//!
//! `x86_64-unknown-none` defaults to static-PIE, which a loader has to relocate.
//! The code is still compiled position-independent; these linker flags only make
//! rust-lld resolve every address at link time (`ET_EXEC`), pick our base address,
//! and start every loadable segment on its own page, so the kernel can map each
//! segment with its own permissions (R, RX, RW) without sharing a page between two.
//! `--strip-debug` drops the DWARF (about 90% of the file; the kernel embeds every
//! program) but keeps the symbol table, so addresses can still be named.
fn main() {
    for arg in [
        "--no-pie".into(),
        format!("--image-base={:#x}", abi::USER_IMAGE_BASE),
        "-zmax-page-size=4096".into(),
        "-zseparate-loadable-segments".into(),
        "--strip-debug".into(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
