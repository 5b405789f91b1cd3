//! The teaching tools' syscalls (ours, 1020-1029): `explain` (the page-table walk
//! and next fault at one address, `mm::explain`) and `fault_trace` (the fault
//! trace ring of `mm::vmstat`, for the `trace` tool).
//!
//! ```text
//!  explain(pid, addr, out)          pid 0: the caller; ESRCH: no such live user process;
//!                                   EINVAL: a non-canonical address; EFAULT: a bad `out`
//!  fault_trace(op, pid, buf, n)     op OFF / ON (empties the ring) / READ: up to n
//!                                   records of `pid` (0: all), oldest first; EINVAL: bad op
//! ```
//! Any process may explain any other: this is a teaching kernel, and the answer
//! holds addresses and frame numbers, not memory contents.

use abi::trace::{op, outcome};
use abi::{Errno, FaultTraceRecord};

use super::task;
use super::uaccess::copy_to_user;
use crate::mm::VirtAddr;
use crate::mm::fault::{Access, FaultOutcome};
use crate::mm::vmstat;
use alloc::vec::Vec;

/// `explain(pid, addr, out)`: fills an `abi::Explain` for `addr` in process `pid`.
pub fn sys_explain(pid: u64, addr: u64, out: u64) -> Result<u64, Errno> {
    let addr = VirtAddr::try_new(addr).map_err(|_| Errno::EINVAL)?;
    let pid = if pid == 0 { task::current_pid() } else { pid };
    if !task::is_live_user_process(pid) {
        return Err(Errno::ESRCH);
    }
    let space = task::TASKS.lock().get(&pid).and_then(|t| t.space.clone()).ok_or(Errno::ESRCH)?;
    let explained = crate::mm::explain::explain(&space.lock(), addr);
    let mut bytes = [0u8; abi::Explain::WORDS * 8];
    for (i, w) in explained.to_words().iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    copy_to_user(out, &bytes)?;
    Ok(0)
}

/// `fault_trace(op, pid, buf, n)`: see the module docs.
pub fn sys_fault_trace(operation: u64, pid: u64, buf: u64, n: u64) -> Result<u64, Errno> {
    match operation {
        op::OFF => vmstat::set_tracing(false),
        op::ON => {
            vmstat::clear_trace();
            vmstat::set_tracing(true);
        }
        op::READ => {
            let records = trace_records(pid);
            let records = &records[records.len().saturating_sub(n as usize)..];
            let mut bytes = alloc::vec![0u8; records.len() * FaultTraceRecord::WORDS * 8];
            for (chunk, record) in bytes.as_chunks_mut::<{ FaultTraceRecord::WORDS * 8 }>().0.iter_mut().zip(records) {
                for (i, w) in record.to_words().iter().enumerate() {
                    chunk[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
                }
            }
            copy_to_user(buf, &bytes)?;
            return Ok(records.len() as u64);
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// Returns the traced faults of process `pid` (0: every process), oldest first, as
/// `fault_trace` reports them.
pub fn trace_records(pid: u64) -> Vec<FaultTraceRecord> {
    let (records, _) = vmstat::trace_records();
    records
        .iter()
        .filter(|r| pid == 0 || r.pid == pid)
        .map(|r| FaultTraceRecord {
            ms: r.ms,
            pid: r.pid,
            addr: r.addr.as_u64(),
            access: match r.access {
                Access::Read => 0,
                Access::Write => 1,
                Access::Exec => 2,
            },
            outcome: r.outcome.map_or(outcome::BAD_ACCESS, outcome_code),
        })
        .collect()
}

fn outcome_code(o: FaultOutcome) -> u64 {
    match o {
        FaultOutcome::AnonymousPage => outcome::ANONYMOUS_PAGE,
        FaultOutcome::ZeroPage => outcome::ZERO_PAGE,
        FaultOutcome::ImagePage => outcome::IMAGE_PAGE,
        FaultOutcome::CowCopy => outcome::COW_COPY,
        FaultOutcome::CowReuse => outcome::COW_REUSE,
        FaultOutcome::SharedWrite => outcome::SHARED_WRITE,
        FaultOutcome::StackGrowth => outcome::STACK_GROWTH,
        FaultOutcome::Spurious => outcome::SPURIOUS,
        FaultOutcome::SwapIn => outcome::SWAP_IN,
        FaultOutcome::SwapCacheHit => outcome::SWAP_CACHE_HIT,
        FaultOutcome::HugePage => outcome::HUGE_PAGE,
        FaultOutcome::FilePage => outcome::FILE_PAGE,
        FaultOutcome::FileCopy => outcome::FILE_COPY,
    }
}
