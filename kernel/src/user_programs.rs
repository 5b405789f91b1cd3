//! The user programs, embedded in the kernel image as ELF files and found by name.
//!
//! Each program is a binary of the `user` crate (`kernel/user/src/bin/<name>.rs`),
//! linked as a static executable at `abi::USER_IMAGE_BASE`. The kernel crate
//! depends on those binaries through a cargo *artifact dependency*
//! (`user = { ..., artifact = "bin" }` in `kernel/Cargo.toml`, enabled by
//! `[unstable] bindeps` in `.cargo/config.toml`): cargo builds them for
//! `x86_64-unknown-none` before the kernel and tells the compiler where each one is
//! in `CARGO_BIN_FILE_USER_<name>`, which `include_bytes!` reads. Every kernel image,
//! the binary and each test, therefore carries the same table.
//!
//! To add a program: write `kernel/user/src/bin/<name>.rs`, add a `[[bin]]` entry
//! to `kernel/user/Cargo.toml` and its name to the list below.
//!
//! The C programs ([`C_PROGRAMS`]) are `kernel/user/c/<stem>.c`, built by
//! `kernel/build.rs` with `musl-gcc -static` into programs named `<stem>_c`
//! (`hello.c` is `hello_c`); adding the file is all it takes. They are Linux
//! programs: GNU ld lays out their segments (a data segment need not start on a
//! page boundary) and musl's startup code reads the initial stack `proc::exec`
//! builds.
//!
//! The bytes are only a file here; `mm_core::elf` parses them and the process code
//! loads the segments.

/// One embedded user program.
#[derive(Clone, Copy, Debug)]
pub struct UserProgram {
    /// The binary's name, e.g. `"hello"`.
    pub name: &'static str,
    /// The whole ELF file, byte-aligned.
    pub elf: &'static [u8],
}

/// Builds [`PROGRAMS`] from a list of binary names of the `user` crate, and the
/// Rust half of the manifest [`BIN_MANIFEST`].
macro_rules! user_programs {
    ($($name:ident),* $(,)?) => {
        /// Every embedded program, in the order of the list in this file.
        pub static PROGRAMS: &[UserProgram] = &[$(
            UserProgram {
                name: stringify!($name),
                elf: include_bytes!(env!(concat!("CARGO_BIN_FILE_USER_", stringify!($name)))),
            },
        )*];

        /// `name=path` lines of the Rust programs (see [`BIN_MANIFEST`]).
        const RUST_MANIFEST: &str = concat!($(
            stringify!($name), "=", env!(concat!("CARGO_BIN_FILE_USER_", stringify!($name))), "\n",
        )*);
    };
}

user_programs![
    hello, lazy, forkcow, forkstorm, badptr, readkernel, writecode, stackgrow, usefree, mprotect, dontneed, partial,
    brk, memhog, bigfork, shared, bench, pageout, swapfork, swapstress, oomparty, sleeper, swapioerr, swapbench,
    thrash, swapload, sharedbig, orphans,
    sharedprot, forknone, protnone, errno,
    forkenomem, lazyfree,
    vmrw, farfetch,
    sortstorm, failstorm, heapsqueeze, vmaflood,
    fuzz, remanence,
    files, dirs, pipes,
    wsprobe, memlimits, sortsearch,
    thp, thpfork, reclaimscale, vmascale, ksm, pagefault1,
    exectest, mmapfile, mmapshared, mmapdemo, filebench,
    cat, spin, free, sh, echo, kill, sleep, ls, ps, explain, trace, memmap,
    vmstat, pmap, policy, swapinfo, top, hog,
];

include!(concat!(env!("OUT_DIR"), "/c_programs.rs"));

/// Returns `a` then `b` as one array of `N` bytes (`N` = their lengths' sum).
const fn concat_bytes<const N: usize>(a: &str, b: &str) -> [u8; N] {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    assert!(a.len() + b.len() == N, "concat_bytes: N is not the sum of the lengths");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// Where the build left every program, as `name=path` lines, in the ELF section
/// `.user_programs` of every kernel image: the `boot` runner reads it to copy the
/// programs this image was built with into `/bin` of the root disk
/// (`boot/src/root_disk.rs`). The kernel itself never reads it.
#[used]
#[unsafe(link_section = ".user_programs")]
pub static BIN_MANIFEST: [u8; RUST_MANIFEST.len() + C_MANIFEST.len()] = concat_bytes(RUST_MANIFEST, C_MANIFEST);

/// Returns every embedded program: the Rust ones, then the C ones.
pub fn all() -> impl Iterator<Item = &'static UserProgram> {
    // Keep the manifest in the image: the linker drops what nothing names.
    core::hint::black_box(&BIN_MANIFEST);
    PROGRAMS.iter().chain(C_PROGRAMS)
}

/// Returns the ELF file of the program called `name`, if the kernel has one.
pub fn find(name: &str) -> Option<&'static [u8]> {
    all().find(|p| p.name == name).map(|p| p.elf)
}
