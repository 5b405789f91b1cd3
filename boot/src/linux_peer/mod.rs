//! `--linux-peer[=PROGRAM]`: a user program on our kernel, then on a Linux guest in
//! the same QEMU machine, and the two side by side. The programs ([`Program`]):
//! `swapload` (swap throughput under pressure, the default), `bench` (the
//! fault-path benchmark), `vmascale` (the scaling table), `thp` (`thpfork`: huge
//! against 4 KiB pages on the same rows) and `files` (`filebench`,
//! file I/O on an ext2 disk: Linux
//! gets its own ext2 image made from the same staging tree as ours, mounted at
//! `/mnt` by its `/init`).
//!
//! ```text
//! 1. our kernel  disk image, command line + run=PROGRAM, fresh swap disk  (main.rs)
//! 2. Linux       Debian's kernel + busybox, fetched once (fetch)
//!                -> initramfs with PROGRAM and /init (initramfs, cpio, module_order)
//!                -> qemu -kernel vmlinuz -initrd initrd.cpio, fresh swap disk
//!    both guests get qemu::add_machine: the same RAM, CPU, accelerator, swap disk
//!    size and virtio-blk device; their consoles are printed as they come
//!                files: + an ext2 image of the staging tree (ours has one too), /dev/vdb
//! 3. the table   both consoles read back (report for swapload, bench_report for
//!                bench, vmascale and thp, files_report for files); exit 0 if both ran the
//!                program to its end
//! ```
//!
//! Linux runs the very file our kernel ran ([`program_file`]). Linux's files, the
//! initramfs and its swap disk live in the cache directory, `target/linux-peer/`.

mod bench_report;
mod fetch;
mod files_report;
mod initramfs;
mod module_order;
mod program_file;
mod report;
mod row_output;
mod scaling;

pub use scaling::run as run_scaling;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::options::{Accel, Options};
use crate::qemu::{self, Ending};

/// The user program both guests run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    /// `swapload`: swap throughput, 256 MiB through a 128 MiB machine.
    Swapload,
    /// `bench`: the fault paths, fork, mmap and a syscall, in ns per operation.
    Bench,
    /// `filebench` (`--linux-peer=files`): file I/O through an ext2 disk.
    Files,
    /// `vmascale`: mmap, faults, fork and munmap against the VMA count and the size.
    Vmascale,
    /// `thpfork` (`--linux-peer=thp`): write fault, fork and munmap with huge and
    /// with 4 KiB pages, and the copy-on-write of huge pages after fork.
    Thp,
    /// `pagefault_c` (`--linux-peer=pagefault`): will-it-scale's page_fault1 and
    /// page_fault2, processes and threads, on 1 CPU and on 2 ([`scaling`]).
    Pagefault,
}

impl Program {
    /// Every program, in the order the usage text names them.
    pub const ALL: [Program; 6] =
        [Program::Swapload, Program::Bench, Program::Files, Program::Vmascale, Program::Thp, Program::Pagefault];

    /// Returns the program's name: its file name in `kernel/user/src/bin/`.
    pub fn name(self) -> &'static str {
        match self {
            Program::Swapload => "swapload",
            Program::Bench => "bench",
            Program::Files => "filebench",
            Program::Vmascale => "vmascale",
            Program::Thp => "thpfork",
            Program::Pagefault => "pagefault_c",
        }
    }

    /// Returns the name `--linux-peer=NAME` takes: the program's, except `files`
    /// and `thp`.
    pub fn flag_name(self) -> &'static str {
        match self {
            Program::Files => "files",
            Program::Thp => "thp",
            Program::Pagefault => "pagefault",
            other => other.name(),
        }
    }

    /// Returns the program called `name` (as `--linux-peer=` names it), or an error
    /// naming the known ones.
    pub fn from_name(name: &str) -> Result<Program, String> {
        Program::ALL.into_iter().find(|p| p.flag_name() == name).ok_or_else(|| {
            let known: Vec<&str> = Program::ALL.iter().map(|p| p.flag_name()).collect();
            format!("--linux-peer: unknown program {name:?} (known: {})", known.join(", "))
        })
    }

    /// Guest RAM unless `--memory` says otherwise: for swapload half of what it
    /// maps; for bench the kernel's default, which leaves Linux the 2 x 64 MiB and
    /// more that the bench needs free.
    pub fn memory(self) -> &'static str {
        match self {
            Program::Swapload => "128M",
            Program::Bench | Program::Files | Program::Pagefault => "256M",
            Program::Vmascale => "1G",
            // Fork of 512 MiB needs it free twice over.
            Program::Thp => "1280M",
        }
    }

    /// Root disk size unless `--root-size` says otherwise: files needs room for its
    /// 64 MiB file beside the programs in `/bin`; the others the runner's default.
    pub fn root_size(self) -> Option<u64> {
        match self {
            Program::Files => Some(192 << 20),
            // Two 16 MiB files (holes) beside the programs, with room to spare.
            Program::Pagefault => Some(96 << 20),
            Program::Swapload | Program::Bench | Program::Vmascale | Program::Thp => None,
        }
    }

    /// Does Linux need the ext2 root disk too (the program works on a disk's file system)?
    fn needs_root_disk(self) -> bool {
        matches!(self, Program::Files | Program::Pagefault)
    }

    /// Swap disk size unless `--swap-size` says otherwise (bench swaps nothing: the
    /// kernel's default).
    pub fn swap_size(self) -> u64 {
        match self {
            Program::Swapload => 512 << 20,
            Program::Bench | Program::Files | Program::Vmascale | Program::Thp | Program::Pagefault => 256 << 20,
        }
    }

    /// A string only this program's file contains (see [`program_file`]).
    fn marker(self) -> &'static [u8] {
        match self {
            Program::Swapload => b"swapload: region_mib=",
            Program::Bench => b"bench: warm-up wrote ",
            Program::Files => b"filebench: a ",
            Program::Vmascale => b"vmascale: scaling rows",
            Program::Thp => b"thpfork: huge against 4 KiB pages",
            Program::Pagefault => b"pagefault: page_fault1/2 against",
        }
    }
}

