//! The page-fault error code: the bits the CPU pushes with a #PF, decoded in one place.
//!
//! ```text
//!  6   5   4   3   2   1   0
//! +---+---+---+---+---+---+---+
//! |SS |PK | I |RSV| U | W | P |
//! +---+---+---+---+---+---+---+
//!   P   = the page was present: a protection violation (else: not present)
//!   W   = the access was a write (else a read)
//!   U   = the access came from ring 3 (else from the kernel)
//!   RSV = a reserved bit was set in a paging entry
//!   I   = the access was an instruction fetch
//!   PK  = a protection key refused it;  SS = a shadow-stack access
//! ```
//! The trap dump prints it ([`PageFaultCode`]'s `Display`), the fault handler reads
//! the access from it (`mm::fault::Access`), the exception fixups check for
//! instruction fetches, and code that faults a page in on a process's behalf
//! (`process_vm_writev`) builds one with [`PageFaultCode::for_access`].

use core::fmt;

/// A page-fault error code, as the CPU pushed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFaultCode(pub u64);

impl PageFaultCode {
    /// Bit 0: the page was present (a protection violation).
    pub const PRESENT: u64 = 1 << 0;
    /// Bit 1: a write.
    pub const WRITE: u64 = 1 << 1;
    /// Bit 2: from user mode (ring 3).
    pub const USER: u64 = 1 << 2;
    /// Bit 3: a reserved bit was set in a paging-structure entry.
    pub const RESERVED: u64 = 1 << 3;
    /// Bit 4: an instruction fetch.
    pub const FETCH: u64 = 1 << 4;
    /// Bit 5: a protection key refused the access.
    pub const PROTECTION_KEY: u64 = 1 << 5;
    /// Bit 6: a shadow-stack access.
    pub const SHADOW_STACK: u64 = 1 << 6;

    /// Returns the code of a user-mode access: a write or a read, to a page that is
    /// present or not.
    pub fn for_access(is_write: bool, is_present: bool) -> PageFaultCode {
        let write = if is_write { Self::WRITE } else { 0 };
        let present = if is_present { Self::PRESENT } else { 0 };
        PageFaultCode(Self::USER | write | present)
    }

    fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }

    /// Returns true for a protection violation on a present page.
    pub fn is_present(self) -> bool {
        self.has(Self::PRESENT)
    }

    /// Returns true if the access was a write.
    pub fn is_write(self) -> bool {
        self.has(Self::WRITE)
    }

    /// Returns true if the access came from ring 3.
    pub fn is_user(self) -> bool {
        self.has(Self::USER)
    }

    /// Returns true if the access was an instruction fetch.
    pub fn is_fetch(self) -> bool {
        self.has(Self::FETCH)
    }
}

impl fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} from {} mode",
            if self.is_present() { "protection violation" } else { "page not present" },
            if self.is_fetch() {
                "on instruction fetch"
            } else if self.is_write() {
                "on write"
            } else {
                "on read"
            },
            if self.is_user() { "user" } else { "kernel" },
        )?;
        if self.has(Self::RESERVED) {
            write!(f, ", reserved bit set")?;
        }
        if self.has(Self::PROTECTION_KEY) {
            write!(f, ", protection key")?;
        }
        if self.has(Self::SHADOW_STACK) {
            write!(f, ", shadow stack")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn decodes_every_bit() {
        let code = PageFaultCode(0b111);
        assert!(code.is_present() && code.is_write() && code.is_user() && !code.is_fetch());
        assert_eq!(code.to_string(), "protection violation on write from user mode");
        assert_eq!(PageFaultCode(0b10000).to_string(), "page not present on instruction fetch from kernel mode");
        assert_eq!(PageFaultCode(0b1101000).to_string(), "page not present on read from kernel mode, reserved bit set, protection key, shadow stack");
    }

    #[test]
    fn for_access_builds_user_codes() {
        assert_eq!(PageFaultCode::for_access(false, false), PageFaultCode(0b100));
        assert_eq!(PageFaultCode::for_access(true, true), PageFaultCode(0b111));
        assert!(PageFaultCode::for_access(true, false).is_write());
    }
}
