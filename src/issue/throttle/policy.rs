//! [`ThrottlePolicy`]: how many attempts a key may have counted in a sliding window.

use std::time::Duration;

/// At most `attempts` counted attempts per key in any `window`: a key that has them is locked
/// until the oldest leaves the window (that is the `Retry-After`). An attempt counts from the
/// moment it is reserved until the window has passed, unless it is released (a success).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::issue::throttle::ThrottlePolicy;
///
/// let policy = ThrottlePolicy::new(5, Duration::from_secs(15 * 60));
/// assert_eq!((policy.attempts(), policy.window()), (5, Duration::from_secs(900)));
/// assert_eq!(ThrottlePolicy::default(), policy);
/// // At least one attempt, and a window of at least one second.
/// assert_eq!(ThrottlePolicy::new(0, Duration::ZERO), ThrottlePolicy::new(1, Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    attempts: u32,
    window: Duration,
}

/// The default: 5 attempts per 15 minutes (NIST SP 800-63B §5.2.2 allows up to 100 failures
/// per account; the OWASP cheat sheet's examples lock after 3–10).
impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy::new(5, Duration::from_secs(15 * 60))
    }
}

impl ThrottlePolicy {
    /// `attempts` per sliding `window` (whole milliseconds, at least one second).
    pub fn new(attempts: u32, window: Duration) -> Self {
        ThrottlePolicy { attempts: attempts.max(1), window: window.max(Duration::from_secs(1)) }
    }

    /// How many attempts a key may have counted at once.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long an attempt counts.
    pub fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }
}
