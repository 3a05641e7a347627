//! The one place that reads the wall clock, in whole seconds since the epoch (JWT NumericDate).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (the precise clock: for minting and for stores).
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch, for the time checks of a request: never behind [`now`], at
/// most one clock tick (1–10 ms) ahead of it.
///
/// On Linux it reads the coarse real-time clock, from the vDSO without the cycle counter: about
/// a fifth of the cost of the precise clock on the hot path. The coarse clock lags by up to a
/// tick, so the tick is added before rounding down to seconds: a token minted this very second
/// by a precise clock is never taken for one issued in the future (which a lag would do with no
/// leeway); a token's expiry comes at most a tick early, on the safe side.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn fast_now() -> u64 {
    use rustix::time::{clock_getres, clock_gettime, ClockId};
    use std::sync::OnceLock;

    const NANOS: u128 = 1_000_000_000;
    // The tick, read once; a tick of a second or more would be a broken clock: use the precise one.
    static TICK_NANOS: OnceLock<Option<u128>> = OnceLock::new();
    let tick = TICK_NANOS.get_or_init(|| {
        let res = clock_getres(ClockId::RealtimeCoarse);
        (res.tv_sec == 0 && res.tv_nsec > 0).then_some(res.tv_nsec as u128)
    });
    let Some(tick) = *tick else {
        return now();
    };
    let coarse = clock_gettime(ClockId::RealtimeCoarse);
    let (Ok(secs), Ok(nanos)) = (u128::try_from(coarse.tv_sec), u128::try_from(coarse.tv_nsec)) else {
        return now();
    };
    u64::try_from((secs * NANOS + nanos + tick) / NANOS).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch, for the time checks of a request (the precise clock here).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn fast_now() -> u64 {
    now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_clock_is_never_behind_and_at_most_a_second_ahead() {
        for _ in 0..10_000 {
            let before = now();
            let fast = fast_now();
            let after = now();
            assert!(before <= fast && fast <= after + 1, "{before} <= {fast} <= {after} + 1");
        }
    }
}
