//! `sh [SCRIPT]`: a small Unix shell. It reads commands from the console (with a
//! `$ ` prompt) or from SCRIPT, and runs each with fork + execve(2) of `/bin/NAME`.
//!
//! ```text
//!   line:      words, | pipes, < and > redirections, & at the end for the background,
//!              `$!` the pid of the last background job,
//!              # to the end of the line is a comment
//!   builtins:  cd DIR, exit [N], wait, jobs, kill PID|%JOB...
//!   errors:    an unknown command, a file that cannot be opened, a bad builtin
//!              argument: a message on standard error, and the next line is read
//! ```
//! A foreground command is made the console's foreground process
//! (`ioctl(0, TIOCSPGRP)`), so Ctrl-C kills it and not the shell; while the shell
//! itself reads, there is no foreground process and Ctrl-C only drops the line.
//! Background jobs are listed by `jobs`, waited for by `wait`, and reported
//! `Done` when found finished before a prompt (`wait4(pid, WNOHANG)`).
//!
//! There is no heap: a line is split into words in a fixed buffer, with a NUL
//! after each so that `execve` can take pointers to them.
#![no_std]
#![no_main]

use ulib::fs::{self, o};
use ulib::{Errno, Fork, Pid, WaitStatus};

ulib::entry!(main);

/// The longest line.
const MAX_LINE: usize = 1024;
/// The most words (and operators) on a line.
const MAX_WORDS: usize = 64;
/// The most commands in one pipeline.
const MAX_STAGES: usize = 8;
/// The most background jobs at once.
const MAX_JOBS: usize = 16;

/// One command line, split: `text` holds the words, each followed by a NUL.
struct Words {
    text: [u8; MAX_LINE * 2],
    starts: [usize; MAX_WORDS],
    nr: usize,
}

impl Words {
    /// Splits `line` into words and the operators `|`, `<`, `>`, `&`; stops at `#`
    /// that starts a word. Err if there are too many words.
    fn split(line: &[u8]) -> Result<Words, &'static str> {
        let mut words = Words { text: [0; MAX_LINE * 2], starts: [0; MAX_WORDS], nr: 0 };
        let mut at = 0;
        let mut in_word = false;
        for &byte in line {
            let is_operator = matches!(byte, b'|' | b'<' | b'>' | b'&');
            if byte == b'#' && !in_word {
                break;
            }
            if byte.is_ascii_whitespace() || is_operator {
                if in_word {
                    words.text[at] = 0;
                    at += 1;
                    in_word = false;
                }
                if is_operator {
                    words.push_start(at)?;
                    words.text[at] = byte;
                    words.text[at + 1] = 0;
                    at += 2;
                }
                continue;
            }
            if !in_word {
                words.push_start(at)?;
                in_word = true;
            }
            words.text[at] = byte;
            at += 1;
        }
        if in_word {
            words.text[at] = 0;
        }
        Ok(words)
    }

    fn push_start(&mut self, at: usize) -> Result<(), &'static str> {
        if self.nr == MAX_WORDS {
            return Err("too many words");
        }
        self.starts[self.nr] = at;
        self.nr += 1;
        Ok(())
    }

    /// Returns word `i` without its NUL.
    fn get(&self, i: usize) -> &str {
        let start = self.starts[i];
        let len = self.text[start..].iter().position(|&b| b == 0).unwrap_or(0);
        core::str::from_utf8(&self.text[start..start + len]).unwrap_or("")
    }

    /// Returns a pointer to word `i`, NUL-terminated.
    fn ptr(&self, i: usize) -> *const u8 {
        self.text[self.starts[i]..].as_ptr()
    }
}

/// One command of a pipeline: its words `first..end` (operators and redirection
/// targets left out) and where its standard input and output come from.
#[derive(Clone, Copy)]
struct Stage {
    argv: [usize; MAX_WORDS],
    argc: usize,
    input: Option<usize>,
    output: Option<usize>,
}

impl Stage {
    const EMPTY: Stage = Stage { argv: [0; MAX_WORDS], argc: 0, input: None, output: None };
}

/// A parsed line: the stages of its pipeline and whether it runs in the background.
struct Pipeline {
    stages: [Stage; MAX_STAGES],
    nr: usize,
    is_background: bool,
}

