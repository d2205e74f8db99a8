//! Time as the engine sees it: a monotonic instant handed in by the runtime.

use std::time::Duration;

/// A point on the runtime's monotonic clock, in nanoseconds since an origin the
/// runtime chose (process start, or zero in the simulator). The engine never reads
/// a clock; every input carries one of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// Nanoseconds since the runtime's origin.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// This instant plus `d`, saturating.
    pub fn after(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}
