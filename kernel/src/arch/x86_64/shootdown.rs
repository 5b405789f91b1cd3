//! TLB shootdown: making a page-table change visible on the other CPUs.
//!
//! Each CPU caches translations in its own TLB. When a PTE is removed or narrowed
//! (munmap, mprotect, COW write-protect, swap-out, reclaim, migration), flushing
//! the TLB of the CPU that made the change is not enough: another CPU running the
//! same address space may go on using the old translation, and would write into a
//! frame that has meanwhile been freed and handed to someone else. So the changing
//! CPU asks every other CPU that may hold the translation to flush it, and waits
//! until each has said it did, before the frame can be freed or reused:
//!
//! ```text
//!  initiator (CPU 0), space S locked            target (CPU 1), running S
//!  change the PTEs; collect the pages (a batch)
//!  flush them locally (invlpg, or CR3 reload)
//!  REQUESTS[0] = {root of S, pages or "all"}
//!  REQUESTS[0].targets = {1} (Release)
//!  one IPI SHOOTDOWN_VECTOR  ------------------> interrupt (or a spin loop polling):
//!                                                 my bit set in REQUESTS[0].targets?
//!  spin while targets != 0,                       CR3 is S: invlpg each page
//!    polling requests aimed at me                 (CR3 is not S any more: mark S
//!                                                  stale for me: flush at next load)
//!                                   <------------ clear my bit (Release)
//!  targets == 0: the frames may be freed
//! ```
//! One request slot per initiating CPU, so several CPUs can shoot at once; a batch
//! of up to [`MAX_PAGES`] pages travels as a list, a larger one as "flush all".
//! One IPI per target CPU per batch, never one per page.
//!
//! **No deadlock while waiting.** Every spinlock here disables interrupts, so a CPU
//! spinning on a lock that the initiator holds could never take the IPI, and the
//! initiator would wait for it forever. Hence [`poll`]: the initiator's wait loop,
//! `IrqMutex`'s spin loop and the scheduler's waits all call it, and carry out any
//! flush request aimed at their CPU. A flush takes no lock and touches nothing but
//! the TLB and the requester's atomics, so it is safe to run there.
//!
//! **Lazy TLB.** Who is a target is decided by the caller (`mm::addr_space`): CPUs
//! with the space loaded now get the IPI; CPUs that ran it earlier (their TLB may
//! still hold its PCID-tagged entries) are only marked stale in the space, and flush
//! at their next load of it: no IPI interrupts an idle CPU or a kernel thread.
//!
//! Kernel mappings (global entries: kmap windows, kernel stacks) are shot down on
//! every other online CPU ([`flush_kernel_everywhere`]).

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use mm_core::addr::{Frame, VirtAddr};
use mm_core::pagetable::FlushPlan;

use super::{lapic, smp, tlb};

/// The most pages one request lists; a larger batch is sent as "flush all".
pub const MAX_PAGES: usize = 32;
/// `Request::nr_pages` for "flush everything of that space".
const ALL: usize = usize::MAX;
/// `Request::root` for kernel (global) mappings: flushed whatever CR3 holds.
const KERNEL_ROOT: u64 = u64::MAX;

/// One initiating CPU's request to the others.
struct Request {
    /// CPUs that have not flushed yet (bit n: CPU n).
    targets: AtomicU64,
    /// The physical address of the space's root, or [`KERNEL_ROOT`].
    root: AtomicU64,
    /// The space's per-CPU "stale" mask, set by a target that no longer has it loaded.
    stale: AtomicPtr<AtomicU64>,
    /// How many of `pages` are used, or [`ALL`].
    nr_pages: AtomicUsize,
    /// With [`ALL`]: GLOBAL entries must go too.
    has_global: AtomicBool,
    /// The pages to flush.
    pages: [AtomicU64; MAX_PAGES],
}

static REQUESTS: [Request; smp::MAX_CPUS] = [const {
    Request {
        targets: AtomicU64::new(0),
        root: AtomicU64::new(0),
        stale: AtomicPtr::new(core::ptr::null_mut()),
        nr_pages: AtomicUsize::new(0),
        has_global: AtomicBool::new(false),
        pages: [const { AtomicU64::new(0) }; MAX_PAGES],
    }
}; smp::MAX_CPUS];

/// Shootdowns started (requests with at least one remote target).
static NR_SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);
/// Shootdown IPIs sent.
static NR_IPIS: AtomicU64 = AtomicU64::new(0);
/// Pages a remote CPU was asked to flush (one per page per target; "all" counts 0).
static NR_PAGES_FLUSHED: AtomicU64 = AtomicU64::new(0);
/// Remote full flushes asked for.
static NR_FULL_FLUSHES: AtomicU64 = AtomicU64::new(0);
/// CPUs that may hold a changed space's entries but did not have it loaded: marked
/// stale instead of interrupted (lazy TLB).
static NR_LAZY_SKIPS: AtomicU64 = AtomicU64::new(0);

