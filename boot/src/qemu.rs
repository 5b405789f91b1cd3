//! Starting QEMU, watching it, and turning how it ended into an exit code.
//!
//! [`command`] is the QEMU command line for our kernel; [`add_machine`] the part of
//! it any guest gets (`--linux-peer` boots Linux on it too). [`run`] forwards the
//! serial console to stdout (and, with `--script`, types a file into it: `script`);
//! [`run_capturing`] also keeps its lines.
//!
//! | how QEMU ended | runner exit code |
//! |---|---|
//! | kernel wrote 0x10 to `isa-debug-exit` (QEMU status 33) | 0, success |
//! | kernel wrote 0x11 (QEMU status 35) | 1, failure |
//! | QEMU exited by itself otherwise (triple fault under `-no-reboot`, ...) | 2 |
//! | still running after the timeout: killed | 124 |
//!
//! A test binary that is *meant* to hang prints [`EXPECT_TIMEOUT_MARKER`] first;
//! for it, and only for it, being killed by the timeout is the passing outcome.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::options::{Accel, Options};

/// What a kernel test prints (ending a line) to say "I will hang; kill me": `runner: expect-timeout [SECS]`.
/// The runner then uses a timeout of SECS from that moment (default 5).
pub const EXPECT_TIMEOUT_MARKER: &str = "runner: expect-timeout";
const DEFAULT_EXPECTED_HANG_SECS: u64 = 5;

/// Exit code for success.
pub const EXIT_SUCCESS: i32 = 0;
/// Exit code for a kernel-reported failure.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code when QEMU stopped without the kernel saying how it went.
pub const EXIT_ABNORMAL: i32 = 2;
/// Exit code when the timeout killed QEMU (as coreutils `timeout` does).
pub const EXIT_TIMEOUT: i32 = 124;

/// Maps QEMU's own exit status to the runner's exit code.
pub fn exit_code_for(status: ExitStatus) -> i32 {
    match status.code() {
        Some(33) => EXIT_SUCCESS,
        Some(35) => EXIT_FAILURE,
        _ => EXIT_ABNORMAL,
    }
}

/// Returns the QEMU command line for `opts`, booting `image` with `swap` and, if
/// given, the root disk `root` attached.
pub fn command(opts: &Options, image: &Path, swap: &Path, root: Option<&Path>) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.arg("-drive").arg(format!("format=raw,file={},if=ide,index=0", image.display()));
    add_machine(&mut cmd, opts, swap);
    if let Some(root) = root {
        add_root_disk(&mut cmd, root);
    }
    if let Some(disk) = &opts.extra_disk {
        cmd.arg("-drive").arg(format!("file={},format=raw,if=none,id=extra", disk.display()));
        cmd.args(["-device", "virtio-blk-pci,drive=extra,serial=extra"]);
    }
    if opts.uefi {
        cmd.args(["-bios", "/usr/share/OVMF/OVMF_CODE.fd"]);
    }
    if opts.gdb {
        cmd.args(["-s", "-S"]);
    }
    let cmdline = opts.cmdline.trim();
    if !cmdline.is_empty() {
        // The kernel reads this fw_cfg file as its command line (commas escaped for QEMU).
        cmd.arg("-fw_cfg").arg(format!("name=opt/kernel/cmdline,string={}", cmdline.replace(',', ",,")));
    }
    cmd.args(&opts.qemu_args);
    cmd
}

/// Adds the machine every guest gets, whatever it boots: RAM, the CPUs, the
/// accelerator and CPU model, the serial console on stdio, no display, no reboot,
/// the exit device, and the swap disk `swap` as a virtio block device.
///
/// `--linux-peer` boots our kernel and Linux on this same machine.
pub fn add_machine(cmd: &mut Command, opts: &Options, swap: &Path) {
    cmd.args(["-m", &opts.memory, "-smp", &opts.nr_cpus.to_string()]);
    match opts.accel {
        // One host thread per guest CPU when there are several: the CPUs really run
        // at the same time, so races between them can show (one CPU: the classic
        // single-threaded TCG, as before; icount needs the single thread).
        Accel::Tcg if opts.nr_cpus > 1 && !opts.icount => cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
        Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        Accel::Kvm => cmd.args(["-enable-kvm", "-cpu", "host,-arch-capabilities"]),
    };
    if opts.icount {
        // Virtual time advances one nanosecond per guest instruction, whatever the
        // host does: no sleeping to match real time (align=off, sleep=off). QEMU
        // runs the CPUs round-robin in one thread under icount.
        cmd.args(["-icount", "shift=0,align=off,sleep=off"]);
    }
    if opts.is_interactive {
        // The terminal, raw: Ctrl-C reaches the guest (signal=off), Ctrl-A X quits
        // QEMU, Ctrl-A C switches to its monitor (mux).
        cmd.args(["-chardev", "stdio,id=console,mux=on,signal=off", "-serial", "chardev:console"]);
        cmd.args(["-mon", "chardev=console", "-display", "none", "-no-reboot"]);
    } else {
        cmd.args(["-serial", "stdio", "-display", "none", "-no-reboot"]);
    }
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    // The swap disk: a virtio block device found by the kernel on the PCI bus. With
    // --swap-blkdebug the raw file sits under QEMU's blkdebug driver, which fails the
    // requests its rules name (error injection for the swap I/O-error tests).
    match &opts.swap_blkdebug {
        None => cmd.arg("-drive").arg(format!("file={},format=raw,if=none,id=swap,cache=unsafe", swap.display())),
        Some(rules) => cmd.arg("-drive").arg(format!(
            "driver=blkdebug,config={},image.driver=file,image.filename={},if=none,id=swap,cache=unsafe",
            rules.display(),
            swap.display()
        )),
    };
    cmd.args(["-device", "virtio-blk-pci,drive=swap,serial=swap"]);
}

