//! [`TestHook`]: a point in a kernel path where a test can run its own code, to
//! force a step that another CPU could take exactly there (reclaim dropping the
//! page a fault is about to map, an `munmap` landing inside an eviction).
//!
//! A running system never sets one, so passing a hook costs one atomic load: the
//! swap-in path passes three on every major fault, and a lock round trip each
//! (what the hooks took before) was a price paid for tests alone.

use core::sync::atomic::{AtomicBool, Ordering};

use super::IrqMutex;

/// A function a test may have set for one point of a kernel path, called there
/// with that point's argument.
pub struct TestHook<T: 'static> {
    /// Whether `hook` holds a function: the one load on the path.
    is_set: AtomicBool,
    hook: IrqMutex<Option<fn(T)>>,
}

impl<T: 'static> TestHook<T> {
    /// A hook with no function set.
    pub const fn new() -> Self {
        TestHook { is_set: AtomicBool::new(false), hook: IrqMutex::new(None) }
    }

    /// Sets the function the path will call (`None`: stop calling one).
    pub fn set(&self, hook: Option<fn(T)>) {
        let mut slot = self.hook.lock();
        *slot = hook;
        self.is_set.store(hook.is_some(), Ordering::Release);
    }

    /// Calls the function set, if any, with `arg`, holding no lock of its own.
    #[inline]
    pub fn call(&self, arg: T) {
        if !self.is_set.load(Ordering::Acquire) {
            return;
        }
        let hook = *self.hook.lock();
        if let Some(hook) = hook {
            hook(arg);
        }
    }
}

impl<T: 'static> Default for TestHook<T> {
    fn default() -> Self {
        Self::new()
    }
}
