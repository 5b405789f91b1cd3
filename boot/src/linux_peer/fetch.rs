//! Linux for the peer guest: Debian's own kernel, its virtio and ext2 modules and busybox,
//! fetched once with apt and kept in the cache directory (`target/linux-peer/`).
//!
//! ```text
//! apt-cache depends linux-image-amd64       -> linux-image-6.1.0-56-amd64 (apt-get update once if unknown)
//! apt-get download <that> busybox-static    -> debs/*.deb (kept)
//! dpkg-deb -x each .deb unpacked.tmp/       -> vmlinuz, busybox, the .ko files copied to
//!                                              <release>/{vmlinuz, busybox, modules/*.ko}
//! ```
//!
//! A `<release>` directory is complete or absent: it is filled as `<release>.partial`
//! and renamed. Later runs use it without asking apt anything; deleting the cache
//! directory fetches again (the newest kernel Debian has then).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The metapackage whose dependency names the current kernel package.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
/// The package with a statically linked busybox.
const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The modules the guest needs: for its disks the virtio PCI transports, the virtio
/// core and ring, and virtio-blk; for the ext2 disk of `--linux-peer=files`, ext4
/// (Debian 12 has no ext2 driver: `CONFIG_EXT4_USE_FOR_EXT2=y`, ext4 mounts ext2)
/// and what it links against (jbd2, mbcache, crc16), and crc32c for its checksum
/// driver. Debian builds them all as modules.
pub const MODULES: [&str; 11] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_blk",
    "crc16",
    "mbcache",
    "jbd2",
    "crc32c_generic",
    "ext4",
];

/// The files the Linux guest is made of.
#[derive(Debug)]
pub struct LinuxFiles {
    /// The kernel release, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// The compressed kernel image QEMU boots with `-kernel`.
    pub vmlinuz: PathBuf,
    /// The static busybox: the guest's shell and tools.
    pub busybox: PathBuf,
    /// The `.ko` files of [`MODULES`], in that order.
    pub modules: Vec<PathBuf>,
}

impl LinuxFiles {
    /// Returns where the files of `release` are (or will be) in directory `dir`.
    fn in_dir(dir: &Path, release: &str) -> LinuxFiles {
        LinuxFiles {
            release: release.to_string(),
            vmlinuz: dir.join("vmlinuz"),
            busybox: dir.join("busybox"),
            modules: MODULES.iter().map(|m| dir.join("modules").join(format!("{m}.ko"))).collect(),
        }
    }

    fn is_complete(&self) -> bool {
        self.vmlinuz.is_file() && self.busybox.is_file() && self.modules.iter().all(|m| m.is_file())
    }
}

/// Returns the Linux files from `cache`, fetching and unpacking them first if the
/// cache has none. Errors say what failed and what the peer needs.
pub fn linux_files(cache: &Path) -> Result<LinuxFiles, String> {
    if let Some(files) = cached(cache) {
        eprintln!("linux-peer: Linux {} from {} (cached)", files.release, cache.display());
        return Ok(files);
    }
    fetch(cache).map_err(|failure| needs_debian(&failure, cache))
}

/// Returns the complete set of files in `cache`, if there is one (the last release
/// by name if there are several).
fn cached(cache: &Path) -> Option<LinuxFiles> {
    let mut releases: Vec<String> = std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name != "debs" && !name.ends_with(".partial") && !name.ends_with(".tmp"))
        .collect();
    releases.sort();
    releases.iter().rev().map(|release| LinuxFiles::in_dir(&cache.join(release), release)).find(LinuxFiles::is_complete)
}

/// Says what failed, and what the peer needs, in one paragraph.
fn needs_debian(failure: &str, cache: &Path) -> String {
    format!(
        "the Linux guest of --linux-peer could not be prepared: {failure}. The peer boots Debian's own kernel \
         (what {KERNEL_METAPACKAGE} depends on: Linux 6.1 on Debian 12) with {BUSYBOX_PACKAGE}, which the runner \
         downloads once with `apt-get download` and unpacks with `dpkg-deb -x` into {}; so it needs a Debian host \
         with apt and dpkg and access to Debian's package mirror (`apt-get update` must have run, or be allowed to \
         run). Our kernel's numbers, printed above, stand on their own.",
        cache.display()
    )
}

