//! `--script FILE`: typing a file into the kernel's serial console.
//!
//! The file's lines are written to QEMU's standard input, which `-serial stdio`
//! turns into bytes arriving at COM1, exactly as if typed. A few lines are
//! directives for the runner instead, so that a script can type a key *after*
//! something has happened (a program must be running before Ctrl-C can stop it):
//!
//! | line | what the runner does |
//! |---|---|
//! | `#>wait TEXT` | waits until a line of serial output containing TEXT appears (after the one the previous wait matched) |
//! | `#>ctrl-c` | types Ctrl-C (byte 0x03) |
//! | `#>ctrl-d` | types Ctrl-D (byte 0x04): end of file for the reader of the line |
//! | `#>sleep MS` | waits MS milliseconds |
//!
//! Any other line (a shell comment `# ...` too) is typed as it is, with its
//! newline. Typing starts when the kernel has printed [`INPUT_READY_MARKER`]:
//! bytes that reach the UART before the kernel set it up are lost. The kernel's line discipline echoes what it reads, so the transcript
//! shows the typed lines. When the script ends, standard input is closed.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The line the kernel prints once its console input is on (`kernel::tty`).
pub const INPUT_READY_MARKER: &str = "tty: console input on COM1";

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Bytes to type.
    Type(Vec<u8>),
    /// Wait for a line of output containing this text.
    WaitFor(String),
    /// Wait this long.
    Sleep(Duration),
}

/// Parses a script file's text into steps; an unknown `#>` directive is an error
/// (naming its line), so that a typo does not type a directive into the kernel.
pub fn parse(text: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let step = match line.strip_prefix("#>") {
            None => Step::Type(format!("{line}\n").into_bytes()),
            Some("ctrl-c") => Step::Type(vec![0x03]),
            Some("ctrl-d") => Step::Type(vec![0x04]),
            Some(rest) if rest.starts_with("wait ") => Step::WaitFor(rest["wait ".len()..].to_string()),
            Some(rest) if rest.starts_with("sleep ") => {
                let ms = rest["sleep ".len()..].trim().parse().map_err(|_| format!("script line {}: bad sleep {rest:?}", index + 1))?;
                Step::Sleep(Duration::from_millis(ms))
            }
            Some(other) => return Err(format!("script line {}: unknown directive #>{other}", index + 1)),
        };
        // Consecutive typing goes out in one write.
        match (steps.last_mut(), step) {
            (Some(Step::Type(bytes)), Step::Type(more)) => bytes.extend(more),
            (_, step) => steps.push(step),
        }
    }
    Ok(steps)
}

/// The serial output seen so far, for `#>wait`.
#[derive(Default)]
pub struct Transcript {
    /// Every complete line so far.
    pub lines: Mutex<Vec<String>>,
    /// Set when QEMU has ended: waits give up.
    pub is_over: AtomicBool,
}

/// Returns the index of the first line at or after `from` that contains `text`.
pub fn find_from(lines: &[String], from: usize, text: &str) -> Option<usize> {
    lines.iter().skip(from).position(|l| l.contains(text)).map(|i| i + from)
}

/// Plays `steps` into `stdin`, waiting on `transcript` for `#>wait` steps; returns
/// when done, when QEMU is over, or when writing fails (QEMU gone). Closes `stdin`.
pub fn play(steps: Vec<Step>, mut stdin: impl Write, transcript: Arc<Transcript>) {
    let mut cursor = 0;
    let first = Step::WaitFor(INPUT_READY_MARKER.to_string());
    for step in core::iter::once(first).chain(steps) {
        match step {
            Step::Type(bytes) => {
                if stdin.write_all(&bytes).and_then(|_| stdin.flush()).is_err() {
                    return;
                }
            }
            Step::Sleep(duration) => std::thread::sleep(duration),
            Step::WaitFor(text) => loop {
                if let Some(at) = find_from(&transcript.lines.lock().expect("transcript lock"), cursor, &text) {
                    cursor = at + 1;
                    break;
                }
                if transcript.is_over.load(Ordering::SeqCst) {
                    eprintln!("boot: script: QEMU ended before {text:?} appeared");
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_typed_and_directives_are_not() {
        let steps = parse("echo hi\n# a comment\n#>wait ready\n#>ctrl-c\nls\n#>ctrl-d\n#>sleep 5\n").unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Type(b"echo hi\n# a comment\n".to_vec()),
                Step::WaitFor("ready".into()),
                Step::Type(b"\x03ls\n\x04".to_vec()),
                Step::Sleep(Duration::from_millis(5)),
            ]
        );
    }

    #[test]
    fn an_unknown_directive_is_an_error_naming_its_line() {
        let err = parse("ls\n#>ctrl-x\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("ctrl-x"), "{err}");
        assert!(parse("#>sleep soon\n").is_err());
    }

    #[test]
    fn nothing_is_typed_before_the_kernel_says_its_input_is_on() {
        let transcript = Arc::new(Transcript::default());
        transcript.is_over.store(true, Ordering::SeqCst);
        let mut out = Vec::new();
        play(parse("early\n").unwrap(), &mut out, transcript);
        assert_eq!(out, b"");
    }

    #[test]
    fn waits_match_in_order_after_the_previous_match() {
        let lines: Vec<String> = ["$ a", "ready", "x", "ready"].iter().map(|s| s.to_string()).collect();
        assert_eq!(find_from(&lines, 0, "ready"), Some(1));
        assert_eq!(find_from(&lines, 2, "ready"), Some(3));
        assert_eq!(find_from(&lines, 4, "ready"), None);
    }

    #[test]
    fn play_types_until_a_wait_that_never_comes_and_stops_when_qemu_is_over() {
        let transcript = Arc::new(Transcript::default());
        transcript.lines.lock().unwrap().push(format!("{INPUT_READY_MARKER} (IRQ 4)"));
        transcript.lines.lock().unwrap().push("boot ok".into());
        transcript.is_over.store(true, Ordering::SeqCst);
        let mut out = Vec::new();
        let steps = parse("one\n#>wait boot ok\ntwo\n#>wait never\nthree\n").unwrap();
        play(steps, &mut out, transcript);
        assert_eq!(out, b"one\ntwo\n");
    }
}