/// What one comparison found: the table, and what went wrong on either side.
pub struct Outcome {
    /// The side-by-side table, ready to print.
    pub table: String,
    /// Why our side did not run the program to its end, if it did not.
    pub ours_failure: Option<String>,
    /// Why Linux's side did not, if it did not.
    pub linux_failure: Option<String>,
}

/// The Linux kernel's command line: console on the serial port, reboot (so QEMU
/// exits, `-no-reboot`) at once on a panic, few boot messages, and no boot-time
/// check of the 8254 timer through the I/O APIC (`no_timer_check`, as virtualised
/// guests boot): under TCG on a loaded host the check misses its ticks and Linux
/// panics ("IO-APIC + timer doesn't work!") before the benchmark starts. It changes
/// nothing after boot.
const LINUX_CMDLINE: &str = "console=ttyS0 panic=-1 quiet no_timer_check";

/// Returns the cache directory: `linux-peer/` in cargo's target directory.
fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("boot/ is inside the workspace").join("target")
    });
    target.join("linux-peer")
}

/// Reads both consoles as `program`'s output; `linux` is `None` when Linux did not run.
fn compare(program: Program, ours: &[String], linux: Option<&[String]>, machine: &str) -> Outcome {
    match program {
        Program::Swapload => report::outcome(ours, linux, machine),
        Program::Bench | Program::Vmascale | Program::Thp => bench_report::outcome(ours, linux, machine),
        Program::Files => files_report::outcome(ours, linux, machine),
        Program::Pagefault => unreachable!("pagefault runs four guests: scaling::run"),
    }
}

/// Runs both guests (ours with `our_kernel`, the command main built, which runs
/// `program`) and prints the table; returns the runner's exit code, or an error if
/// Linux could not be prepared.
pub fn run(opts: &Options, program: Program, our_kernel: Command) -> Result<i32, String> {
    let name = program.name();
    eprintln!("linux-peer: 1/2: our kernel runs {name} on {}", machine(opts));
    let ours_run = qemu::run_capturing(opts, our_kernel)?;
    let ours_code = qemu::exit_code(&ours_run.ending);
    let linux = match boot_linux(opts, program) {
        Ok(linux) => linux,
        Err(e) => {
            print!("{}", compare(program, &ours_run.lines, None, &machine(opts)).table);
            return Err(e);
        }
    };
    let outcome = compare(program, &ours_run.lines, Some(&linux), &machine(opts));
    print!("{}", outcome.table);
    let mut failures = Vec::new();
    if let Some(failure) = outcome.ours_failure {
        failures.push(format!("our kernel: {name} {failure} (runner exit code {ours_code})"));
    } else if ours_code != qemu::EXIT_SUCCESS {
        failures.push(format!("our kernel: runner exit code {ours_code}"));
    }
    if let Some(failure) = outcome.linux_failure {
        failures.push(format!("Linux: {name} {failure}"));
    }
    if failures.is_empty() {
        return Ok(qemu::EXIT_SUCCESS);
    }
    eprintln!("linux-peer: FAILED: {}", failures.join("; "));
    Ok(qemu::EXIT_FAILURE)
}

