//! Runner options: command-line flags after the kernel path, or environment variables.
//!
//! Every option has both forms so that `cargo run -- --memory 512M` and
//! `KERNEL_MEMORY=512M cargo test` work alike; a flag wins over the variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::linux_peer::Program;

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
    /// `--smp N`, `KERNEL_SMP`: the number of CPUs (1 to [`MAX_CPUS`]); more than one
    /// runs TCG multi-threaded, one host thread per guest CPU.
    pub nr_cpus: u32,
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
    /// `--root DIR|none`, `KERNEL_ROOT`: the staging tree of the root disk, an ext2
    /// image made fresh for the run (default: `rootfs/` of the workspace); `none`
    /// attaches no root disk. A relative path is taken from the workspace root.
    pub root: Option<PathBuf>,
    /// `--root-size SIZE`, `KERNEL_ROOT_SIZE`: size of the root disk (default 32M).
    pub root_size: u64,
    /// `--root-expect PATH=CONTENT` (repeatable): after a successful, unfiltered run,
    /// the file PATH of the root disk, read on the host with `debugfs -R "cat PATH"`,
    /// must hold CONTENT (`pattern:LEN`: LEN bytes of `root_disk::pattern_byte`).
    pub root_expect: Vec<(String, String)>,
    /// `--gdb`, `KERNEL_GDB=1`: QEMU waits for a debugger on port 1234.
    pub gdb: bool,
    /// `--icount`, `KERNEL_ICOUNT=1`: guest time is the guest's instruction count
    /// (QEMU's `-icount shift=0,align=off,sleep=off`: one instruction is one virtual
    /// nanosecond), so a benchmark's numbers count the instructions our own code ran
    /// and do not change with the host's load (TCG only).
    pub icount: bool,
    /// `--qemu-arg ARG` (repeatable), `KERNEL_QEMU_ARGS` (space separated): passed through.
    pub qemu_args: Vec<String>,
    /// `--script FILE`, `KERNEL_SCRIPT`: typed into the serial console (see `script`).
    pub script: Option<PathBuf>,
    /// The console is the user's terminal: QEMU gets it raw, Ctrl-C goes to the
    /// guest and Ctrl-A X leaves (set for a plain `cargo run` from a terminal).
    pub is_interactive: bool,
    /// `--cmdline "WORDS"`, `KERNEL_CMDLINE`; `--bench` adds the word `bench`.
    pub cmdline: String,
    /// `--linux-peer[=PROGRAM]`, `KERNEL_LINUX_PEER=1|PROGRAM`: run a user program
    /// (`swapload` unless named, or `bench`) on this kernel, then on a Linux guest in
    /// the same machine, and compare (see `linux_peer`). Adds `run=PROGRAM` to the
    /// command line; RAM and swap default to the program's ([`Program::memory`],
    /// [`Program::swap_size`]).
    pub linux_peer: Option<Program>,
}

/// The longest kernel command line the kernel reads (`kernel/src/cmdline.rs`).
pub const MAX_CMDLINE_BYTES: usize = 255;

/// The most CPUs `--smp` accepts (the kernel's `arch::smp::MAX_CPUS`).
pub const MAX_CPUS: u32 = 16;

const USAGE: &str = "usage: boot KERNEL_ELF [--accel tcg|kvm] [--memory SIZE] [--smp N] [--timeout SECS] \
[--uefi] [--swap-size SIZE] [--swap-blkdebug FILE] [--disk PATH] [--root DIR|none] [--root-size SIZE] [--root-expect PATH=CONTENT]... [--gdb] [--icount] [--qemu-arg ARG]... [--bench] \
[--cmdline WORDS] [--script FILE] [--linux-peer[=swapload|bench|files|vmascale|thp|pagefault]]
  for a test binary (cargo test): a test-name filter word and --exact go to the kernel's test
                runner; libtest's --nocapture, --test-threads N, ... are accepted and have no effect
  --linux-peer  run the swapload benchmark on this kernel, then on a Linux 6.1 guest (Debian's
                kernel, fetched once with apt) in the same QEMU machine, and print both side by
                side; RAM 128M and swap 512M unless --memory/--swap-size say otherwise
  --icount      guest time counts guest instructions (QEMU -icount shift=0): benchmark numbers
                become instruction counts that the host's load cannot change (TCG only)
  --linux-peer=bench
                the same with the fault-path benchmark `bench`: the table of both kernels with
                the ratios ours/Linux; RAM 256M and swap 256M unless given
  --linux-peer=vmascale
                the scaling table (mmap, faults, fork, munmap against 1 to 10 000 VMAs and
                16 to 256 MiB) on both kernels; RAM 1G unless given
  --linux-peer=thp
                `thpfork`: write fault, fork (16 to 512 MiB) and munmap with MADV_HUGEPAGE and
                with MADV_NOHUGEPAGE, and writes after fork of huge pages; RAM 1280M unless given
  --linux-peer=files
                the same with the file benchmark `filebench` on an ext2 disk (Linux gets an
                image of the same tree, mounted by its init); root disk 192M unless given
  --linux-peer=pagefault
                will-it-scale's page_fault1 and page_fault2 (processes and threads, as many as
                CPUs) on both kernels with 1 CPU and with 2 (or --smp N): four guests, one
                table of faults/s and the N/1 scaling ratios; RAM 256M unless given
                (--linux-peer=swapload is plain --linux-peer)";

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

