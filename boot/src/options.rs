//! Runner options: command-line flags after the kernel path, or environment variables.
//!
//! Every option has both forms so that `cargo run -- --memory 512M` and
//! `KERNEL_MEMORY=512M cargo test` work alike; a flag wins over the variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How QEMU executes guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation (the default: `/dev/kvm` on these machines is itself emulated).
    Tcg,
    /// Hardware virtualisation, where a real KVM exists.
    Kvm,
}

/// Everything the runner can be told.
#[derive(Clone, Debug)]
pub struct Options {
    /// The kernel ELF cargo built.
    pub kernel: PathBuf,
    /// True when cargo runs a test binary (see [`is_test_binary`]).
    pub is_test: bool,
    /// `--accel tcg|kvm`, `KERNEL_ACCEL`.
    pub accel: Accel,
    /// `--memory 256M`, `KERNEL_MEMORY`: guest RAM, in QEMU's `-m` syntax.
    pub memory: String,
    /// `--timeout SECS`, `KERNEL_TIMEOUT`: QEMU is killed after this long.
    pub timeout: Duration,
    /// `--uefi`, `KERNEL_UEFI=1`: boot with OVMF instead of the BIOS.
    pub uefi: bool,
    /// `--swap-size 256M`, `KERNEL_SWAP_SIZE`: size of the swap disk (a sparse file).
    pub swap_size: u64,
    /// `--swap-blkdebug FILE`, `KERNEL_SWAP_BLKDEBUG`: a QEMU blkdebug rules file; the
    /// swap disk is then wrapped in blkdebug, which fails the requests it names.
    /// A relative path is taken from the workspace root.
    pub swap_blkdebug: Option<PathBuf>,
    /// `--disk PATH`, `KERNEL_DISK`: one more raw disk, attached as virtio-blk.
    pub extra_disk: Option<PathBuf>,
    /// `--gdb`, `KERNEL_GDB=1`: QEMU waits for a debugger on port 1234.
    pub gdb: bool,
    /// `--qemu-arg ARG` (repeatable), `KERNEL_QEMU_ARGS` (space separated): passed through.
    pub qemu_args: Vec<String>,
    /// `--cmdline "WORDS"`, `KERNEL_CMDLINE`; `--bench` adds the word `bench`.
    pub cmdline: String,
    /// `--linux-peer`, `KERNEL_LINUX_PEER=1`: run `swapload` on this kernel, then on a
    /// Linux guest in the same machine, and compare (see `linux_peer`). Adds
    /// `run=swapload` to the command line; RAM and swap default to
    /// [`PEER_MEMORY`] and [`PEER_SWAP_SIZE`].
    pub linux_peer: bool,
}

/// Guest RAM for `--linux-peer` unless `--memory` says otherwise: half of what
/// `swapload` maps.
pub const PEER_MEMORY: &str = "128M";
/// Swap disk size for `--linux-peer` unless `--swap-size` says otherwise.
pub const PEER_SWAP_SIZE: u64 = 512 << 20;

const USAGE: &str = "usage: boot KERNEL_ELF [--accel tcg|kvm] [--memory SIZE] [--timeout SECS] \
[--uefi] [--swap-size SIZE] [--swap-blkdebug FILE] [--disk PATH] [--gdb] [--qemu-arg ARG]... [--bench] \
[--cmdline WORDS] [--linux-peer]
  --linux-peer  run the swapload benchmark on this kernel, then on a Linux 6.1 guest (Debian's
                kernel, fetched once with apt) in the same QEMU machine, and print both side by
                side; RAM 128M and swap 512M unless --memory/--swap-size say otherwise";

/// Returns `path` as is if absolute, else relative to the workspace root (where
/// `tests/` is), whatever directory cargo runs the runner in; it must exist.
fn workspace_file(path: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(path);
    let path = if path.is_absolute() { path } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path) };
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    Ok(path)
}