/// Groups `words` into a pipeline; Err with a message for a syntax error.
fn parse(words: &Words) -> Result<Pipeline, &'static str> {
    let mut pipeline = Pipeline { stages: [Stage::EMPTY; MAX_STAGES], nr: 1, is_background: false };
    let mut i = 0;
    while i < words.nr {
        let stage = &mut pipeline.stages[pipeline.nr - 1];
        match words.get(i) {
            "|" => {
                if stage.argc == 0 || pipeline.nr == MAX_STAGES {
                    return Err("syntax error near |");
                }
                pipeline.nr += 1;
            }
            "<" | ">" => {
                let is_input = words.get(i) == "<";
                i += 1;
                if i >= words.nr || matches!(words.get(i), "|" | "<" | ">" | "&") {
                    return Err("syntax error: a redirection needs a file name");
                }
                if is_input { stage.input = Some(i) } else { stage.output = Some(i) }
            }
            "&" => {
                if i + 1 != words.nr {
                    return Err("syntax error: & must end the line");
                }
                pipeline.is_background = true;
            }
            _ => {
                stage.argv[stage.argc] = i;
                stage.argc += 1;
            }
        }
        i += 1;
    }
    if pipeline.stages[pipeline.nr - 1].argc == 0 && (pipeline.nr > 1 || pipeline.is_background) {
        return Err("syntax error: a command is missing");
    }
    Ok(pipeline)
}

/// A background job: the pids of its pipeline, the last one's reported.
#[derive(Clone, Copy, Default)]
struct Job {
    pids: [Pid; MAX_STAGES],
    nr: usize,
    is_used: bool,
}

/// The shell's state.
struct Shell {
    jobs: [Job; MAX_JOBS],
    last_status: i32,
    /// The pid of the last background job's last command: what `$!` expands to (0: none yet).
    last_background: Pid,
}

/// Reads lines from a file descriptor through a buffer.
struct LineReader {
    fd: i32,
    buf: [u8; MAX_LINE],
    start: usize,
    end: usize,
}

impl LineReader {
    /// Returns the next line (without its newline) in `out`; None at end of file.
    fn next_line<'a>(&mut self, out: &'a mut [u8; MAX_LINE]) -> Option<&'a [u8]> {
        let mut len = 0;
        loop {
            while self.start < self.end {
                let byte = self.buf[self.start];
                self.start += 1;
                if byte == b'\n' {
                    return Some(&out[..len]);
                }
                if len < MAX_LINE {
                    out[len] = byte;
                    len += 1;
                }
            }
            match fs::read(self.fd, &mut self.buf) {
                Ok(0) | Err(_) => return if len > 0 { Some(&out[..len]) } else { None },
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                }
            }
        }
    }
}

fn main() -> i32 {
    let (fd, is_interactive) = match ulib::argv::arg(1) {
        Some(path) => match fs::with_cstr(path, |c| fs::open(c, o::RDONLY, 0)) {
            Ok(fd) => (fd, false),
            Err(e) => {
                ulib::eprintln!("sh: {path}: {e}");
                return 127;
            }
        },
        None => (0, true),
    };
    let mut shell = Shell { jobs: [Job::default(); MAX_JOBS], last_status: 0, last_background: 0 };
    let mut reader = LineReader { fd, buf: [0; MAX_LINE], start: 0, end: 0 };
    let mut line = [0u8; MAX_LINE];
    loop {
        shell.report_done_jobs();
        if is_interactive {
            ulib::print!("$ ");
        }
        let Some(text) = reader.next_line(&mut line) else {
            return shell.last_status;
        };
        if let Some(code) = shell.run_line(text) {
            return code;
        }
    }
}

impl Shell {
    /// Runs one line; returns Some(code) if the shell must exit.
    fn run_line(&mut self, text: &[u8]) -> Option<i32> {
        let mut expanded = [0u8; MAX_LINE * 2];
        let text = expand_last_background(text, self.last_background, &mut expanded);
        let words = match Words::split(text) {
            Ok(words) => words,
            Err(message) => {
                ulib::eprintln!("sh: {message}");
                return None;
            }
        };
        if words.nr == 0 {
            return None;
        }
        let pipeline = match parse(&words) {
            Ok(p) => p,
            Err(message) => {
                ulib::eprintln!("sh: {message}");
                self.last_status = 2;
                return None;
            }
        };
        let first = &pipeline.stages[0];
        if pipeline.nr == 1 && !pipeline.is_background && first.input.is_none() && first.output.is_none() {
            let name = words.get(first.argv[0]);
            let args = |i: usize| words.get(first.argv[i]);
            match name {
                "exit" => {
                    let code = if first.argc > 1 { args(1).parse().unwrap_or(2) } else { self.last_status };
                    return Some(code);
                }
                "cd" => {
                    let dir = if first.argc > 1 { args(1) } else { "/" };
                    self.last_status = match fs::with_cstr(dir, fs::chdir) {
                        Ok(()) => 0,
                        Err(e) => {
                            ulib::eprintln!("sh: cd: {dir}: {e}");
                            1
                        }
                    };
                    return None;
                }
                "wait" => {
                    self.wait_all_jobs();
                    return None;
                }
                "jobs" => {
                    self.list_jobs();
                    return None;
                }
                "kill" => {
                    self.last_status = self.kill_builtin(&words, first);
                    return None;
                }
                _ => {}
            }
        }
        self.run_pipeline(&words, &pipeline);
        None
    }

