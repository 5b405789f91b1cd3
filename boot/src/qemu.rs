//! Starting QEMU, watching it, and turning how it ended into an exit code.
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

/// Returns the QEMU command line for `opts`, booting `image` with `swap` attached.
pub fn command(opts: &Options, image: &Path, swap: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.arg("-drive").arg(format!("format=raw,file={},if=ide,index=0", image.display()));
    cmd.args(["-m", &opts.memory, "-smp", "1"]);
    match opts.accel {
        Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        Accel::Kvm => cmd.args(["-enable-kvm", "-cpu", "host,-arch-capabilities"]),
    };
    cmd.args(["-serial", "stdio", "-display", "none", "-no-reboot"]);
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

/// What the serial stream told us: set once the kernel prints the marker line.
#[derive(Default)]
struct Expectation {
    /// The kernel said it will hang.
    hang: AtomicBool,
    /// Seconds after the marker at which to kill QEMU.
    kill_after_secs: AtomicU64,
}

/// Copies QEMU's serial output to our stdout, noting the expect-timeout marker.
fn forward_output(child: &mut Child, expect: Arc<Expectation>) -> std::thread::JoinHandle<()> {
    let stdout = child.stdout.take().expect("qemu: stdout is piped");
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut out = std::io::stdout();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            if let Some((_, rest)) = text.trim_end().split_once(EXPECT_TIMEOUT_MARKER) {
                let secs = rest.trim().parse().unwrap_or(DEFAULT_EXPECTED_HANG_SECS);
                expect.kill_after_secs.store(secs, Ordering::SeqCst);
                expect.hang.store(true, Ordering::SeqCst);
            }
            let _ = out.write_all(&line);
            let _ = out.flush();
            line.clear();
        }
    })
}

/// Runs `cmd`, killing it after `opts.timeout`, and returns the runner's exit code.
pub fn run(opts: &Options, mut cmd: Command) -> Result<i32, String> {
    if opts.is_test {
        cmd.stdin(Stdio::null());
    }
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "qemu-system-x86_64 not found: install it with \
             `sudo apt-get install -y qemu-system-x86 ovmf`"
            .to_string(),
        _ => format!("starting qemu-system-x86_64: {e}"),
    })?;
    let expect = Arc::new(Expectation::default());
    let printer = forward_output(&mut child, expect.clone());
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
    let _ = printer.join();
    let expected = saw_marker;
    Ok(match status {
        Some(status) => {
            let code = exit_code_for(status);
            if code == EXIT_ABNORMAL {
                eprintln!("boot: QEMU exited with {status} without a result from the kernel (triple fault or reset?)");
            }
            if expected {
                eprintln!("boot: the kernel announced a hang, but QEMU ended by itself: failure");
                EXIT_FAILURE
            } else {
                code
            }
        }
        None if expected => {
            eprintln!(
                "boot: timeout after {} s killed QEMU (exit {EXIT_TIMEOUT}), as this test expects",
                timeout.as_secs()
            );
            println!("ok\n\ntest result: ok. 1 passed; 0 failed");
            EXIT_SUCCESS
        }
        None => {
            eprintln!(
                "boot: timeout: QEMU killed after {} s (raise it with --timeout SECS or KERNEL_TIMEOUT)",
                timeout.as_secs()
            );
            EXIT_TIMEOUT
        }
    })
}
