//! The test clock: a `TestClock` given to the constructor moves the instance's time by these.

use napi_derive::napi;

use crate::convert::{run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// Moves the test clock forward to `to_ms` (epoch milliseconds): the schema's time, then the
    /// timers due by then. Answers how many fired.
    #[napi]
    pub async fn advance_test_clock(&self, to_ms: f64) -> napi::Result<u32> {
        let boss = self.inner.clone();
        run(async move { boss.advance_test_clock(to_ms as i64).await })
            .await
            .map(|fired| fired as u32)
    }

    /// Sets the test clock to `to_ms`, firing nothing.
    #[napi]
    pub async fn set_test_clock(&self, to_ms: f64) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.set_test_clock(to_ms as i64).await }).await
    }

    /// When the test clock's next timer is due (epoch milliseconds), or null.
    #[napi]
    pub fn test_clock_next_due(&self) -> napi::Result<Option<f64>> {
        self.inner
            .test_clock_next_due()
            .map(|due| due.map(|ms| ms as f64))
            .map_err(to_js)
    }

    /// Whether nothing the test clock should wait for is in flight.
    #[napi]
    pub fn test_clock_idle(&self) -> napi::Result<bool> {
        self.inner.test_clock_idle().map_err(to_js)
    }
}
