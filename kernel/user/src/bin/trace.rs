//! `trace on|off|show [PID]`: the kernel's page-fault trace. `on` empties the
//! ring and starts recording every fault (time, pid, address, access, outcome);
//! `off` stops; `show` prints the recorded faults, oldest first, of one process or
//! of all. The ring keeps the last 64 faults (`mm::vmstat::TRACE_LEN`).
//!
//! ```text
//!  $ trace on
//!  $ memhog 4 &
//!  $ trace show
//!       ms   pid  address             access  outcome
//!     1234    12  0x00007ff000000000  write   anonymous page
//! ```
//! A bad argument: a message and exit code 1; so is `show PID` for a PID with
//! no process and no recorded fault (ESRCH).
#![no_std]
#![no_main]

use abi::FaultTraceRecord;
use abi::trace::{op, outcome};
use ulib::println;

ulib::entry!(main);

/// How many records `show` asks for: the kernel's whole ring.
const MAX_RECORDS: usize = 64;

fn main() -> i32 {
    let command = ulib::argv::arg(1).unwrap_or("");
    let pid = match ulib::argv::arg(2).map(str::parse::<ulib::Pid>) {
        None => 0,
        Some(Ok(pid)) => pid,
        Some(Err(_)) => {
            ulib::eprintln!("trace: bad pid {:?}", ulib::argv::arg(2).unwrap_or_default());
            return 1;
        }
    };
    let result = match command {
        "on" => ulib::fault_trace(op::ON, 0, &mut []).map(|_| println!("trace: recording page faults")),
        "off" => ulib::fault_trace(op::OFF, 0, &mut []).map(|_| println!("trace: off")),
        "show" => show(pid),
        _ => {
            ulib::eprintln!("usage: trace on|off|show [PID]");
            return 1;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            ulib::eprintln!("trace: {e}");
            1
        }
    }
}

fn show(pid: ulib::Pid) -> Result<(), ulib::Errno> {
    let mut records = [FaultTraceRecord::default(); MAX_RECORDS];
    let n = ulib::fault_trace(op::READ, pid, &mut records)?;
    println!("{:>8}  {:>4}  {:<18}  {:<6}  outcome", "ms", "pid", "address", "access");
    for r in &records[..n] {
        let access = ["read", "write", "exec"].get(r.access as usize).copied().unwrap_or("?");
        println!("{:>8}  {:>4}  {:#018x}  {:<6}  {}", r.ms, r.pid, r.addr, access, outcome::name(r.outcome));
    }
    if n == 0 {
        // A PID is only a filter (the faults of a process that has exited stay in
        // the ring), but a PID with no faults and no process is a typo: say so.
        if pid != 0 && !is_process(pid) {
            return Err(ulib::Errno::ESRCH);
        }
        println!("(no faults recorded: `trace on` first?)");
    }
    Ok(())
}

/// Returns true if `/proc/PID` exists.
fn is_process(pid: ulib::Pid) -> bool {
    let mut buf = [0u8; 512];
    let path = ulib::procfs::ShortString::new(format_args!("/proc/{pid}/status"));
    ulib::procfs::read(path.as_str(), &mut buf).is_ok()
}
