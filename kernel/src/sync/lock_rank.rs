//! Lock ranks: the one lock order of the kernel, checked at run time in debug builds.
//!
//! Every [`IrqMutex`](super::IrqMutex) belongs to a class, a [`LockRank`]; the
//! classes are declared below in the order they may be taken, outermost first (the
//! order, with why and the interrupt state each lock needs, is written once in the
//! module doc of [`crate::mm`]). In debug builds the CPU keeps the locks it holds,
//! with their ranks, in a small table; taking a lock whose rank is not above every
//! held rank panics, naming both lock classes, *before* it spins. A lock-order
//! inversion is a deadlock waiting for the wrong interleaving; the check turns it into
//! a panic the first time either order runs (Linux's lockdep in miniature: it checks
//! against a fixed order instead of learning one).
//!
//! Three rules besides "strictly above":
//! - `try_lock` is not checked (it cannot wait, so it cannot deadlock) but its lock
//!   is recorded, so what is taken under it is checked against it.
//! - Two locks of the same class nest only through
//!   [`lock_nested`](super::IrqMutex::lock_nested), which takes the inner one at
//!   subclass 1 (Linux's `spin_lock_nested(.., SINGLE_DEPTH_NESTING)`). The caller
//!   promises that nobody takes the pair the other way round; fork, for instance,
//!   locks the parent and then the child that nobody else can reach yet.
//! - After reporting one violation the checker turns itself off (as lockdep does),
//!   so the panic path, which may take locks, is not reported again.
//!
//! Release builds compile the checker out: every lock still stores its [`LockRank`]
//! (the contention statistics of `lock_stat` count by class) but nothing is checked.
//!
//! The table is one per CPU (indexed by `arch::smp::cpu_id()`): a lock another CPU
//! holds is no reason to refuse one here. It stays consistent without a lock of its
//! own: only its CPU touches it, and an [`IrqMutex`](super::IrqMutex) is held only
//! with interrupts off, so nothing runs between the check, the acquisition and the
//! record.