/// The shootdown counters, for /proc/vmstat and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShootdownStats {
    /// Shootdowns started.
    pub shootdowns: u64,
    /// IPIs sent for them.
    pub ipis: u64,
    /// Pages remote CPUs were asked to flush.
    pub pages: u64,
    /// Remote full flushes asked for.
    pub full_flushes: u64,
    /// CPUs left to flush lazily at their next load instead of an IPI.
    pub lazy_skips: u64,
}

/// Returns the counters so far.
pub fn stats() -> ShootdownStats {
    ShootdownStats {
        shootdowns: NR_SHOOTDOWNS.load(Ordering::Relaxed),
        ipis: NR_IPIS.load(Ordering::Relaxed),
        pages: NR_PAGES_FLUSHED.load(Ordering::Relaxed),
        full_flushes: NR_FULL_FLUSHES.load(Ordering::Relaxed),
        lazy_skips: NR_LAZY_SKIPS.load(Ordering::Relaxed),
    }
}

/// Counts `n` CPUs that were left to flush at their next load.
pub fn count_lazy_skips(n: u32) {
    NR_LAZY_SKIPS.fetch_add(u64::from(n), Ordering::Relaxed);
}

/// Returns the mask of online CPUs.
pub fn online_mask() -> u64 {
    (0..smp::MAX_CPUS).filter(|&c| smp::per_cpu(c).is_online.load(Ordering::Acquire)).fold(0, |m, c| m | 1 << c)
}

/// Returns this CPU's bit.
pub fn my_bit() -> u64 {
    1 << smp::cpu_id()
}

/// What a shootdown asks the targets to flush.
#[derive(Clone, Copy, Debug)]
pub enum Flushes<'a> {
    /// These pages (at most [`MAX_PAGES`]; more are sent as `All`).
    Pages(&'a [VirtAddr]),
    /// Everything of the space; with `has_global`, GLOBAL entries too.
    All {
        /// GLOBAL entries must go too.
        has_global: bool,
    },
}

impl Flushes<'_> {
    /// Returns the flushes of a plan, with `buffer` holding its pages.
    pub fn of_plan(plan: FlushPlan, buffer: &mut [VirtAddr; MAX_PAGES]) -> Option<Flushes<'_>> {
        match plan {
            FlushPlan::Nothing => None,
            FlushPlan::All { has_global } => Some(Flushes::All { has_global }),
            FlushPlan::Pages(pages) => {
                let mut n = 0;
                for page in pages {
                    if n == MAX_PAGES {
                        return Some(Flushes::All { has_global: false });
                    }
                    buffer[n] = page;
                    n += 1;
                }
                Some(Flushes::Pages(&buffer[..n]))
            }
        }
    }

    /// Carries the flushes out on this CPU (for the space loaded now).
    pub fn flush_locally(&self) {
        match *self {
            Flushes::Pages(pages) => pages.iter().for_each(|&p| tlb::flush_page(p)),
            Flushes::All { has_global: true } => tlb::flush_all_including_global(),
            Flushes::All { has_global: false } => tlb::flush_all(),
        }
    }
}

/// Asks the CPUs in `targets` (not this one) to carry out `flushes` for the space
/// whose root is `root` (`None`: kernel mappings), and waits until all have. A target
/// that no longer has that space loaded sets its bit in `stale` instead.
pub fn shoot(targets: u64, root: Option<Frame>, stale: Option<&AtomicU64>, flushes: Flushes<'_>) {
    let targets = targets & !my_bit();
    if targets == 0 {
        return;
    }
    // Interrupts off: this CPU's request slot must not be reused by an interrupt
    // handler before the targets have read it.
    x86_64::instructions::interrupts::without_interrupts(|| {
        let request = &REQUESTS[smp::cpu_id()];
        debug_assert_eq!(request.targets.load(Ordering::Relaxed), 0, "shoot: request slot busy");
        request.root.store(root.map_or(KERNEL_ROOT, |r| r.start_address().as_u64()), Ordering::Relaxed);
        request.stale.store(stale.map_or(core::ptr::null_mut(), |s| core::ptr::from_ref(s).cast_mut()), Ordering::Relaxed);
        let nr_targets = u64::from(targets.count_ones());
        match flushes {
            Flushes::Pages(pages) if pages.len() <= MAX_PAGES => {
                for (slot, page) in request.pages.iter().zip(pages) {
                    slot.store(page.as_u64(), Ordering::Relaxed);
                }
                request.nr_pages.store(pages.len(), Ordering::Relaxed);
                NR_PAGES_FLUSHED.fetch_add(pages.len() as u64 * nr_targets, Ordering::Relaxed);
            }
            Flushes::Pages(_) | Flushes::All { .. } => {
                let has_global = matches!(flushes, Flushes::All { has_global: true }) || root.is_none();
                request.has_global.store(has_global, Ordering::Relaxed);
                request.nr_pages.store(ALL, Ordering::Relaxed);
                NR_FULL_FLUSHES.fetch_add(nr_targets, Ordering::Relaxed);
            }
        }
        request.targets.store(targets, Ordering::Release);
        NR_SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
        for cpu in (0..smp::MAX_CPUS).filter(|c| targets & (1 << c) != 0) {
            NR_IPIS.fetch_add(1, Ordering::Relaxed);
            lapic::send_ipi(smp::per_cpu(cpu).apic_id.load(Ordering::Relaxed), lapic::SHOOTDOWN_VECTOR);
        }
        while request.targets.load(Ordering::Acquire) != 0 {
            poll();
            core::hint::spin_loop();
        }
    });
}

