//! `kill [-SIGNAL] PID...`: kills each process (every signal kills here; `-0` only
//! checks that the process exists). A bad PID or signal: a message and exit code 1.
#![no_std]
#![no_main]

ulib::entry!(main);

fn main() -> i32 {
    let mut signal = 15;
    let mut status = 0;
    let mut nr_pids = 0;
    for arg in ulib::argv::args() {
        if let Some(sig) = arg.strip_prefix('-') {
            match sig.parse::<u64>() {
                Ok(n) if n <= 64 && nr_pids == 0 => signal = n,
                _ => {
                    ulib::eprintln!("kill: bad signal {arg:?}");
                    return 1;
                }
            }
            continue;
        }
        nr_pids += 1;
        let result = arg.parse::<ulib::Pid>().map_err(|_| ulib::Errno::EINVAL).and_then(|pid| ulib::kill(pid, signal));
        if let Err(e) = result {
            ulib::eprintln!("kill: ({arg}) - {e}");
            status = 1;
        }
    }
    if nr_pids == 0 {
        ulib::eprintln!("usage: kill [-SIGNAL] PID...");
        return 1;
    }
    status
}
