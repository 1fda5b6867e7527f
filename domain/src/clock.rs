//! The Clock port: every rule that reads the time, or waits for some, takes it from here, so
//! that tests set the time instead of sleeping through it (a token expiring, a daily job
//! falling due, a login delay).

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// A wait on a clock, as `Clock::sleep` returns it.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `d` has passed on this clock.
    fn sleep(&self, d: Duration) -> Sleep;
}

/// The wall clock, with the runtime's timer for waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The wall clock as a port, the default of every service.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to: `set`, `advance`, or a `sleep`, which advances it
/// by the time slept and returns at once.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(at) }
    }

    /// Moves the clock to `at` (backwards too).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = at;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.lock();
        *now = now.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A plain value: a panic elsewhere cannot leave it half-written.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        self.advance(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
        // Yield once, so that a loop that sleeps still lets other tasks run.
        Box::pin(YieldOnce(false))
    }
}

/// Pending once, then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_manual_clock_moves_when_told_and_when_slept_on() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("t0");
        let clock = ManualClock::new(t0);
        assert_eq!(clock.now(), t0);
        clock.advance(chrono::Duration::minutes(5));
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(5));
        clock.sleep(Duration::from_secs(60)).await;
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(6));
        clock.set(t0);
        assert_eq!(clock.now(), t0);
    }
}