/// Flushes kernel page `addr` on every other online CPU (after the local flush).
pub fn flush_kernel_everywhere(addr: VirtAddr) {
    if smp::nr_online() <= 1 {
        return;
    }
    shoot(online_mask(), None, None, Flushes::Pages(&[addr]));
}

/// Flushes kernel `pages` on every other online CPU (after the local flushes), one
/// IPI per CPU for the lot ([`MAX_PAGES`] at a time).
pub fn flush_kernel_pages_everywhere(pages: &[VirtAddr]) {
    if smp::nr_online() <= 1 {
        return;
    }
    for chunk in pages.chunks(MAX_PAGES) {
        shoot(online_mask(), None, None, Flushes::Pages(chunk));
    }
}

/// Measures the shootdown round trip to CPU `cpu`: `rounds` single-page requests
/// (a kernel page: harmless to flush anywhere), each sent and waited for; returns
/// the mean in nanoseconds, or `None` if `cpu` is this CPU or offline.
pub fn round_trip_ns(cpu: usize, rounds: u64) -> Option<u64> {
    if cpu == smp::cpu_id() || cpu >= smp::MAX_CPUS || !smp::per_cpu(cpu).is_online.load(Ordering::Acquire) {
        return None;
    }
    let page = [VirtAddr::new(core::ptr::addr_of!(REQUESTS) as u64)];
    let start = super::timer::rdtsc();
    for _ in 0..rounds {
        shoot(1 << cpu, None, None, Flushes::Pages(&page));
    }
    Some(super::timer::cycles_to_ns(super::timer::rdtsc() - start) / rounds.max(1))
}

/// Carries out every flush request aimed at this CPU. Called by the IPI handler and
/// by every loop that spins with interrupts off.
pub fn poll() {
    let me = smp::cpu_id();
    let bit = 1u64 << me;
    for request in REQUESTS.iter().filter(|r| r.targets.load(Ordering::Acquire) & bit != 0) {
        let root = request.root.load(Ordering::Relaxed);
        let nr_pages = request.nr_pages.load(Ordering::Relaxed);
        let is_loaded = root == KERNEL_ROOT || tlb::current_root().0.start_address().as_u64() == root;
        if !is_loaded {
            // Switched away since the initiator looked: its PCID-tagged entries may
            // linger, so flush them at the next load.
            let stale = request.stale.load(Ordering::Relaxed);
            if !stale.is_null() {
                // SAFETY: the initiator keeps the space (and so its mask) alive until
                // every target has cleared its bit, which we do only below.
                unsafe { (*stale).fetch_or(bit, Ordering::SeqCst) };
            }
        } else if nr_pages == ALL {
            if request.has_global.load(Ordering::Relaxed) {
                tlb::flush_all_including_global();
            } else {
                tlb::flush_all();
            }
        } else {
            for page in &request.pages[..nr_pages] {
                tlb::flush_page(VirtAddr::new(page.load(Ordering::Relaxed)));
            }
        }
        run_before_ack_hook();
        request.targets.fetch_and(!bit, Ordering::AcqRel);
    }
}

/// For tests: a function every target runs just before it acknowledges a flush
/// (0: none), to look at memory while the initiator still waits for it.
static BEFORE_ACK_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Sets (or with `None` clears) the function targets run before each acknowledgement:
/// a test checks with it that no frame of a shot-down page is freed before every
/// target flushed (the `mmu_gather` order, `mm::addr_space::gather`). It runs with
/// interrupts off: it must be short, and take no lock a CPU may hold while it shoots.
pub fn set_before_ack_hook(hook: Option<fn()>) {
    BEFORE_ACK_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn run_before_ack_hook() {
    let address = BEFORE_ACK_HOOK.load(Ordering::Acquire);
    if address != 0 {
        // SAFETY: only `set_before_ack_hook` stores a nonzero value, the address of
        // a `fn()` (functions live forever).
        let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(address) };
        hook();
    }
}

/// Handles the shootdown IPI.
pub fn on_shootdown_ipi() {
    poll();
    lapic::eoi();
}