/// Returns true if `path` is a test binary: cargo names those `<name>-<16 hex digits>`
/// (wherever its build layout puts them), while `cargo run` runs plain `kernel`.
pub fn is_test_binary(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.rsplit_once('-').is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The least guest RAM that boots, measured: with less, the bootloader runs out of
/// frames building its physical-memory map and panics before the kernel runs (the
/// kernel's `mm::MIN_GUEST_RAM_MIB` says the same).
pub const MIN_MEMORY_MIB: u64 = 22;

/// Parses a `--memory` value in QEMU's `-m` syntax (`256M`, `1G`, or a plain number
/// of MiB) and checks it against [`MIN_MEMORY_MIB`]; returns the size in bytes.
pub fn check_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bytes = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        parse_size(text)? << 20
    } else {
        parse_size(text)?
    };
    if bytes < MIN_MEMORY_MIB << 20 {
        return Err(format!(
            "--memory {text}: too small; the minimum is {MIN_MEMORY_MIB}M (below it the bootloader \
             runs out of memory for its page tables before the kernel starts)"
        ));
    }
    Ok(bytes)
}

/// Parses a size such as `256M`, `1G`, `4096` or `64K` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("bad size {text:?}"))?;
    let shift = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("bad size unit in {text:?} (use K, M or G)")),
    };
    Ok(n << shift)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn truthy(value: Option<String>) -> bool {
    matches!(value.as_deref(), Some("1" | "true" | "yes" | "on"))
}

fn parse_accel(text: &str) -> Result<Accel, String> {
    match text {
        "tcg" => Ok(Accel::Tcg),
        "kvm" => Ok(Accel::Kvm),
        _ => Err(format!("unknown accelerator {text:?} (tcg or kvm)")),
    }
}