/// Downloads and unpacks the packages into `cache`.
fn fetch(cache: &Path) -> Result<LinuxFiles, String> {
    let package = kernel_package()?;
    let release = package.strip_prefix("linux-image-").unwrap_or(&package).to_string();
    let debs = cache.join("debs");
    recreate_dir(&debs)?;
    eprintln!(
        "linux-peer: downloading {package} and {BUSYBOX_PACKAGE} (about 70 MB, once) into {} ...",
        debs.display()
    );
    // As root, apt would download as its `_apt` user, which cannot write here: it
    // warns and downloads as root. Saying root from the start spares the warning.
    let as_root = ["-o", "APT::Sandbox::User=root"];
    run_tool(Command::new("apt-get").args(as_root).args(["download", &package, BUSYBOX_PACKAGE]).current_dir(&debs))?;
    let unpacked = cache.join("unpacked.tmp");
    recreate_dir(&unpacked)?;
    for deb in std::fs::read_dir(&debs).map_err(|e| format!("listing {}: {e}", debs.display()))?.flatten() {
        eprintln!("linux-peer: unpacking {} ...", deb.file_name().to_string_lossy());
        run_tool(Command::new("dpkg-deb").arg("-x").arg(deb.path()).arg(&unpacked))?;
    }
    let partial = cache.join(format!("{release}.partial"));
    recreate_dir(&partial.join("modules"))?;
    pick_files(&unpacked, &release, &LinuxFiles::in_dir(&partial, &release))?;
    let done = cache.join(&release);
    std::fs::rename(&partial, &done).map_err(|e| format!("renaming {}: {e}", partial.display()))?;
    let _ = std::fs::remove_dir_all(&unpacked);
    eprintln!("linux-peer: Linux {release} is ready in {}", done.display());
    Ok(LinuxFiles::in_dir(&done, &release))
}

/// Copies the guest's files out of the unpacked packages in `unpacked` to `to`.
fn pick_files(unpacked: &Path, release: &str, to: &LinuxFiles) -> Result<(), String> {
    copy(&unpacked.join("boot").join(format!("vmlinuz-{release}")), &to.vmlinuz)?;
    let busybox = ["bin/busybox", "usr/bin/busybox"].iter().map(|p| unpacked.join(p)).find(|p| p.is_file());
    copy(&busybox.ok_or(format!("{BUSYBOX_PACKAGE} has no bin/busybox"))?, &to.busybox)?;
    let tree = ["lib", "usr/lib"]
        .iter()
        .map(|lib| unpacked.join(lib).join("modules").join(release))
        .find(|p| p.is_dir())
        .ok_or(format!("the kernel package has no lib/modules/{release}"))?;
    for (name, dest) in MODULES.iter().zip(&to.modules) {
        let Some(ko) = find_file(&tree, &format!("{name}.ko")) else {
            let compressed = ["xz", "zst", "gz"].iter().any(|z| find_file(&tree, &format!("{name}.ko.{z}")).is_some());
            let why = if compressed { "only compressed, which busybox insmod cannot load" } else { "missing" };
            return Err(format!("module {name}.ko is {why} in {}", tree.display()));
        };
        copy(&ko, dest)?;
    }
    Ok(())
}

/// Returns the first file called `name` under `dir`, searching depth first.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            subdirs.push(path);
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    subdirs.sort();
    subdirs.iter().find_map(|sub| find_file(sub, name))
}

/// Returns the kernel package the metapackage depends on, running `apt-get update`
/// first if apt knows no such package yet.
fn kernel_package() -> Result<String, String> {
    let ask = || -> Result<Option<String>, String> {
        let output =
            Command::new("apt-cache").args(["depends", KERNEL_METAPACKAGE]).stderr(Stdio::null()).output().map_err(
                |e| match e.kind() {
                    std::io::ErrorKind::NotFound => "apt-cache is not installed".to_string(),
                    _ => format!("running apt-cache: {e}"),
                },
            )?;
        Ok(kernel_package_in(&String::from_utf8_lossy(&output.stdout)))
    };
    if let Some(package) = ask()? {
        return Ok(package);
    }
    eprintln!("linux-peer: apt knows no {KERNEL_METAPACKAGE}; running `apt-get update` once");
    run_tool(Command::new("apt-get").arg("update"))?;
    ask()?.ok_or(format!("`apt-cache depends {KERNEL_METAPACKAGE}` names no linux-image package"))
}

/// Returns the versioned kernel package in the output of `apt-cache depends
/// linux-image-amd64`: the line `  Depends: linux-image-6.1.0-56-amd64`.
pub fn kernel_package_in(apt_cache_output: &str) -> Option<String> {
    apt_cache_output.lines().find_map(|line| {
        let package = line.trim().strip_prefix("Depends:")?.trim();
        let version = package.strip_prefix("linux-image-")?;
        version.starts_with(|c: char| c.is_ascii_digit()).then(|| package.to_string())
    })
}

/// Runs a packaging tool with its output on our stderr; fails unless it succeeds.
fn run_tool(cmd: &mut Command) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let status = cmd.stdout(Stdio::from(std::io::stderr())).status().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{program} is not installed"),
        _ => format!("running {program}: {e}"),
    })?;
    if !status.success() {
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        return Err(format!("`{program} {}` failed ({status})", args.join(" ")));
    }
    Ok(())
}

/// Creates `dir` empty (removing what was there).
fn recreate_dir(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_package_is_read_from_apt_cache_depends() {
        let output = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(kernel_package_in(output).as_deref(), Some("linux-image-6.1.0-56-amd64"));
        let other =
            "linux-image-amd64\n  Depends: linux-image-amd64-signed-template\n  Depends: linux-image-6.12.9-amd64\n";
        assert_eq!(kernel_package_in(other).as_deref(), Some("linux-image-6.12.9-amd64"));
        assert_eq!(kernel_package_in("W: Unable to locate package linux-image-amd64\n"), None);
    }
}
