//! A registry of kernel-stack guard pages, so a double fault can say "stack overflow".
//!
//! Every kernel stack has an unmapped page just below it. Running off the stack
//! touches that page; the #PF cannot push its frame there either, so the CPU raises
//! a double fault on its IST stack. The #DF handler looks CR2 up here to name the
//! stack that overflowed.

use spin::Mutex;

/// One guard: `[start, end)` plus the name of the stack it protects.
#[derive(Clone, Copy)]
struct Guard {
    start: u64,
    end: u64,
    name: &'static str,
}

/// Enough for the boot stack, the IST stacks and one stack per task of a small system.
const MAX_GUARDS: usize = 64;

static GUARDS: Mutex<[Option<Guard>; MAX_GUARDS]> = Mutex::new([None; MAX_GUARDS]);

/// Records that `[start, end)` is the guard region of the stack called `name`.
/// Returns false if the registry is full.
pub fn register(start: u64, end: u64, name: &'static str) -> bool {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guards = GUARDS.lock();
        match guards.iter_mut().find(|g| g.is_none()) {
            Some(slot) => {
                *slot = Some(Guard { start, end, name });
                true
            }
            None => false,
        }
    })
}

/// Forgets the guard region starting at `start`.
pub fn unregister(start: u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        for slot in GUARDS.lock().iter_mut() {
            if slot.is_some_and(|g| g.start == start) {
                *slot = None;
            }
        }
    })
}

/// Returns the name of the stack whose guard region holds `addr`, if any.
///
/// Called from the double-fault handler, so it must not block: it gives up if the
/// lock is held (the interrupted code was registering a stack).
pub fn find(addr: u64) -> Option<&'static str> {
    let guards = GUARDS.try_lock()?;
    guards.iter().flatten().find(|g| (g.start..g.end).contains(&addr)).map(|g| g.name)
}