/// Adds the ext2 root disk `root` as a virtio block device with serial `root`
/// (ours and, for `--linux-peer=files`, Linux's).
pub fn add_root_disk(cmd: &mut Command, root: &Path) {
    cmd.arg("-drive").arg(format!("file={},format=raw,if=none,id=root,cache=unsafe", root.display()));
    cmd.args(["-device", "virtio-blk-pci,drive=root,serial=root"]);
}

/// What the serial stream told us: set once the kernel prints the marker line.
#[derive(Default)]
struct Expectation {
    /// The kernel said it will hang.
    hang: AtomicBool,
    /// Seconds after the marker at which to kill QEMU.
    kill_after_secs: AtomicU64,
}

/// Copies QEMU's serial output to our stdout, noting the expect-timeout marker; the
/// thread returns the lines it copied if `is_capturing`, else none.
fn forward_output(
    child: &mut Child,
    expect: Arc<Expectation>,
    is_capturing: bool,
    transcript: Option<Arc<crate::script::Transcript>>,
) -> JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().expect("qemu: stdout is piped");
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut captured = Vec::new();
        let mut out = std::io::stdout();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            if let Some((_, rest)) = text.trim_end().split_once(EXPECT_TIMEOUT_MARKER) {
                let secs = rest.trim().parse().unwrap_or(DEFAULT_EXPECTED_HANG_SECS);
                expect.kill_after_secs.store(secs, Ordering::SeqCst);
                expect.hang.store(true, Ordering::SeqCst);
            }
            if is_capturing {
                captured.push(text.trim_end().to_string());
            }
            if let Some(transcript) = &transcript {
                transcript.lines.lock().expect("transcript lock").push(text.trim_end().to_string());
            }
            let _ = out.write_all(&line);
            let _ = out.flush();
            line.clear();
        }
        captured
    })
}

/// How a QEMU run ended.
#[derive(Debug)]
pub enum Ending {
    /// QEMU exited by itself with this status.
    Exited(ExitStatus),
    /// The runner killed QEMU after `after`; `was_announced` if the kernel had
    /// printed [`EXPECT_TIMEOUT_MARKER`] first.
    TimedOut { after: Duration, was_announced: bool },
    /// QEMU exited by itself after the kernel had announced a hang.
    ExitedDespiteAnnouncedHang(ExitStatus),
}

/// A finished QEMU run whose serial output was kept.
#[derive(Debug)]
pub struct CapturedRun {
    /// How it ended.
    pub ending: Ending,
    /// Every line of serial output, without its line ending.
    pub lines: Vec<String>,
}

/// Runs `cmd`, killing it after `opts.timeout`, and returns the runner's exit code.
pub fn run(opts: &Options, cmd: Command) -> Result<i32, String> {
    let (ending, _) = supervise(opts, cmd, false)?;
    Ok(exit_code(&ending))
}

/// Runs `cmd` like [`run`], and also returns its serial output line by line (it is
/// printed as it comes all the same).
pub fn run_capturing(opts: &Options, cmd: Command) -> Result<CapturedRun, String> {
    let (ending, lines) = supervise(opts, cmd, true)?;
    Ok(CapturedRun { ending, lines })
}

