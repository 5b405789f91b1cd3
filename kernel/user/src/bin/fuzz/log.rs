//! The log of the last operations, printed when a check fails, and the failure
//! report itself (enough to replay the run exactly).

use ulib::println;

/// Operations kept for the failure report.
pub const LOG_LEN: usize = 48;

/// One operation as it was issued.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpRecord {
    /// Its index in this process's run.
    pub index: u64,
    /// What it was (`"mprotect"`, ...); empty for an unused slot.
    pub kind: &'static str,
    /// Its arguments (addresses, lengths, flags, as the kind defines).
    pub args: [u64; 4],
    /// What the kernel answered (a value, or `-errno`); 0 for pure memory accesses.
    pub result: i64,
}

/// A ring of the last [`LOG_LEN`] operations.
pub struct OpLog {
    records: [OpRecord; LOG_LEN],
    next: usize,
}

impl OpLog {
    /// Returns an empty log.
    pub const fn new() -> OpLog {
        OpLog { records: [OpRecord { index: 0, kind: "", args: [0; 4], result: 0 }; LOG_LEN], next: 0 }
    }

    /// Starts the record of operation `index`; returns its slot for the result.
    pub fn push(&mut self, index: u64, kind: &'static str, args: [u64; 4]) -> usize {
        let slot = self.next % LOG_LEN;
        self.records[slot] = OpRecord { index, kind, args, result: 0 };
        self.next += 1;
        slot
    }

    /// Sets the result of the record in `slot`.
    pub fn set_result(&mut self, slot: usize, result: i64) {
        self.records[slot].result = result;
    }

    /// Prints the records, oldest first.
    pub fn print(&self) {
        let nr = self.next.min(LOG_LEN);
        println!("fuzz: the last {nr} operations (kind [args] -> result):");
        for i in self.next - nr..self.next {
            let r = &self.records[i % LOG_LEN];
            println!(
                "fuzz:   #{} {} [{:#x} {:#x} {:#x} {:#x}] -> {}",
                r.index, r.kind, r.args[0], r.args[1], r.args[2], r.args[3], r.result
            );
        }
    }
}
