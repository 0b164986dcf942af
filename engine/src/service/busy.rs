//! Whether a service's pass is under way, for the instance's `isTimekeeping()` and
//! `isCheckingSkew()`: raised while a pass runs and lowered when it ends however it ends —
//! finished, failed, or dropped at its timeout or at a stop.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Busy(AtomicBool);

impl Busy {
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Raises the flag for as long as the answer is held; `None` when it was already raised (a
    /// pass is under way, and a second one would repeat it).
    pub fn try_raise(&self) -> Option<BusyGuard<'_>> {
        (!self.0.swap(true, Ordering::SeqCst)).then_some(BusyGuard(self))
    }
}

pub struct BusyGuard<'a>(&'a Busy);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_at_a_time_and_lowered_when_it_ends() {
        let busy = Busy::default();
        let guard = busy.try_raise().expect("free");
        assert!(busy.is_raised());
        assert!(busy.try_raise().is_none());
        drop(guard);
        assert!(!busy.is_raised());
        assert!(busy.try_raise().is_some());
    }
}
