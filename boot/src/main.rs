//! `boot`: the host program behind `cargo run` and `cargo test` for the kernel.
//!
//! Cargo calls it as the runner of every kernel ELF (see `.cargo/config.toml`):
//! it builds a BIOS (or UEFI) disk image with the `bootloader` crate, creates a
//! fresh swap disk and the root disk (an ext2 image of `rootfs/`, checked with
//! `e2fsck` afterwards: [`root_disk`]), starts QEMU, forwards the serial console, enforces a timeout,
//! and exits with a code a shell or CI understands (see [`qemu`] for the table).
//!
//! With `--linux-peer` it runs the `swapload` benchmark on the kernel, then boots
//! a Linux guest on the same QEMU machine with the same program, and prints both
//! side by side (see [`linux_peer`]); `--linux-peer=bench` does the same with the
//! fault-path benchmark `bench`.
//!
//! Modules: [`options`] (flags and variables), [`image_args`] (flags an image
//! carries), [`image`] (disk images), [`staging`] (the root disk's tree: `rootfs/`
//! plus the programs in `/bin`), [`root_disk`] (the ext2 root disk), [`qemu`] (the machine, running it), [`script`] (typing a file into the console),
//! [`linux_peer`] and [`cpio`] (the Linux guest and its initramfs).

mod cpio;
mod image;
mod image_args;
mod linux_peer;
mod options;
mod qemu;
mod root_disk;
mod script;
mod staging;

use std::process::Command;

use options::Options;

fn main() {
    std::process::exit(match try_main() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("boot: {message}");
            qemu::EXIT_ABNORMAL
        }
    });
}

fn try_main() -> Result<i32, String> {
    let opts = Options::parse(std::env::args().skip(1))?;
    if opts.linux_peer == Some(linux_peer::Program::Pagefault) {
        // Four guests, each with its own disks (1 CPU and 2, ours and Linux).
        return linux_peer::run_scaling(&opts, &mut our_kernel_command);
    }
    let (cmd, root) = our_kernel_command(&opts)?;
    let code = match opts.linux_peer {
        Some(program) => linux_peer::run(&opts, program, cmd)?,
        None => qemu::run(&opts, cmd)?,
    };
    // The file system the kernel leaves behind must be consistent, whatever it printed.
    if let Some(root) = root {
        if let Err(report) = root_disk::check(&root) {
            eprintln!("boot: {report}");
            return Ok(if code == qemu::EXIT_SUCCESS { qemu::EXIT_FAILURE } else { code });
        }
        // What the kernel wrote, read back by another implementation of ext2. Only
        // after a run of every test: a filtered run may not have written the file.
        let is_filtered = opts.cmdline.contains("test.filter=");
        if code == qemu::EXIT_SUCCESS && !is_filtered {
            for (path, content) in &opts.root_expect {
                if let Err(report) = root_disk::expect_file(&root, path, content) {
                    eprintln!("boot: the root disk does not hold what the kernel wrote: {report}");
                    return Ok(qemu::EXIT_FAILURE);
                }
                eprintln!("boot: {path} read back on the host with debugfs: as the kernel wrote it");
            }
        }
    }
    Ok(code)
}

/// Builds the disk image, a fresh swap disk and the root disk for our kernel, and
/// returns the QEMU command that boots them, with the root disk's path.
fn our_kernel_command(opts: &Options) -> Result<(Command, Option<std::path::PathBuf>), String> {
    let verbose = std::env::var_os("KERNEL_VERBOSE").is_some();
    let image = image::build_disk_image(&opts.kernel, opts.uefi, verbose)?;
    let swap = image::fresh_swap_disk(&opts.kernel, opts.swap_size)?;
    let root = match opts.root.as_deref() {
        Some(tree) => {
            let (staged, nr_programs) = staging::stage(&opts.kernel, tree)?;
            let image = root_disk::build(&opts.kernel, &staged, opts.root_size);
            staging::remove(&staged);
            if verbose {
                eprintln!("boot: root disk: {} plus {nr_programs} programs in /bin", tree.display());
            }
            Some(image?)
        }
        None => None,
    };
    if opts.uefi && !std::path::Path::new("/usr/share/OVMF/OVMF_CODE.fd").exists() {
        return Err("--uefi needs OVMF: `sudo apt-get install -y ovmf`".into());
    }
    if opts.gdb {
        eprintln!("boot: QEMU waits for gdb on localhost:1234; in another terminal run:");
        eprintln!(
            "  gdb {} -ex 'target remote localhost:1234' -ex 'break kernel_main' -ex continue",
            opts.kernel.display()
        );
    }
    let cmd = qemu::command(opts, &image, &swap, root.as_deref());
    if verbose {
        eprintln!("boot: {cmd:?}");
    }
    Ok((cmd, root))
}
