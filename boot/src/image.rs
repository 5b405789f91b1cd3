//! From kernel ELF to bootable disk: strip debug info, then let the `bootloader`
//! crate wrap the kernel with its BIOS (or UEFI) stages into a raw disk image.
//!
//! Stripping matters under emulation: the BIOS loader reads the whole file through
//! slow real-mode disk calls, and a debug kernel is mostly DWARF. The unstripped ELF
//! stays where cargo put it, for gdb.

use std::path::{Path, PathBuf};
use std::process::Command;

use bootloader::BootConfig;
use bootloader_boot_config::LevelFilter;

/// Returns `llvm-objcopy` from the toolchain's `llvm-tools-preview`, if installed.
fn llvm_objcopy() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout).ok()?.trim());
    let lib = sysroot.join("lib").join("rustlib");
    std::fs::read_dir(&lib).ok()?.flatten().map(|e| e.path().join("bin").join("llvm-objcopy")).find(|p| p.exists())
}

/// Returns a copy of `kernel` without debug sections (or `kernel` itself if no objcopy).
fn stripped_kernel(kernel: &Path) -> Result<PathBuf, String> {
    let Some(objcopy) = llvm_objcopy() else {
        eprintln!("boot: llvm-objcopy not found (rustup component llvm-tools-preview); booting unstripped");
        return Ok(kernel.to_path_buf());
    };
    let out = kernel.with_extension("stripped");
    let status = Command::new(objcopy)
        .arg("--strip-debug")
        .arg(kernel)
        .arg(&out)
        .status()
        .map_err(|e| format!("running llvm-objcopy: {e}"))?;
    if !status.success() {
        return Err(format!("llvm-objcopy failed on {}", kernel.display()));
    }
    Ok(out)
}

/// Returns the bootloader's own settings: quiet unless `verbose`, serial only.
fn boot_config(verbose: bool) -> BootConfig {
    let mut config = BootConfig::default();
    config.log_level = if verbose { LevelFilter::Info } else { LevelFilter::Warn };
    config.frame_buffer_logging = false;
    config.serial_logging = true;
    config
}

/// Builds the boot disk for `kernel` and returns its path.
pub fn build_disk_image(kernel: &Path, uefi: bool, verbose: bool) -> Result<PathBuf, String> {
    let elf = stripped_kernel(kernel)?;
    let image = kernel.with_extension(if uefi { "uefi.img" } else { "bios.img" });
    let config = boot_config(verbose);
    let result = if uefi {
        bootloader::UefiBoot::new(&elf).set_boot_config(&config).create_disk_image(&image)
    } else {
        bootloader::BiosBoot::new(&elf).set_boot_config(&config).create_disk_image(&image)
    };
    result.map_err(|e| format!("creating the disk image for {}: {e:#}", kernel.display()))?;
    Ok(image)
}

/// Creates a fresh, all-zero sparse swap disk of `size_bytes` next to the kernel.
///
/// Zero means "not formatted": the kernel writes its swap header on first use.
pub fn fresh_swap_disk(kernel: &Path, size_bytes: u64) -> Result<PathBuf, String> {
    let path = kernel.with_extension("swap.img");
    fresh_disk(&path, size_bytes)?;
    Ok(path)
}

/// Creates (or truncates) `path` as an all-zero sparse file of `size_bytes`.
pub fn fresh_disk(path: &Path, size_bytes: u64) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.set_len(size_bytes).map_err(|e| format!("sizing {}: {e}", path.display()))
}