    /// Starts every stage of `pipeline`, connected by pipes; waits for it unless it
    /// runs in the background.
    fn run_pipeline(&mut self, words: &Words, pipeline: &Pipeline) {
        let mut pids = [0 as Pid; MAX_STAGES];
        let mut nr_started = 0;
        let mut input_fd: Option<i32> = None; // the read end of the previous pipe
        for (index, stage) in pipeline.stages[..pipeline.nr].iter().enumerate() {
            let pipe = if index + 1 < pipeline.nr {
                match fs::pipe() {
                    Ok(p) => Some(p),
                    Err(e) => {
                        ulib::eprintln!("sh: pipe: {e}");
                        break;
                    }
                }
            } else {
                None
            };
            match ulib::fork() {
                Ok(Fork::Child) => {
                    // The last command of a foreground pipeline makes itself the
                    // foreground process too (the parent does the same): whichever
                    // runs first, Ctrl-C reaches it from its first instruction.
                    if !pipeline.is_background && index + 1 == pipeline.nr {
                        let _ = ulib::set_foreground(ulib::getpid());
                    }
                    run_child(words, stage, input_fd, pipe)
                }
                Ok(Fork::Parent(pid)) => {
                    pids[nr_started] = pid;
                    nr_started += 1;
                }
                Err(e) => ulib::eprintln!("sh: fork: {e}"),
            }
            if let Some(fd) = input_fd.take() {
                let _ = fs::close(fd);
            }
            if let Some([read_end, write_end]) = pipe {
                let _ = fs::close(write_end);
                input_fd = Some(read_end);
            }
        }
        if let Some(fd) = input_fd {
            let _ = fs::close(fd);
        }
        if nr_started == 0 {
            return;
        }
        if pipeline.is_background {
            self.add_job(&pids[..nr_started]);
            return;
        }
        // Ctrl-C kills the last command of the pipeline; the others then see a
        // closed pipe.
        let _ = ulib::set_foreground(pids[nr_started - 1]);
        for &pid in &pids[..nr_started] {
            if let Ok((_, status)) = ulib::waitpid(pid) {
                self.last_status = match status {
                    WaitStatus::Exited(code) => i32::from(code),
                    WaitStatus::Killed(sig) => 128 + i32::from(sig),
                };
            }
        }
        let _ = ulib::set_foreground(0);
    }

    /// Records a background job and prints `[N] PID`.
    fn add_job(&mut self, pids: &[Pid]) {
        let Some((number, job)) = self.jobs.iter_mut().enumerate().find(|(_, j)| !j.is_used) else {
            ulib::eprintln!("sh: too many jobs; not tracking pid {}", pids[pids.len() - 1]);
            return;
        };
        job.pids[..pids.len()].copy_from_slice(pids);
        job.nr = pids.len();
        job.is_used = true;
        self.last_background = pids[pids.len() - 1];
        ulib::println!("[{}] {}", number + 1, pids[pids.len() - 1]);
    }

    /// Reaps the background jobs that have ended and prints `[N] Done`.
    fn report_done_jobs(&mut self) {
        for (number, job) in self.jobs.iter_mut().enumerate().filter(|(_, j)| j.is_used) {
            let mut nr_running = 0;
            for pid in job.pids[..job.nr].iter_mut().filter(|p| **p != 0) {
                match ulib::try_waitpid(*pid) {
                    Ok(Some(_)) | Err(_) => *pid = 0,
                    Ok(None) => nr_running += 1,
                }
            }
            if nr_running == 0 {
                job.is_used = false;
                ulib::println!("[{}] Done", number + 1);
            }
        }
    }

    /// `wait`: waits for every background job.
    fn wait_all_jobs(&mut self) {
        for job in self.jobs.iter_mut().filter(|j| j.is_used) {
            for &pid in job.pids[..job.nr].iter().filter(|p| **p != 0) {
                let _ = ulib::waitpid(pid);
            }
            job.is_used = false;
        }
        self.last_status = 0;
    }

    /// `jobs`: lists the background jobs.
    fn list_jobs(&self) {
        for (number, job) in self.jobs.iter().enumerate().filter(|(_, j)| j.is_used) {
            ulib::println!("[{}] Running pid {}", number + 1, job.pids[job.nr - 1]);
        }
    }