/// Describes the machine both guests run on.
fn machine(opts: &Options) -> String {
    let accel = match opts.accel {
        Accel::Tcg => "TCG, -cpu max",
        Accel::Kvm => "KVM, -cpu host",
    };
    let cpus = if opts.nr_cpus == 1 { "1 CPU".to_string() } else { format!("{} CPUs", opts.nr_cpus) };
    format!("QEMU, {} RAM, {cpus} ({accel}), {} MiB swap on virtio-blk", opts.memory, opts.swap_size >> 20)
}

/// Prepares the Linux guest, boots it with `program`, and returns its console lines.
fn boot_linux(opts: &Options, program: Program) -> Result<Vec<String>, String> {
    let name = program.name();
    let cache = cache_dir();
    let files = fetch::linux_files(&cache)?;
    let kernel_image = std::fs::read(&opts.kernel).map_err(|e| format!("reading {}: {e}", opts.kernel.display()))?;
    let elf = program_file::for_kernel(&kernel_image, name, program.marker())?;
    eprintln!("linux-peer: {name} for Linux: the copy embedded in the kernel image, {} bytes", elf.len());
    let initrd = cache.join("initrd.cpio");
    let archive = initramfs::build(&files, name, elf, program.needs_root_disk())?;
    std::fs::write(&initrd, archive).map_err(|e| format!("writing {}: {e}", initrd.display()))?;
    let swap = cache.join("swap.img");
    crate::image::fresh_disk(&swap, opts.swap_size)?;
    let root = if program.needs_root_disk() { Some(linux_root_disk(opts, &cache)?) } else { None };

    let mut cmd = Command::new("qemu-system-x86_64");
    qemu::add_machine(&mut cmd, opts, &swap);
    if let Some(root) = &root {
        // After the swap disk: Linux names it /dev/vdb (init checks its serial).
        qemu::add_root_disk(&mut cmd, root);
    }
    cmd.arg("-kernel").arg(&files.vmlinuz).arg("-initrd").arg(&initrd).args(["-append", LINUX_CMDLINE]);
    cmd.args(&opts.qemu_args);
    if std::env::var_os("KERNEL_VERBOSE").is_some() {
        eprintln!("boot: {cmd:?}");
    }
    eprintln!("linux-peer: 2/2: Linux {} runs {name} on the same machine", files.release);
    let linux_run = qemu::run_capturing(opts, cmd);
    if let Some(root) = &root {
        let _ = std::fs::remove_file(root);
    }
    let linux_run = linux_run?;
    match linux_run.ending {
        Ending::Exited(status) if status.success() => {}
        Ending::Exited(status) | Ending::ExitedDespiteAnnouncedHang(status) => {
            eprintln!("linux-peer: QEMU with Linux exited with {status}");
        }
        Ending::TimedOut { after, .. } => {
            eprintln!("linux-peer: timeout: QEMU with Linux killed after {} s (--timeout SECS)", after.as_secs());
        }
    }
    Ok(linux_run.lines)
}

/// Makes Linux's ext2 disk: the same staging tree as ours (`--root`, default
/// `rootfs/`, plus the kernel image's programs in `/bin`), the same size, in the
/// cache directory; returns its path. The caller deletes it after the run.
fn linux_root_disk(opts: &Options, cache: &Path) -> Result<PathBuf, String> {
    let tree = opts.root.as_deref().ok_or("--linux-peer=files needs a root disk (not --root none)")?;
    let (staged, _) = crate::staging::stage(&opts.kernel, tree)?;
    let image = cache.join("linux-root.img");
    let built = crate::root_disk::build_at(&staged, &image, opts.root_size);
    crate::staging::remove(&staged);
    built?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_by_name_and_unknown_names_are_errors() {
        assert_eq!(Program::from_name("swapload"), Ok(Program::Swapload));
        assert_eq!(Program::from_name("bench"), Ok(Program::Bench));
        assert_eq!(Program::from_name("files"), Ok(Program::Files));
        assert_eq!(Program::Files.name(), "filebench", "the program the flag runs");
        let err = Program::from_name("benhc").unwrap_err();
        assert!(err.contains("\"benhc\"") && err.contains("swapload, bench, files, vmascale, thp, pagefault"), "{err}");
        assert!(Program::from_name("filebench").is_err(), "the flag is `files`");
        assert_eq!(Program::from_name("pagefault"), Ok(Program::Pagefault));
        assert_eq!(Program::Pagefault.name(), "pagefault_c", "the C program, with pthreads");
    }
}
