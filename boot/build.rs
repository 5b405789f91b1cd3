//! Says, once, that the first build is long: the `bootloader` dependency compiles
//! its BIOS and UEFI stages in its own build script, silently, for minutes.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:warning=first build of the boot runner: the bootloader crate compiles its \
         BIOS/UEFI stages now (3-4 minutes on 2 cores, no output meanwhile)"
    );
}