    /// `kill PID|%JOB...`: kills processes, or every process of a job.
    fn kill_builtin(&mut self, words: &Words, stage: &Stage) -> i32 {
        if stage.argc < 2 {
            ulib::eprintln!("sh: kill: usage: kill PID|%JOB...");
            return 2;
        }
        let mut status = 0;
        for &word in &stage.argv[1..stage.argc] {
            let arg = words.get(word);
            let result = match arg.strip_prefix('%') {
                Some(number) => match self.job_index(number) {
                    Some(n) => kill_job(&self.jobs[n]),
                    None => Err(Errno::ESRCH),
                },
                None => match arg.parse::<Pid>() {
                    Ok(pid) => ulib::kill(pid, 15),
                    Err(_) => Err(Errno::EINVAL),
                },
            };
            if let Err(e) = result {
                ulib::eprintln!("sh: kill: {arg}: {e}");
                status = 1;
            }
        }
        status
    }
}

impl Shell {
    /// Returns the index of job `%number` if it exists.
    fn job_index(&self, number: &str) -> Option<usize> {
        let n = number.parse::<usize>().ok()?.checked_sub(1)?;
        (n < MAX_JOBS && self.jobs[n].is_used).then_some(n)
    }
}

/// Kills every process of `job` still alive.
fn kill_job(job: &Job) -> Result<(), Errno> {
    for &pid in job.pids[..job.nr].iter().filter(|p| **p != 0) {
        match ulib::kill(pid, 15) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// In the child: sets up standard input and output, then runs the command; never returns.
fn run_child(words: &Words, stage: &Stage, input_fd: Option<i32>, pipe: Option<[i32; 2]>) -> ! {
    if let Some(fd) = input_fd {
        let _ = fs::dup2(fd, 0);
        let _ = fs::close(fd);
    }
    if let Some([read_end, write_end]) = pipe {
        let _ = fs::dup2(write_end, 1);
        let _ = fs::close(write_end);
        let _ = fs::close(read_end);
    }
    if let Some(i) = stage.input {
        redirect(words.get(i), o::RDONLY, 0);
    }
    if let Some(i) = stage.output {
        redirect(words.get(i), o::WRONLY | o::CREAT | o::TRUNC, 1);
    }
    if stage.argc == 0 {
        ulib::exit(0); // a line of redirections only: the files are made, nothing runs
    }
    let name = words.get(stage.argv[0]);
    let mut path = [0u8; 256];
    let path_len = if name.contains('/') { 0 } else { 5 };
    if path_len + name.len() >= path.len() {
        ulib::eprintln!("sh: {name}: name too long");
        ulib::exit(127);
    }
    path[..path_len].copy_from_slice(&b"/bin/"[..path_len]);
    path[path_len..path_len + name.len()].copy_from_slice(name.as_bytes());
    let mut argv = [core::ptr::null::<u8>(); MAX_WORDS + 1];
    for (slot, &word) in argv.iter_mut().zip(&stage.argv[..stage.argc]) {
        *slot = words.ptr(word);
    }
    let envp = [c"HOME=/".as_ptr().cast::<u8>(), c"TERM=linux".as_ptr().cast::<u8>(), core::ptr::null()];
    // SAFETY: `path` is NUL-terminated (zeroed beyond the name), `argv` and `envp`
    // are NULL-terminated arrays of pointers to NUL-terminated strings that live
    // until execve has copied them.
    let error = unsafe { ulib::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    if error == Errno::ENOENT {
        ulib::eprintln!("sh: {name}: command not found");
    } else {
        ulib::eprintln!("sh: {name}: {error}");
    }
    ulib::exit(127)
}

/// In the child: opens `path` with `flags` onto fd `target`, or exits 1 with a message.
fn redirect(path: &str, flags: u64, target: i32) {
    match fs::with_cstr(path, |c| fs::open(c, flags, 0o644)) {
        Ok(fd) => {
            let _ = fs::dup2(fd, target);
            let _ = fs::close(fd);
        }
        Err(e) => {
            ulib::eprintln!("sh: {path}: {e}");
            ulib::exit(1);
        }
    }
}

/// Returns `line` with each `$!` replaced by `pid` (the last background job's, as
/// in POSIX sh), written into `out`; a line that would not fit is cut.
fn expand_last_background<'a>(line: &[u8], pid: Pid, out: &'a mut [u8; MAX_LINE * 2]) -> &'a [u8] {
    let mut digits = [0u8; 20];
    let mut nr_digits = 0;
    let mut rest = pid;
    loop {
        digits[19 - nr_digits] = b'0' + (rest % 10) as u8;
        nr_digits += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let pid_text = &digits[20 - nr_digits..];
    let (mut i, mut len) = (0, 0);
    while i < line.len() {
        let (piece, step): (&[u8], usize) = if line[i..].starts_with(b"$!") { (pid_text, 2) } else { (&line[i..=i], 1) };
        i += step;
        for &byte in piece {
            if len < out.len() {
                out[len] = byte;
                len += 1;
            }
        }
    }
    &out[..len]
}
