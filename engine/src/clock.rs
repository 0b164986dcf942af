//! The instance's clock: what its timers wait on — the workers' polling, a handler's expiration,
//! heartbeats, the background services' intervals. Real time (Tokio's) unless the instance was
//! given a test clock (pg-boss's `TestClock`), whose time only moves when its driver says so
//! ([`ManualClock::advance_to`], [`ManualClock::set`]): a timer then fires when the driven time
//! reaches it, never by itself.
//!
//! Only the timers go through here; deadlines that bound a stop or a pass stay on real time, so a
//! test that never moves the clock can still stop its instance.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

/// Where an instance's timers take their time from.
#[derive(Clone, Default)]
pub enum Clock {
    /// Real time.
    #[default]
    System,
    /// Time moved by hand.
    Manual(Arc<ManualClock>),
}

/// A timer that ran out before what it bounded finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl Clock {
    /// A clock whose time starts at `now_ms` (epoch milliseconds) and moves only when driven.
    pub fn manual(now_ms: i64) -> Clock {
        Clock::Manual(Arc::new(ManualClock::new(now_ms)))
    }

    /// The manual clock, when this is one.
    pub fn as_manual(&self) -> Option<&Arc<ManualClock>> {
        match self {
            Clock::Manual(manual) => Some(manual),
            Clock::System => None,
        }
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Clock::Manual(manual) => manual.now_ms(),
        }
    }

    /// Waits `duration` of this clock's time.
    pub async fn sleep(&self, duration: Duration) {
        match self {
            Clock::System => tokio::time::sleep(duration).await,
            Clock::Manual(manual) => manual.sleep(duration).await,
        }
    }

    /// `future`'s output, unless `duration` of this clock's time passes first.
    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        match self {
            Clock::System => tokio::time::timeout(duration, future)
                .await
                .map_err(|_| Elapsed),
            Clock::Manual(_) => {
                tokio::select! {
                    out = future => Ok(out),
                    _ = self.sleep(duration) => Err(Elapsed),
                }
            }
        }
    }
}

/// A clock driven by hand: timers wait for the driver to move time past them.
pub struct ManualClock {
    now_ms: AtomicI64,
    seq: AtomicU64,
    /// Pending timers by (due time, order of arming).
    timers: Mutex<BTreeMap<(i64, u64), oneshot::Sender<()>>>,
    /// Timers fired whose waiters have not run yet.
    waking: AtomicUsize,
}

impl ManualClock {
    fn new(now_ms: i64) -> ManualClock {
        ManualClock {
            now_ms: AtomicI64::new(now_ms),
            seq: AtomicU64::new(0),
            timers: Mutex::default(),
            waking: AtomicUsize::new(0),
        }
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    /// When the earliest pending timer is due, if one is armed.
    pub fn next_due(&self) -> Option<i64> {
        let mut timers = self.timers.lock().unwrap();
        // A waiter that gave up (its future dropped) leaves a timer nobody awaits.
        timers.retain(|_, sender| !sender.is_closed());
        timers.keys().next().map(|(due, _)| *due)
    }

    /// Moves time forward to `to_ms` (never back) and fires every timer due by then, in order.
    /// Answers how many fired.
    pub fn advance_to(&self, to_ms: i64) -> usize {
        self.now_ms.fetch_max(to_ms, Ordering::SeqCst);
        let now = self.now_ms();
        let due: Vec<oneshot::Sender<()>> = {
            let mut timers = self.timers.lock().unwrap();
            let later = timers.split_off(&(now + 1, 0));
            std::mem::replace(&mut *timers, later)
                .into_values()
                .collect()
        };
        let mut fired = 0;
        for sender in due {
            self.waking.fetch_add(1, Ordering::SeqCst);
            if sender.send(()).is_ok() {
                fired += 1;
            } else {
                self.waking.fetch_sub(1, Ordering::SeqCst);
            }
        }
        fired
    }

    /// Sets the time to `to_ms`, forward or back, firing nothing: timers a forward jump passed
    /// fall due at the new time (they fire on the next advance), and a jump back leaves them be.
    pub fn set(&self, to_ms: i64) {
        let mut timers = self.timers.lock().unwrap();
        let later = timers.split_off(&(to_ms, 0));
        let passed = std::mem::replace(&mut *timers, later);
        for ((_, seq), sender) in passed {
            timers.insert((to_ms, seq), sender);
        }
        self.now_ms.store(to_ms, Ordering::SeqCst);
    }

    /// Whether every timer fired has been taken up by its waiter.
    pub fn is_settled(&self) -> bool {
        self.waking.load(Ordering::SeqCst) == 0
    }

    async fn sleep(&self, duration: Duration) {
        // Nothing to wait for: a first pass due at once runs at once.
        if duration.is_zero() {
            return;
        }
        let due = self
            .now_ms()
            .saturating_add(duration.as_millis().min(i64::MAX as u128) as i64);
        let (sender, receiver) = oneshot::channel();
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        self.timers.lock().unwrap().insert((due, seq), sender);
        let mut waiter = Waiter {
            clock: self,
            receiver: Some(receiver),
        };
        if let Some(receiver) = waiter.receiver.as_mut() {
            if receiver.await.is_ok() {
                waiter.receiver = None;
                self.waking.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// A timer's waiter; one dropped after its timer fired (a timeout whose future won the race)
/// still counts as woken.
struct Waiter<'a> {
    clock: &'a ManualClock,
    receiver: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take() {
            if receiver.try_recv().is_ok() {
                self.clock.waking.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Statements the engine has in flight, in this process: a test clock's driver waits for none
/// before it moves time on, so a pass or a poll its last move fired finishes first.
static STATEMENTS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one statement in flight until dropped.
pub struct InFlight(());

/// Marks a statement in flight for as long as the answer is held.
pub fn statement_in_flight() -> InFlight {
    STATEMENTS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    InFlight(())
}

impl Drop for InFlight {
    fn drop(&mut self) {
        STATEMENTS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many statements the engine has in flight in this process.
pub fn statements_in_flight() -> usize {
    STATEMENTS_IN_FLIGHT.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timers_fire_only_when_time_is_moved_past_them() {
        let clock = Clock::manual(1_000);
        let manual = clock.as_manual().unwrap().clone();
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_millis(500)).await }
        });
        while manual.next_due().is_none() {
            tokio::task::yield_now().await;
        }
        assert_eq!(manual.next_due(), Some(1_500));
        assert_eq!(manual.advance_to(1_499), 0);
        assert!(!waiting.is_finished());
        assert_eq!(manual.advance_to(1_500), 1);
        waiting.await.unwrap();
        assert!(manual.is_settled());
        assert_eq!(clock.now_ms(), 1_500);
    }

    #[tokio::test]
    async fn a_jump_makes_passed_timers_due_at_the_new_time() {
        let clock = Clock::manual(0);
        let manual = clock.as_manual().unwrap().clone();
        let bounded = tokio::spawn({
            let clock = clock.clone();
            async move {
                clock
                    .timeout(Duration::from_secs(10), std::future::pending::<()>())
                    .await
            }
        });
        while manual.next_due().is_none() {
            tokio::task::yield_now().await;
        }
        manual.set(60_000);
        assert_eq!(manual.next_due(), Some(60_000));
        manual.set(0);
        assert_eq!(manual.next_due(), Some(60_000));
        assert_eq!(manual.advance_to(60_000), 1);
        assert_eq!(bounded.await.unwrap(), Err(Elapsed));
    }
}
