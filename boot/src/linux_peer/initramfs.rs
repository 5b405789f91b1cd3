//! The Linux guest's initramfs: busybox, the virtio and ext2 modules, the user
//! program (`swapload`, `bench` or `filebench`), and an `/init` script that turns
//! the first virtio disk into swap, mounts the second (the ext2 root disk, for
//! `filebench`) at `/mnt`, runs the program there and powers off.
//!
//! ```text
//! /init                      the script below (busybox sh)
//! /bin/busybox               every other command is a symlink to it, made by /init
//! /lib/modules/<name>.ko     loaded by /init in dependency order (`module_order`)
//! /<program>                 the same ELF file our kernel ran (/swapload, /bench)
//! /dev/console, /proc, /sys  the console init's output goes to; mount points
//! ```
//!
//! The lines the runner reads back start with `linux-peer:` (the kernel version and
//! the THP mode; the program's exit status, see [`init_line`]) or with the
//! program's name (the program's own: `swapload:`, `bench:`).

use super::fetch::LinuxFiles;
use super::module_order;
use crate::cpio::NewcArchive;

/// What `/init` prints before the program, followed by the kernel release and THP mode.
pub const KERNEL_LINE: &str = "linux-peer: kernel ";
/// How `/init`'s own lines start.
const INIT_PREFIX: &str = "linux-peer: ";
/// What `/init` prints after the program's name when it ends, then its exit status.
const EXITED_WITH: &str = " exited with ";

/// One of the lines `/init` prints about the run.
#[derive(Debug, PartialEq)]
pub enum InitLine<'a> {
    /// The kernel release and the THP mode.
    Kernel(&'a str),
    /// The program's exit status, as the shell's `$?`.
    ExitStatus(&'a str),
}

/// Reads `line` as one of `/init`'s lines about the run, wherever it starts in the
/// serial line (kernel messages may come before it).
pub fn init_line(line: &str) -> Option<InitLine<'_>> {
    if let Some(at) = line.find(KERNEL_LINE) {
        return Some(InitLine::Kernel(line[at + KERNEL_LINE.len()..].trim()));
    }
    let rest = &line[line.find(INIT_PREFIX)? + INIT_PREFIX.len()..];
    let (program, status) = rest.split_once(EXITED_WITH)?;
    (!program.contains(char::is_whitespace)).then(|| InitLine::ExitStatus(status.trim()))
}

/// Returns the initramfs (a newc cpio archive) for `files` and the ELF file `elf`
/// of the program `name`, which runs in the ext2 disk's root if `has_root_disk`.
pub fn build(files: &LinuxFiles, name: &str, elf: &[u8], has_root_disk: bool) -> Result<Vec<u8>, String> {
    let mut modules = Vec::new();
    for path in &files.modules {
        let ko = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        modules.push((module_order::module_name(&stem), module_order::depends(&ko), ko));
    }
    let graph: Vec<(String, Vec<String>)> =
        modules.iter().map(|(name, deps, _)| (name.clone(), deps.clone())).collect();
    let order = module_order::load_order(&graph)?;
    let busybox = std::fs::read(&files.busybox).map_err(|e| format!("reading {}: {e}", files.busybox.display()))?;

    let mut archive = NewcArchive::new();
    for dir in ["bin", "dev", "proc", "sys", "lib", "lib/modules", "mnt"] {
        archive.dir(dir, 0o755);
    }
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("init", 0o755, init_script(&order, name, has_root_disk).as_bytes());
    archive.file("bin/busybox", 0o755, &busybox);
    for (name, _, ko) in &modules {
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, ko);
    }
    archive.file(name, 0o755, elf);
    Ok(archive.finish())
}

/// Returns `/init`: mount the pseudo file systems, load `modules` in this order,
/// wait for the disk, make it swap, say what kernel this is, run `/<program>`,
/// power off (QEMU then exits, `-no-reboot`). With `has_root_disk` the program runs
/// in `/mnt`, where the ext2 disk `/dev/vdb` is mounted, with debugfs mounted (for
/// `fault_around_bytes`).
pub fn init_script(modules: &[String], program: &str, has_root_disk: bool) -> String {
    let run = if has_root_disk { root_disk_lines(program) } else { format!("/{program}") };
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /lib/modules/$m.ko || echo "linux-peer: insmod $m failed"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
mkswap /dev/vda >/dev/null && swapon /dev/vda || echo "linux-peer: no swap on /dev/vda"
echo "{KERNEL_LINE}$(uname -r), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
{run}
echo "{INIT_PREFIX}{program}{EXITED_WITH}$?"
poweroff -f
"#,
        modules = modules.join(" ")
    )
}

/// Returns the lines of `/init` that mount the ext2 disk and run `program` in it
/// (the last line runs the program, so `$?` after them is its exit status).
fn root_disk_lines(program: &str) -> String {
    format!(
        r#"i=0; while [ ! -b /dev/vdb ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo "{INIT_PREFIX}root disk /dev/vdb, serial $(cat /sys/block/vdb/serial 2>/dev/null)"
mount -t ext2 /dev/vdb /mnt || echo "{INIT_PREFIX}mount -t ext2 /dev/vdb /mnt failed"
mount -t debugfs debugfs /sys/kernel/debug || echo "{INIT_PREFIX}no debugfs"
cd /mnt && /{program}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_loads_the_modules_in_the_given_order() {
        let script = init_script(&["virtio".into(), "virtio_ring".into(), "virtio_blk".into()], "swapload", false);
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        assert!(script.contains("for m in virtio virtio_ring virtio_blk; do insmod /lib/modules/$m.ko"));
        let swapon = script.find("swapon /dev/vda").unwrap();
        assert!(swapon < script.find("/swapload\n").unwrap());
        assert!(script.contains("echo \"linux-peer: swapload exited with $?\""));
        assert!(script.trim_end().ends_with("poweroff -f"));
        let bench = init_script(&[], "bench", false);
        assert!(bench.contains("\n/bench\necho \"linux-peer: bench exited with $?\"\n"), "{bench}");
        assert!(!bench.contains("/mnt"), "no disk to mount");
        let files = init_script(&[], "filebench", true);
        let mount = files.find("mount -t ext2 /dev/vdb /mnt").expect("the ext2 disk is mounted");
        let run = files.find("cd /mnt && /filebench\necho \"linux-peer: filebench exited with $?\"").expect("run in /mnt");
        assert!(files.find("swapon /dev/vda").unwrap() < mount && mount < run, "{files}");
    }

    #[test]
    fn init_lines_are_read_back_and_other_lines_are_not() {
        assert_eq!(init_line("linux-peer: kernel 6.1.0-56-amd64, THP [never]\r"), Some(InitLine::Kernel("6.1.0-56-amd64, THP [never]")));
        assert_eq!(init_line("[ 3.1] x linux-peer: bench exited with 0"), Some(InitLine::ExitStatus("0")));
        assert_eq!(init_line("linux-peer: swapload exited with 139"), Some(InitLine::ExitStatus("139")));
        assert_eq!(init_line("run: swapload exited with 0"), None, "our kernel's line is not /init's");
        assert_eq!(init_line("linux-peer: insmod virtio failed"), None);
    }
}