/// The default staging tree of the root disk, `rootfs/` at the workspace root.
fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("rootfs")
}

/// Parses `--root`'s value: `none`, or a directory (relative to the workspace root).
fn parse_root(text: &str) -> Option<PathBuf> {
    match text {
        "none" => None,
        dir if Path::new(dir).is_absolute() => Some(PathBuf::from(dir)),
        dir => Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir)),
    }
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

/// Reads `KERNEL_LINUX_PEER`: off when unset, `0`, `false`, `no` or `off`; swapload
/// when truthy (`1`, ...); else the name of the program.
fn peer_from_env(value: Option<String>) -> Result<Option<Program>, String> {
    match value.as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(None),
        Some("1" | "true" | "yes" | "on") => Ok(Some(Program::Swapload)),
        Some(name) => Program::from_name(name).map(Some),
    }
}

/// Parses a `--smp` value: a CPU count from 1 to [`MAX_CPUS`].
pub fn parse_nr_cpus(text: &str) -> Result<u32, String> {
    let n: u32 = text.trim().parse().map_err(|_| format!("--smp {text:?}: not a number of CPUs"))?;
    if !(1..=MAX_CPUS).contains(&n) {
        return Err(format!("--smp {n}: the kernel runs 1 to {MAX_CPUS} CPUs"));
    }
    Ok(n)
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
        let mut opts = Self::parse_with(kernel, image_args.into_iter().chain(args))?;
        opts.choose_shell(std::io::IsTerminal::is_terminal(&std::io::stdin()));
        Ok(opts)
    }

    /// Parses flags in `args` on top of the environment's options for `kernel`.
    pub(crate) fn parse_with(kernel: PathBuf, mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let is_test = is_test_binary(&kernel);
        let default_timeout = if is_test { 300 } else { 600 };
        let mut is_memory_given = env("KERNEL_MEMORY").is_some();
        let mut is_swap_size_given = env("KERNEL_SWAP_SIZE").is_some();
        let mut is_root_size_given = env("KERNEL_ROOT_SIZE").is_some();
        let mut opts = Options {
            kernel,
            is_test,
            accel: env("KERNEL_ACCEL").as_deref().map(parse_accel).transpose()?.unwrap_or(Accel::Tcg),
            memory: env("KERNEL_MEMORY").unwrap_or_else(|| "256M".into()),
            nr_cpus: env("KERNEL_SMP").as_deref().map(parse_nr_cpus).transpose()?.unwrap_or(1),
            timeout: Duration::from_secs(match env("KERNEL_TIMEOUT") {
                Some(s) => s.parse().map_err(|_| format!("bad KERNEL_TIMEOUT {s:?}"))?,
                None => default_timeout,
            }),
            uefi: truthy(env("KERNEL_UEFI")),
            swap_size: parse_size(&env("KERNEL_SWAP_SIZE").unwrap_or_else(|| "256M".into()))?,
            swap_blkdebug: env("KERNEL_SWAP_BLKDEBUG").as_deref().map(workspace_file).transpose()?,
            extra_disk: env("KERNEL_DISK").map(PathBuf::from),
            root: env("KERNEL_ROOT").map_or_else(|| Some(default_root()), |v| parse_root(&v)),
            root_size: parse_size(&env("KERNEL_ROOT_SIZE").unwrap_or_else(|| "32M".into()))?,
            root_expect: Vec::new(),
            gdb: truthy(env("KERNEL_GDB")),
            icount: truthy(env("KERNEL_ICOUNT")),
            qemu_args: env("KERNEL_QEMU_ARGS")
                .map(|s| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
            script: env("KERNEL_SCRIPT").as_deref().map(workspace_file).transpose()?,
            is_interactive: false,
            cmdline: env("KERNEL_CMDLINE").unwrap_or_default(),
            linux_peer: peer_from_env(env("KERNEL_LINUX_PEER"))?,
        };
        let mut is_bench = false;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
            match arg.as_str() {
                "--accel" => opts.accel = parse_accel(&value("--accel")?)?,
                "--memory" => {
                    opts.memory = value("--memory")?;
                    is_memory_given = true;
                }
                "--smp" => opts.nr_cpus = parse_nr_cpus(&value("--smp")?)?,
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
                "--root" => opts.root = parse_root(&value("--root")?),
                "--root-size" => {
                    opts.root_size = parse_size(&value("--root-size")?)?;
                    is_root_size_given = true;
                }
                "--root-expect" => {
                    let v = value("--root-expect")?;
                    let (path, content) = v.split_once('=').ok_or_else(|| format!("--root-expect {v:?}: PATH=CONTENT"))?;
                    opts.root_expect.push((path.to_string(), content.to_string()));
                }
                "--gdb" => opts.gdb = true,
                "--icount" => opts.icount = true,
                "--qemu-arg" => opts.qemu_args.push(value("--qemu-arg")?),
                "--cmdline" => opts.cmdline = value("--cmdline")?,
                "--script" => opts.script = Some(workspace_file(&value("--script")?)?),
                "--bench" => is_bench = true,
                "--linux-peer" => opts.linux_peer = Some(Program::Swapload),
                peer if peer.starts_with("--linux-peer=") => {
                    opts.linux_peer = Some(Program::from_name(&peer["--linux-peer=".len()..])?);
                }
                "-h" | "--help" => return Err(USAGE.into()),
                other if opts.is_test => opts.take_libtest_arg(other, &mut args)?,
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        // Added last, so that `--bench --cmdline "benchonly=swap"` keeps the word
        // (a `--cmdline` replaces KERNEL_CMDLINE, not the `--bench` beside it).
        if is_bench {
            opts.cmdline.push_str(" bench");
        }
        if opts.cmdline.trim().len() > MAX_CMDLINE_BYTES {
            return Err(format!(
                "the kernel command line is {} bytes; the kernel reads at most {MAX_CMDLINE_BYTES}",
                opts.cmdline.trim().len()
            ));
        }
        if let Some(program) = opts.linux_peer {
            opts.set_up_linux_peer(program, is_memory_given, is_swap_size_given, is_root_size_given)?;
        }
        if opts.icount && opts.accel == Accel::Kvm {
            return Err("--icount counts instructions of the emulator (TCG); it has no meaning with --accel kvm".into());
        }
        check_memory(&opts.memory)?;
        Ok(opts)
    }

    /// A plain `cargo run` (no command line, not a test, not the Linux peer) boots
    /// into the shell when standard input is a terminal, or when `--script` types
    /// into it: the kernel word `shell`. From a terminal the console is interactive.
    fn choose_shell(&mut self, is_stdin_terminal: bool) {
        if self.is_test || self.linux_peer.is_some() || !self.cmdline.trim().is_empty() {
            return;
        }
        if self.script.is_some() || is_stdin_terminal {
            self.cmdline = "shell".into();
            self.is_interactive = self.script.is_none();
        }
    }

    /// Takes an argument that `cargo test` forwards to every test binary: a test-name
    /// filter (a word without a leading `-`) goes to the kernel's test runner as
    /// `test.filter=WORD`, `--exact` as `test.exact`; libtest's output and threading
    /// flags have no meaning for a kernel test and are accepted with a note (their
    /// values too). Anything else is an error: a typo must not run the default.
    fn take_libtest_arg(&mut self, arg: &str, args: &mut impl Iterator<Item = String>) -> Result<(), String> {
        const NO_EFFECT: [&str; 6] = ["--nocapture", "--show-output", "--quiet", "-q", "--ignored", "--include-ignored"];
        const NO_EFFECT_WITH_VALUE: [&str; 4] = ["--test-threads", "--color", "--format", "-Z"];
        if !arg.starts_with('-') {
            if arg.contains(char::is_whitespace) {
                return Err(format!("a test filter is one word, not {arg:?}"));
            }
            self.cmdline.push_str(&format!(" test.filter={arg}"));
        } else if arg == "--exact" {
            self.cmdline.push_str(" test.exact");
        } else if NO_EFFECT.contains(&arg) {
            eprintln!("boot: {arg} has no effect on a kernel test (its console is always shown)");
        } else if let Some(flag) = NO_EFFECT_WITH_VALUE.iter().find(|f| arg == **f || arg.starts_with(&format!("{f}="))) {
            if arg == *flag {
                args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            }
            eprintln!("boot: {flag} has no effect on a kernel test");
        } else {
            return Err(format!("unknown argument {arg:?} for a kernel test\n{USAGE}"));
        }
        Ok(())
    }

    /// Turns a plain run into the first half of `--linux-peer`: `run=PROGRAM`, on
    /// the program's machine size unless the user chose RAM or swap.
    fn set_up_linux_peer(
        &mut self,
        program: Program,
        is_memory_given: bool,
        is_swap_size_given: bool,
        is_root_size_given: bool,
    ) -> Result<(), String> {
        if self.is_test {
            return Err("--linux-peer (KERNEL_LINUX_PEER) runs the kernel binary: use it with \
                        `cargo run --release`, not with a test"
                .into());
        }
        if !is_memory_given {
            self.memory = program.memory().into();
        }
        if !is_swap_size_given {
            self.swap_size = program.swap_size();
        }
        if let Some(size) = program.root_size().filter(|_| !is_root_size_given) {
            self.root_size = size;
        }
        self.cmdline.push_str(&format!(" run={}", program.name()));
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
    fn a_plain_run_from_a_terminal_or_with_a_script_boots_into_the_shell() {
        let mut from_terminal = parse_flags(&[]).unwrap();
        from_terminal.choose_shell(true);
        assert_eq!((from_terminal.cmdline.as_str(), from_terminal.is_interactive), ("shell", true));
        let mut from_pipe = parse_flags(&[]).unwrap();
        from_pipe.choose_shell(false);
        assert_eq!((from_pipe.cmdline.as_str(), from_pipe.is_interactive), ("", false), "a pipe plays the demo (/etc/demo.sh)");
        let mut scripted = parse_flags(&["--script", "tests/shell.input"]).unwrap();
        scripted.choose_shell(true);
        assert_eq!((scripted.cmdline.as_str(), scripted.is_interactive), ("shell", false), "a script is typed, not the terminal");
        let mut one_program = parse_flags(&["--cmdline", "run=hello"]).unwrap();
        one_program.choose_shell(true);
        assert_eq!(one_program.cmdline, "run=hello", "a command line wins");
    }

    #[test]
    fn memory_below_the_minimum_is_refused_with_the_minimum_in_the_message() {
        let error = parse_flags(&["--memory", "16M"]).expect_err("16M refused");
        assert!(error.contains("minimum is 22M"), "{error}");
        assert!(parse_flags(&["--memory", "21"]).is_err(), "a plain number is MiB, as for QEMU");
        assert!(parse_flags(&["--memory", "22M"]).is_ok());
        assert!(parse_flags(&["--memory", "8G"]).is_ok());
        assert_eq!(check_memory("1024"), Ok(1 << 30));
    }

    #[test]
    fn linux_peer_runs_swapload_with_its_own_machine_size() {
        let opts = parse_flags(&["--linux-peer"]).unwrap();
        assert_eq!(opts.linux_peer, Some(Program::Swapload));
        assert_eq!((opts.memory.as_str(), opts.swap_size), ("128M", 512 << 20));
        assert!(opts.cmdline.split_whitespace().any(|w| w == "run=swapload"));
        let opts = parse_flags(&["--memory", "96M", "--linux-peer", "--swap-size", "1G"]).unwrap();
        assert_eq!((opts.memory.as_str(), opts.swap_size), ("96M", 1 << 30));
        let test =
            Options::parse_with(PathBuf::from("deps/swap-0123456789abcdef"), ["--linux-peer".to_string()].into_iter());
        assert!(test.is_err());
    }

    #[test]
    fn linux_peer_takes_a_program_name_and_rejects_unknown_ones() {
        let opts = parse_flags(&["--linux-peer=bench"]).unwrap();
        assert_eq!(opts.linux_peer, Some(Program::Bench));
        assert_eq!((opts.memory.as_str(), opts.swap_size), ("256M", 256 << 20));
        let words: Vec<&str> = opts.cmdline.split_whitespace().collect();
        assert_eq!(words, ["run=bench"]);
        assert_eq!(parse_flags(&["--linux-peer=swapload"]).unwrap().linux_peer, Some(Program::Swapload));
        let files = parse_flags(&["--linux-peer=files"]).unwrap();
        assert_eq!((files.linux_peer, files.root_size), (Some(Program::Files), 192 << 20), "room for the 64 MiB file");
        assert_eq!(files.cmdline.split_whitespace().collect::<Vec<_>>(), ["run=filebench"]);
        let smaller = parse_flags(&["--root-size", "100M", "--linux-peer=files"]).unwrap();
        assert_eq!(smaller.root_size, 100 << 20, "--root-size wins");
        let err = parse_flags(&["--linux-peer=fork"]).unwrap_err();
        assert!(err.contains("unknown program \"fork\""), "{err}");
        assert!(parse_flags(&["--linux-peer="]).is_err());
        assert_eq!(peer_from_env(Some("bench".into())), Ok(Some(Program::Bench)));
        assert_eq!(peer_from_env(Some("1".into())), Ok(Some(Program::Swapload)));
        assert_eq!(peer_from_env(Some("0".into())), Ok(None));
        assert!(peer_from_env(Some("bnech".into())).is_err());
    }

    #[test]
    fn unknown_flags_are_errors_with_the_usage() {
        // Issue #10 item 9: `--memroy 1G` used to be ignored and run the default.
        let err = parse_flags(&["--memroy", "1G"]).unwrap_err();
        assert!(err.contains("unknown argument \"--memroy\"") && err.contains("usage:"), "{err}");
        assert!(parse_flags(&["--smpp", "2"]).is_err());
        assert!(parse_flags(&["stray"]).is_err(), "a plain run takes no positional words");
    }

    fn parse_test_flags(flags: &[&str]) -> Result<Options, String> {
        Options::parse_with(PathBuf::from("out/swap-0123456789abcdef"), flags.iter().map(|f| f.to_string()))
    }

    #[test]
    fn tests_take_libtest_filters_and_flags_but_nothing_else() {
        let opts = parse_test_flags(&["--nocapture", "--test-threads", "1", "evict", "--exact"]).unwrap();
        let words: Vec<&str> = opts.cmdline.split_whitespace().collect();
        assert_eq!(words, ["test.filter=evict", "test.exact"]);
        assert!(parse_test_flags(&["--test-threads=2"]).is_ok());
        assert!(parse_test_flags(&["--test-threads"]).is_err(), "a value is required");
        assert!(parse_test_flags(&["--memroy", "1G"]).is_err());
    }

    #[test]
    fn a_command_line_longer_than_the_kernel_reads_is_an_error() {
        let long = "x".repeat(MAX_CMDLINE_BYTES + 1);
        assert!(parse_flags(&["--cmdline", &long]).is_err());
        assert!(parse_flags(&["--cmdline", &long[1..]]).is_ok());
    }

    #[test]
    fn bench_keeps_its_word_whatever_the_order_of_cmdline() {
        for flags in [["--bench", "--cmdline", "benchonly=swap"], ["--cmdline", "benchonly=swap", "--bench"]] {
            let opts = parse_flags(&flags).unwrap();
            let words: Vec<_> = opts.cmdline.split_whitespace().collect();
            assert!(words.contains(&"bench") && words.contains(&"benchonly=swap"), "{flags:?} -> {words:?}");
        }
    }

    #[test]
    fn smp_takes_a_cpu_count_from_one_to_the_maximum() {
        assert_eq!(parse_flags(&[]).unwrap().nr_cpus, 1, "one CPU unless asked");
        assert_eq!(parse_flags(&["--smp", "2"]).unwrap().nr_cpus, 2);
        assert_eq!(parse_flags(&["--smp", "16"]).unwrap().nr_cpus, MAX_CPUS);
        assert!(parse_flags(&["--smp", "0"]).unwrap_err().contains("1 to 16"));
        assert!(parse_flags(&["--smp", "17"]).is_err());
        assert!(parse_flags(&["--smp", "two"]).is_err());
        assert!(parse_flags(&["--smp"]).is_err(), "a value is required");
    }

    #[test]
    fn icount_is_off_unless_asked_and_refused_with_kvm() {
        assert!(!parse_flags(&[]).unwrap().icount);
        assert!(parse_flags(&["--icount"]).unwrap().icount);
        let err = parse_flags(&["--icount", "--accel", "kvm"]).unwrap_err();
        assert!(err.contains("--icount"), "{err}");
        assert!(parse_flags(&["--icount=1"]).is_err(), "the flag takes no value");
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