impl Options {
    /// Reads the options from the environment, the kernel image's own `.runner_args`
    /// section (see `image_args`) and `args` (without the program name), in that
    /// order: a later source wins.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let kernel = PathBuf::from(args.next().ok_or(USAGE)?);
        let image_args = crate::image_args::read(&kernel)?;
        if !image_args.is_empty() {
            eprintln!("boot: options from the image's {} section: {}", crate::image_args::SECTION, image_args.join(" "));
        }
        Self::parse_with(kernel, image_args.into_iter().chain(args))
    }

    /// Parses flags in `args` on top of the environment's options for `kernel`.
    fn parse_with(kernel: PathBuf, mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let is_test = is_test_binary(&kernel);
        let default_timeout = if is_test { 300 } else { 600 };
        let mut is_memory_given = env("KERNEL_MEMORY").is_some();
        let mut is_swap_size_given = env("KERNEL_SWAP_SIZE").is_some();
        let mut opts = Options {
            kernel,
            is_test,
            accel: env("KERNEL_ACCEL").as_deref().map(parse_accel).transpose()?.unwrap_or(Accel::Tcg),
            memory: env("KERNEL_MEMORY").unwrap_or_else(|| "256M".into()),
            timeout: Duration::from_secs(match env("KERNEL_TIMEOUT") {
                Some(s) => s.parse().map_err(|_| format!("bad KERNEL_TIMEOUT {s:?}"))?,
                None => default_timeout,
            }),
            uefi: truthy(env("KERNEL_UEFI")),
            swap_size: parse_size(&env("KERNEL_SWAP_SIZE").unwrap_or_else(|| "256M".into()))?,
            swap_blkdebug: env("KERNEL_SWAP_BLKDEBUG").as_deref().map(workspace_file).transpose()?,
            extra_disk: env("KERNEL_DISK").map(PathBuf::from),
            gdb: truthy(env("KERNEL_GDB")),
            qemu_args: env("KERNEL_QEMU_ARGS")
                .map(|s| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
            cmdline: env("KERNEL_CMDLINE").unwrap_or_default(),
            linux_peer: truthy(env("KERNEL_LINUX_PEER")),
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
            match arg.as_str() {
                "--accel" => opts.accel = parse_accel(&value("--accel")?)?,
                "--memory" => {
                    opts.memory = value("--memory")?;
                    is_memory_given = true;
                }
                "--timeout" => {
                    let v = value("--timeout")?;
                    opts.timeout = Duration::from_secs(v.parse().map_err(|_| format!("bad timeout {v:?}"))?);
                }
                "--uefi" => opts.uefi = true,
                "--swap-size" => {
                    opts.swap_size = parse_size(&value("--swap-size")?)?;
                    is_swap_size_given = true;
                }
                "--swap-blkdebug" => opts.swap_blkdebug = Some(workspace_file(&value("--swap-blkdebug")?)?),
                "--disk" => opts.extra_disk = Some(PathBuf::from(value("--disk")?)),
                "--gdb" => opts.gdb = true,
                "--qemu-arg" => opts.qemu_args.push(value("--qemu-arg")?),
                "--cmdline" => opts.cmdline = value("--cmdline")?,
                "--bench" => opts.cmdline.push_str(" bench"),
                "--linux-peer" => opts.linux_peer = true,
                "-h" | "--help" => return Err(USAGE.into()),
                // cargo test forwards libtest flags such as --nocapture or a filter;
                // the kernel's test runner takes none, so say so and go on.
                other => eprintln!("boot: ignoring argument {other:?}"),
            }
        }
        if opts.linux_peer {
            opts.set_up_linux_peer(is_memory_given, is_swap_size_given)?;
        }
        check_memory(&opts.memory)?;
        Ok(opts)
    }

    /// Turns a plain run into the first half of `--linux-peer`: `run=swapload`, on
    /// the peer machine size unless the user chose RAM or swap.
    fn set_up_linux_peer(&mut self, is_memory_given: bool, is_swap_size_given: bool) -> Result<(), String> {
        if self.is_test {
            return Err("--linux-peer (KERNEL_LINUX_PEER) runs the kernel binary: use it with \
                        `cargo run --release`, not with a test"
                .into());
        }
        if !is_memory_given {
            self.memory = PEER_MEMORY.into();
        }
        if !is_swap_size_given {
            self.swap_size = PEER_SWAP_SIZE;
        }
        self.cmdline.push_str(" run=swapload");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_binaries_are_recognised_by_their_hash_suffix() {
        assert!(is_test_binary(std::path::Path::new("target/x86_64-unknown-none/debug/build/kernel/abc/out/paging-0123456789abcdef")));
        assert!(is_test_binary(std::path::Path::new("target/debug/deps/user-fedcba9876543210")));
        assert!(!is_test_binary(std::path::Path::new("target/x86_64-unknown-none/debug/kernel")));
        assert!(!is_test_binary(std::path::Path::new("target/release/swap-area")));
    }

    fn parse_flags(flags: &[&str]) -> Result<Options, String> {
        Options::parse_with(
            PathBuf::from("target/x86_64-unknown-none/release/kernel"),
            flags.iter().map(|f| f.to_string()),
        )
    }

    #[test]
    fn memory_below_the_minimum_is_refused_with_the_minimum_in_the_message() {
        let error = parse_flags(&["--memory", "16M"]).err().expect("16M refused");
        assert!(error.contains("minimum is 22M"), "{error}");
        assert!(parse_flags(&["--memory", "21"]).is_err(), "a plain number is MiB, as for QEMU");
        assert!(parse_flags(&["--memory", "22M"]).is_ok());
        assert!(parse_flags(&["--memory", "8G"]).is_ok());
        assert_eq!(check_memory("1024"), Ok(1 << 30));
    }

    #[test]
    fn linux_peer_runs_swapload_with_its_own_machine_size() {
        let opts = parse_flags(&["--linux-peer"]).unwrap();
        assert!(opts.linux_peer);
        assert_eq!((opts.memory.as_str(), opts.swap_size), (PEER_MEMORY, PEER_SWAP_SIZE));
        assert!(opts.cmdline.split_whitespace().any(|w| w == "run=swapload"));
        let opts = parse_flags(&["--memory", "96M", "--linux-peer", "--swap-size", "1G"]).unwrap();
        assert_eq!((opts.memory.as_str(), opts.swap_size), ("96M", 1 << 30));
        let test =
            Options::parse_with(PathBuf::from("deps/swap-0123456789abcdef"), ["--linux-peer".to_string()].into_iter());
        assert!(test.is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("12X").is_err());
    }
}