/// Starts `cmd`, forwards its output, and waits for it to end or kills it at the
/// timeout (from the marker on, the timeout the kernel announced).
fn supervise(opts: &Options, mut cmd: Command, is_capturing: bool) -> Result<(Ending, Vec<String>), String> {
    let script = match &opts.script {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            Some(crate::script::parse(&text)?)
        }
        None => None,
    };
    if script.is_some() {
        cmd.stdin(Stdio::piped());
    } else if opts.is_test {
        cmd.stdin(Stdio::null());
    }
    if opts.is_interactive {
        // QEMU writes to the terminal itself: a prompt has no newline to wait for.
        // No timeout either: the user leaves with Ctrl-A X or `exit`.
        let status = cmd.status().map_err(|e| format!("starting qemu-system-x86_64: {e}"))?;
        return Ok((Ending::Exited(status), Vec::new()));
    }
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "qemu-system-x86_64 not found: install it with \
             `sudo apt-get install -y qemu-system-x86 ovmf`"
            .to_string(),
        _ => format!("starting qemu-system-x86_64: {e}"),
    })?;
    let expect = Arc::new(Expectation::default());
    let transcript = script.is_some().then(|| Arc::new(crate::script::Transcript::default()));
    let printer = forward_output(&mut child, expect.clone(), is_capturing, transcript.clone());
    let typist = match (script, &transcript) {
        (Some(steps), Some(transcript)) => {
            let stdin = child.stdin.take().expect("qemu: stdin is piped");
            let transcript = transcript.clone();
            Some(std::thread::spawn(move || crate::script::play(steps, stdin, transcript)))
        }
        _ => None,
    };
    let mut deadline = (!opts.gdb).then(|| Instant::now() + opts.timeout);
    let mut timeout = opts.timeout;
    let mut saw_marker = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting for qemu: {e}"))? {
            break Some(status);
        }
        if !saw_marker && expect.hang.load(Ordering::SeqCst) {
            saw_marker = true;
            timeout = Duration::from_secs(expect.kill_after_secs.load(Ordering::SeqCst));
            deadline = Some(Instant::now() + timeout);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = printer.join().unwrap_or_default();
    if let Some(transcript) = &transcript {
        transcript.is_over.store(true, Ordering::SeqCst);
    }
    if let Some(typist) = typist {
        let _ = typist.join();
    }
    let ending = match status {
        Some(status) if saw_marker => Ending::ExitedDespiteAnnouncedHang(status),
        Some(status) => Ending::Exited(status),
        None => Ending::TimedOut { after: timeout, was_announced: saw_marker },
    };
    Ok((ending, lines))
}

/// Returns the runner's exit code for a run of our kernel that ended so, and says
/// on stderr why when it is not a plain result from the kernel.
pub fn exit_code(ending: &Ending) -> i32 {
    match *ending {
        Ending::Exited(status) => {
            let code = exit_code_for(status);
            if code == EXIT_ABNORMAL {
                eprintln!("boot: QEMU exited with {status} without a result from the kernel (triple fault or reset?)");
            }
            code
        }
        Ending::ExitedDespiteAnnouncedHang(status) => {
            if exit_code_for(status) == EXIT_ABNORMAL {
                eprintln!("boot: QEMU exited with {status} without a result from the kernel (triple fault or reset?)");
            }
            eprintln!("boot: the kernel announced a hang, but QEMU ended by itself: failure");
            EXIT_FAILURE
        }
        Ending::TimedOut { after, was_announced: true } => {
            eprintln!(
                "boot: timeout after {} s killed QEMU (exit {EXIT_TIMEOUT}), as this test expects",
                after.as_secs()
            );
            println!("ok\n\ntest result: ok. 1 passed; 0 failed");
            EXIT_SUCCESS
        }
        Ending::TimedOut { after, was_announced: false } => {
            eprintln!(
                "boot: timeout: QEMU killed after {} s (raise it with --timeout SECS or KERNEL_TIMEOUT)",
                after.as_secs()
            );
            EXIT_TIMEOUT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The QEMU arguments `add_machine` gives a run with `flags`.
    fn machine_args(flags: &[&str]) -> Vec<String> {
        let kernel = PathBuf::from("target/x86_64-unknown-none/release/kernel");
        let opts = Options::parse_with(kernel, flags.iter().map(|f| f.to_string())).unwrap();
        let mut cmd = Command::new("qemu-system-x86_64");
        add_machine(&mut cmd, &opts, Path::new("swap.img"));
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    /// Returns the value following `flag` in `args`.
    fn value_of<'a>(args: &'a [String], flag: &str) -> &'a str {
        let at = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"));
        &args[at + 1]
    }

    #[test]
    fn smp_gives_qemu_that_many_cpus_on_multi_threaded_tcg() {
        let one = machine_args(&[]);
        assert_eq!(value_of(&one, "-smp"), "1");
        assert_eq!(value_of(&one, "-accel"), "tcg");
        let four = machine_args(&["--smp", "4"]);
        assert_eq!(value_of(&four, "-smp"), "4");
        assert_eq!(value_of(&four, "-accel"), "tcg,thread=multi");
    }

    #[test]
    fn icount_asks_qemu_for_instruction_counted_time() {
        assert!(!machine_args(&[]).iter().any(|a| a == "-icount"));
        let counted = machine_args(&["--icount"]);
        assert_eq!(value_of(&counted, "-icount"), "shift=0,align=off,sleep=off");
        assert_eq!(value_of(&counted, "-accel"), "tcg");
    }
}
