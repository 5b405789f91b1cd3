//! The Linux guest's initramfs: busybox, the virtio modules, `swapload`, and an
//! `/init` script that turns the virtio disk into swap, runs `swapload` and powers off.
//!
//! ```text
//! /init                      the script below (busybox sh)
//! /bin/busybox               every other command is a symlink to it, made by /init
//! /lib/modules/<name>.ko     loaded by /init in dependency order (`module_order`)
//! /swapload                  the same ELF file our kernel ran
//! /dev/console, /proc, /sys  the console init's output goes to; mount points
//! ```
//!
//! The lines the runner reads back start with `linux-peer:` (the kernel version and
//! the THP mode; swapload's exit status) or `swapload:` (the program's own).

use super::fetch::LinuxFiles;
use super::module_order;
use crate::cpio::NewcArchive;

/// What `/init` prints before swapload, followed by the kernel release and THP mode.
pub const KERNEL_LINE: &str = "linux-peer: kernel ";
/// What `/init` prints after swapload, followed by its exit status.
pub const EXIT_LINE: &str = "linux-peer: swapload exited with ";

/// Returns the initramfs (a newc cpio archive) for `files` and the `swapload` ELF.
pub fn build(files: &LinuxFiles, swapload: &[u8]) -> Result<Vec<u8>, String> {
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
    for dir in ["bin", "dev", "proc", "sys", "lib", "lib/modules"] {
        archive.dir(dir, 0o755);
    }
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("init", 0o755, init_script(&order).as_bytes());
    archive.file("bin/busybox", 0o755, &busybox);
    for (name, _, ko) in &modules {
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, ko);
    }
    archive.file("swapload", 0o755, swapload);
    Ok(archive.finish())
}

/// Returns `/init`: mount the pseudo file systems, load `modules` in this order,
/// wait for the disk, make it swap, say what kernel this is, run swapload, power off
/// (QEMU then exits, `-no-reboot`).
pub fn init_script(modules: &[String]) -> String {
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
/swapload
echo "{EXIT_LINE}$?"
poweroff -f
"#,
        modules = modules.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_loads_the_modules_in_the_given_order() {
        let script = init_script(&["virtio".into(), "virtio_ring".into(), "virtio_blk".into()]);
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        assert!(script.contains("for m in virtio virtio_ring virtio_blk; do insmod /lib/modules/$m.ko"));
        let swapon = script.find("swapon /dev/vda").unwrap();
        assert!(swapon < script.find("/swapload\n").unwrap());
        assert!(script.contains("echo \"linux-peer: swapload exited with $?\""));
        assert!(script.trim_end().ends_with("poweroff -f"));
    }
}
