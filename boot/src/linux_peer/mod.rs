//! `--linux-peer`: the `swapload` benchmark on our kernel, then on a Linux guest in
//! the same QEMU machine, and the two side by side.
//!
//! ```text
//! 1. our kernel  disk image, command line + run=swapload, fresh swap disk  (main.rs)
//! 2. Linux       Debian's kernel + busybox, fetched once (fetch)
//!                -> initramfs with swapload and /init (initramfs, cpio, module_order)
//!                -> qemu -kernel vmlinuz -initrd initrd.cpio, fresh swap disk
//!    both guests get qemu::add_machine: the same RAM, CPU, accelerator, swap disk
//!    size and virtio-blk device; their consoles are printed as they come
//! 3. the table   both consoles read back (report); exit 0 if both printed
//!                swapload's "ok" line
//! ```
//!
//! Linux runs the very `swapload` file our kernel ran ([`swapload`]). Linux's files, the
//! initramfs and its swap disk live in the cache directory, `target/linux-peer/`.

mod fetch;
mod initramfs;
mod module_order;
mod report;
mod swapload;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::options::{Accel, Options};
use crate::qemu::{self, Ending};
use report::SwaploadRun;

/// The Linux kernel's command line: console on the serial port, reboot (so QEMU
/// exits, `-no-reboot`) at once on a panic, few boot messages.
const LINUX_CMDLINE: &str = "console=ttyS0 panic=-1 quiet";

/// Returns the cache directory: `linux-peer/` in cargo's target directory.
fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("boot/ is inside the workspace").join("target")
    });
    target.join("linux-peer")
}

/// Runs both guests (ours with `our_kernel`, the command main built) and prints the
/// table; returns the runner's exit code, or an error if Linux could not be prepared.
pub fn run(opts: &Options, our_kernel: Command) -> Result<i32, String> {
    eprintln!("linux-peer: 1/2: our kernel runs swapload on {}", machine(opts));
    let ours_run = qemu::run_capturing(opts, our_kernel)?;
    let ours_code = qemu::exit_code(&ours_run.ending);
    let ours = report::parse(&ours_run.lines);
    let linux = match boot_linux(opts) {
        Ok(linux) => linux,
        Err(e) => {
            print!("{}", report::table(&ours, None, &machine(opts)));
            return Err(e);
        }
    };
    print!("{}", report::table(&ours, Some(&linux), &machine(opts)));
    let mut failures = Vec::new();
    if !ours.is_ok || ours_code != qemu::EXIT_SUCCESS {
        failures.push(format!("our kernel: swapload {} (runner exit code {ours_code})", report::verdict(&ours)));
    }
    if !linux.is_ok || linux.exit_status.as_deref() != Some("0") {
        failures.push(format!("Linux: swapload {}", report::verdict(&linux)));
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
    format!("QEMU, {} RAM, 1 CPU ({accel}), {} MiB swap on virtio-blk", opts.memory, opts.swap_size >> 20)
}

/// Prepares the Linux guest, boots it, and returns what its console said.
fn boot_linux(opts: &Options) -> Result<SwaploadRun, String> {
    let cache = cache_dir();
    let files = fetch::linux_files(&cache)?;
    let kernel_image = std::fs::read(&opts.kernel).map_err(|e| format!("reading {}: {e}", opts.kernel.display()))?;
    let swapload = swapload::for_kernel(&kernel_image)?;
    eprintln!("linux-peer: swapload for Linux: the copy embedded in the kernel image, {} bytes", swapload.len());
    let initrd = cache.join("initrd.cpio");
    let archive = initramfs::build(&files, swapload)?;
    std::fs::write(&initrd, archive).map_err(|e| format!("writing {}: {e}", initrd.display()))?;
    let swap = cache.join("swap.img");
    crate::image::fresh_disk(&swap, opts.swap_size)?;

    let mut cmd = Command::new("qemu-system-x86_64");
    qemu::add_machine(&mut cmd, opts, &swap);
    cmd.arg("-kernel").arg(&files.vmlinuz).arg("-initrd").arg(&initrd).args(["-append", LINUX_CMDLINE]);
    cmd.args(&opts.qemu_args);
    if std::env::var_os("KERNEL_VERBOSE").is_some() {
        eprintln!("boot: {cmd:?}");
    }
    eprintln!("linux-peer: 2/2: Linux {} runs swapload on the same machine", files.release);
    let linux_run = qemu::run_capturing(opts, cmd)?;
    match linux_run.ending {
        Ending::Exited(status) if status.success() => {}
        Ending::Exited(status) | Ending::ExitedDespiteAnnouncedHang(status) => {
            eprintln!("linux-peer: QEMU with Linux exited with {status}");
        }
        Ending::TimedOut { after, .. } => {
            eprintln!("linux-peer: timeout: QEMU with Linux killed after {} s (--timeout SECS)", after.as_secs());
        }
    }
    Ok(report::parse(&linux_run.lines))
}
