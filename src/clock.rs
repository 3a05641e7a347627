//! The one place that reads the wall clock, in whole seconds since the epoch (JWT NumericDate).

/// Seconds since the Unix epoch, now.
///
/// On Linux the coarse real-time clock: read from the vDSO without the cycle counter, about a
/// fifth of the cost of the precise clock on the hot path, and a tick (1–10 ms) behind it at
/// most, far below the whole seconds a NumericDate counts.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn now() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    u64::try_from(now.tv_sec).unwrap_or(0)
}

/// Seconds since the Unix epoch, now.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn now() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #[test]
    fn agrees_with_the_system_clock() {
        use std::time::{SystemTime, UNIX_EPOCH};
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let now = super::now();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        // The coarse clock may be one tick behind: at most a second earlier in whole seconds.
        assert!(before.saturating_sub(1) <= now && now <= after, "{before} <= {now} <= {after}");
    }
}
