//! [`TotpSteps`]: the last time step whose TOTP code an account used, in the shared store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::key::ThrottleKey;
use super::store::{ThrottleError, ThrottleStore};

/// How long an account's last used step is kept by default (10 minutes): longer than any
/// code is accepted (a 30 s step with one step of skew either way: 90 s).
pub const DEFAULT_STEP_RETENTION: Duration = Duration::from_secs(10 * 60);

/// A TOTP code is good once (RFC 6238 §5.2): the last accepted time step of each account,
/// kept in the [`ThrottleStore`], so a code used on one instance is refused on every other.
/// [`accept`](TotpSteps::accept) stores a step only if it is later than the last one, in one
/// atomic step: of two requests with the same code, at once on two instances, one passes.
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_guard::issue::throttle::{MemoryThrottleStore, ThrottleKey, TotpSteps};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let steps = TotpSteps::new(Arc::new(MemoryThrottleStore::new()));
/// let alice = ThrottleKey::account("alice");
/// assert!(steps.accept(&alice, 58_000_000).await.unwrap());
/// assert!(!steps.accept(&alice, 58_000_000).await.unwrap()); // the same code again: a replay
/// assert!(!steps.accept(&alice, 57_999_999).await.unwrap()); // an older code (within the skew)
/// assert!(steps.accept(&alice, 58_000_001).await.unwrap());
/// # }
/// ```
#[derive(Clone)]
pub struct TotpSteps {
    store: Arc<dyn ThrottleStore>,
    keep: Duration,
}

impl fmt::Debug for TotpSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpSteps").field("keep", &self.keep).finish_non_exhaustive()
    }
}

impl TotpSteps {
    /// Steps kept in `store` for [`DEFAULT_STEP_RETENTION`].
    pub fn new(store: Arc<dyn ThrottleStore>) -> Self {
        TotpSteps { store, keep: DEFAULT_STEP_RETENTION }
    }

    /// How long an account's last step is kept (at least as long as a code is accepted).
    pub fn keep(mut self, keep: Duration) -> Self {
        self.keep = keep.max(Duration::from_secs(1));
        self
    }

    /// `Ok(true)` when `step` (the time step the code matched) is later than the account's
    /// last used one, which it now is; `Ok(false)`: a replay, refuse the code.
    pub async fn accept(&self, account: &ThrottleKey, step: u64) -> Result<bool, ThrottleError> {
        let key = format!("totp:{{{}}}", account.as_str());
        self.store.advance(&key, step, self.keep).await
    }
}
