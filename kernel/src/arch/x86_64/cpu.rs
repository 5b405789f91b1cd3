//! CPU features the memory manager depends on, detected with CPUID and switched on
//! in EFER, CR0 and CR4.
//!
//! | bit | register | effect |
//! |---|---|---|
//! | NXE | EFER | the NX bit (63) in page tables is honoured: data is not executable |
//! | WP | CR0 | the kernel too faults on writes to read-only pages (needed for COW) |
//! | PGE | CR4 | GLOBAL pages survive CR3 reloads: kernel mappings stay in the TLB |
//! | SMEP | CR4 | the kernel faults if it executes a user page |
//! | SMAP | CR4 | the kernel faults if it touches a user page outside `stac`/`clac` |
//! | PCIDE | CR4 | TLB entries are tagged with a 12-bit address-space id from CR3 |

use core::arch::x86_64::__cpuid_count;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Paging-related CPU features.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// No-execute bit.
    pub has_nx: bool,
    /// Global pages.
    pub has_pge: bool,
    /// Supervisor-mode execution prevention.
    pub has_smep: bool,
    /// Supervisor-mode access prevention.
    pub has_smap: bool,
    /// Process-context identifiers.
    pub has_pcid: bool,
    /// `invpcid` instruction.
    pub has_invpcid: bool,
    /// 1 GiB pages.
    pub has_1g_pages: bool,
}

/// Reads the features from CPUID.
pub fn detect() -> Features {
    let (leaf1, leaf7, ext1) = (__cpuid_count(1, 0), __cpuid_count(7, 0), __cpuid_count(0x8000_0001, 0));
    Features {
        has_nx: ext1.edx & (1 << 20) != 0,
        has_pge: leaf1.edx & (1 << 13) != 0,
        has_smep: leaf7.ebx & (1 << 7) != 0,
        has_smap: leaf7.ebx & (1 << 20) != 0,
        has_pcid: leaf1.ecx & (1 << 17) != 0,
        has_invpcid: leaf7.ebx & (1 << 10) != 0,
        has_1g_pages: ext1.edx & (1 << 26) != 0,
    }
}

/// Returns CPUID leaf 1's EDX, the feature bits Linux hands programs as `AT_HWCAP`.
pub fn hwcap() -> u64 {
    u64::from(__cpuid_count(1, 0).edx)
}

/// Returns 64 random bits for a new program's `AT_RANDOM` (its stack canary).
///
/// From `rdrand` when the CPU has it (CPUID leaf 1, ECX bit 30; QEMU's `-cpu max`
/// does, seeded from the host). Without it, the time-stamp counter and a counter
/// are mixed with splitmix64: unpredictable enough for a teaching kernel, not for
/// an attacker.
pub fn random_u64() -> u64 {
    if __cpuid_count(1, 0).ecx & (1 << 30) != 0 {
        for _ in 0..10 {
            let (value, is_ok): (u64, u8);
            // SAFETY: rdrand only writes the output register and CF; the CPU has it (checked).
            unsafe {
                core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) is_ok, options(nomem, nostack));
            }
            if is_ok != 0 {
                return value;
            }
        }
    }
    static CALLS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let mut z = super::timer::rdtsc() ^ CALLS.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

static SMAP_ON: AtomicBool = AtomicBool::new(false);
static PCID_ON: AtomicBool = AtomicBool::new(false);

/// Returns true once SMAP is enabled (user-access routines must then use `stac`).
pub fn smap_enabled() -> bool {
    SMAP_ON.load(Ordering::Relaxed)
}

/// Returns true once PCIDs are enabled.
pub fn pcid_enabled() -> bool {
    PCID_ON.load(Ordering::Relaxed)
}

/// Turns on NXE and WP (before the kernel's page tables are loaded).
pub fn enable_nx_and_wp() {
    let features = detect();
    assert!(features.has_nx, "cpu: no NX bit; W^X cannot be enforced");
    // SAFETY: setting NXE only makes bit 63 of PTEs meaningful; the bootloader's tables
    // and ours set it only on data. WP makes read-only pages read-only for ring 0 too;
    // the kernel never writes to its read-only mappings.
    unsafe {
        Efer::update(|f| *f |= EferFlags::NO_EXECUTE_ENABLE);
        Cr0::update(|f| *f |= Cr0Flags::WRITE_PROTECT);
    }
}

/// Turns on PGE, SMEP, SMAP and PCIDE where present (after the switch to our tables).
///
/// PCIDE may only be set while CR3's PCID field is 0, which is the case for the
/// kernel's own table.
pub fn enable_protection() -> Features {
    let features = detect();
    let mut flags = Cr4Flags::empty();
    if features.has_pge {
        flags |= Cr4Flags::PAGE_GLOBAL;
    }
    if features.has_smep {
        flags |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if features.has_smap {
        flags |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    if features.has_pcid {
        flags |= Cr4Flags::PCID;
    }
    // SAFETY: the kernel's page tables map nothing in the lower half, so SMEP/SMAP
    // cannot break kernel code; user accesses go through `uaccess` with stac/clac.
    // PCIDE: CR3's PCID is 0 here (checked by the CPU, which would #GP otherwise).
    unsafe { Cr4::update(|f| *f |= flags) };
    SMAP_ON.store(features.has_smap, Ordering::Relaxed);
    PCID_ON.store(features.has_pcid, Ordering::Relaxed);
    features
}