/// Declares [`LockRank`] and `LockRank::ALL`, every rank in declaration order (so
/// indexed by its number), from one list of the classes.
macro_rules! lock_ranks {
    ($(#[$meta:meta])* pub enum LockRank { $($(#[doc = $doc:literal])* $rank:ident,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum LockRank {
            $($(#[doc = $doc])* $rank,)*
        }

        impl LockRank {
            /// Every rank, indexed by its number.
            pub const ALL: &[LockRank] = &[$(LockRank::$rank),*];
        }
    };
}

lock_ranks! {
    /// A lock class. Declared outermost first: a lock may be taken only while every lock
    /// held has a smaller rank. The lock order in [`crate::mm`] explains each one.
    pub enum LockRank {
        /// `proc::sched::RUN_QUEUE`: the runnable tasks.
        RunQueue,
        /// `proc::task::TASKS`: the task table.
        Tasks,
        /// An address space (`mm::addr_space::AddressSpace`, one lock per process).
        AddressSpace,
        /// `mm::swap::SWAP`: the swap area's slot map and the swap cache.
        Swap,
        /// A page cache's index (`mm::page_cache::PageCache::pages`, one per cached file).
        PageCache,
        /// `mm::reclaim::POLICY`: the replacement policy tracking user frames.
        ReclaimPolicy,
        /// `mm::rmap::FAMILIES`: the fork families of the reverse map.
        RmapFamilies,
        /// `mm::file_rmap::FILE_RMAP`: the file reverse map (which spaces map which file).
        FileRmap,
        /// `mm::ksm::STABLE`: same-page merging's merged pages and their places.
        KsmStable,
        /// `mm::addr_space::PCIDS`: TLB tags.
        Pcids,
        /// `mm::backing::OBJECTS`: the backing objects (program images).
        BackingObjects,
        /// `mm::page_cache::CACHES`: the registry of page caches by id.
        PageCacheRegistry,
        /// `block::DEVICES`: the registry of disks.
        BlockDevices,
        /// `mm::paging::KERNEL_PT`: the kernel's page tables.
        KernelPageTable,
        /// `mm::kstack::SLOTS`: kernel-stack slots.
        KernelStackSlots,
        /// `mm::heap::TYPED_CACHES`: the registry of typed slab caches.
        SlabRegistry,
        /// `fs::ext2fs::DEFERRED`: inode handles dropped where they could not sleep
        /// (taken under any lock a drop may happen under; the heap inside, to grow).
        DeferredInodes,
        /// `mm::reclaim::probe::DEFERRED`: address spaces whose last reference the
        /// policy's probe held (taken under the policy lock; the heap inside, to grow).
        DeferredSpaces,
        /// `mm::slabmag::MAGS[cpu]`: one CPU's slab magazines (the heap taken inside:
        /// refill, flush). Another CPU's is taken only by a drain, one at a time.
        SlabMag,
        /// `mm::heap::KMALLOC` and each typed slab cache: the kernel heap.
        Heap,
        /// `mm::heap::POOL`: the heap's emergency pool of page blocks.
        HeapPool,
        /// `mm::fail::PLAN`: fault injection, asked by the frame allocator.
        FailPlan,
        /// `mm::zero_pool::POOL`: the pre-zeroed frames (frames taken inside, to mark them).
        ZeroPool,
        /// `mm::pcp::PCP[cpu]`: one CPU's lists of free single frames (frames taken
        /// inside: refill, drain). Another CPU's is taken only by a drain, one at a time.
        Pcp,
        /// `mm::frame::FRAMES`: the frame table and the buddy allocator.
        Frames,
        /// `mm::vmstat::TRACE`: the fault trace ring.
        FaultTrace,
        /// `drivers::pci::CONFIG_LOCK`: PCI configuration space.
        PciConfig,
        /// `arch::ioapic::IOAPIC`: the I/O APIC's select/window register pair.
        IoApic,
        /// A lock nothing is taken under (the default of `IrqMutex::new`).
        Leaf,
    }
}

#[cfg(debug_assertions)]
pub(super) use checker::{acquired, check_order, released};

#[cfg(debug_assertions)]
mod checker {
    use core::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};

    use super::LockRank;
    use crate::arch::smp::{MAX_CPUS, cpu_id};

    /// The most locks the CPU may hold at once.
    const MAX_HELD: usize = 16;
    /// Subclasses per rank: `lock_nested` uses 1.
    const NR_SUBCLASSES: u16 = 4;

    /// One CPU's held locks: address, and level (`rank * NR_SUBCLASSES + subclass`).
    struct HeldLocks {
        addr: [AtomicUsize; MAX_HELD],
        level: [AtomicU16; MAX_HELD],
        nr_held: AtomicUsize,
    }

    /// The held locks, per CPU.
    static HELD: [HeldLocks; MAX_CPUS] = [const {
        HeldLocks {
            addr: [const { AtomicUsize::new(0) }; MAX_HELD],
            level: [const { AtomicU16::new(0) }; MAX_HELD],
            nr_held: AtomicUsize::new(0),
        }
    }; MAX_CPUS];
    /// Set once a violation was reported: the checker stays quiet afterwards.
    static IS_OFF: AtomicBool = AtomicBool::new(false);

    fn level(rank: LockRank, subclass: u8) -> u16 {
        u16::from(rank as u8) * NR_SUBCLASSES + u16::from(subclass)
    }

    fn rank_of(level: u16) -> (LockRank, u16) {
        let rank = LockRank::ALL[usize::from(level / NR_SUBCLASSES)];
        (rank, level % NR_SUBCLASSES)
    }

    /// Panics if taking the lock at `addr` of class `rank` (at `subclass`) could
    /// deadlock against a lock the CPU holds: every held level must be below it.
    /// Called with interrupts off, before spinning.
    pub(in crate::sync) fn check_order(addr: usize, rank: LockRank, subclass: u8) {
        if IS_OFF.load(Ordering::Relaxed) {
            return;
        }
        let new_level = level(rank, subclass);
        let HeldLocks { addr: held_addrs, level: held_levels, nr_held } = &HELD[cpu_id()];
        for i in 0..nr_held.load(Ordering::Relaxed) {
            let held_level = held_levels[i].load(Ordering::Relaxed);
            if held_level < new_level {
                continue;
            }
            IS_OFF.store(true, Ordering::Relaxed);
            let (held_rank, held_subclass) = rank_of(held_level);
            let held_addr = held_addrs[i].load(Ordering::Relaxed);
            if held_addr == addr {
                panic!("lock order: taking {rank:?} lock {addr:#x} that this CPU already holds (recursive locking)");
            }
            panic!(
                "lock order: taking {rank:?} lock {addr:#x} (subclass {subclass}) while holding \
                 {held_rank:?} lock {held_addr:#x} (subclass {held_subclass}); see the lock order in mm/mod.rs"
            );
        }
    }

    /// Records that the CPU now holds the lock at `addr`. Interrupts are off.
    pub(in crate::sync) fn acquired(addr: usize, rank: LockRank, subclass: u8) {
        let held = &HELD[cpu_id()];
        let n = held.nr_held.load(Ordering::Relaxed);
        if n == MAX_HELD {
            IS_OFF.store(true, Ordering::Relaxed);
            panic!("lock order: more than {MAX_HELD} spinlocks held at once (taking {rank:?})");
        }
        held.addr[n].store(addr, Ordering::Relaxed);
        held.level[n].store(level(rank, subclass), Ordering::Relaxed);
        held.nr_held.store(n + 1, Ordering::Relaxed);
    }

    /// Forgets the lock at `addr` (the latest record of it: guards may drop in any
    /// order). Interrupts are still off.
    pub(in crate::sync) fn released(addr: usize) {
        let held = &HELD[cpu_id()];
        let n = held.nr_held.load(Ordering::Relaxed);
        let Some(i) = (0..n).rev().find(|&i| held.addr[i].load(Ordering::Relaxed) == addr) else {
            return; // not recorded: the table overflowed, and that panicked already
        };
        for j in i..n - 1 {
            held.addr[j].store(held.addr[j + 1].load(Ordering::Relaxed), Ordering::Relaxed);
            held.level[j].store(held.level[j + 1].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        held.nr_held.store(n - 1, Ordering::Relaxed);
    }
}
