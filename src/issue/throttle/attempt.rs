//! [`Throttle`] and its [`Attempt`]s: reserve before the work, release on success.

use std::fmt;
use std::sync::Arc;

use super::key::ThrottleKey;
use super::policy::ThrottlePolicy;
use super::store::{ThrottleError, ThrottleStore};
use crate::issue::issuer::random_id;

/// A named budget of attempts (`login`, `mfa`) with its policy, over a shared store.
///
/// [`reserve`](Throttle::reserve) counts an attempt under every key *before* the work it
/// protects (a password hash, a TOTP check), atomically per key: of 30 concurrent attempts
/// against a budget of 5, 5 are reserved and 25 are refused, whatever their timing. A success
/// [releases](Attempt::release) it; a failure, or an attempt dropped half-way (the client went
/// away), keeps counting until the window has passed.
///
/// Keys live under `<name>:{<key>}` (`login:{a:…}`, `login:{n:198.51.100.7}`): the braces are a
/// Redis Cluster hash tag, so an account's keys of every throttle (and its
/// [`TotpSteps`](super::TotpSteps)) share one slot.
///
/// ```
/// use std::sync::Arc;
/// use tower_jwt_guard::issue::throttle::{MemoryThrottleStore, Throttle, ThrottleKey, ThrottlePolicy};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let login = Throttle::new("login", ThrottlePolicy::default(), Arc::new(MemoryThrottleStore::new()));
/// let keys = [ThrottleKey::account("alice"), ThrottleKey::network("198.51.100.7".parse().unwrap())];
///
/// // Five wrong passwords are counted ...
/// for _ in 0..5 {
///     let attempt = login.reserve(&keys).await.unwrap();
///     // ... the password is checked here, and is wrong:
///     attempt.fail();
/// }
/// // ... and the sixth attempt is refused before any work, with the time to wait.
/// let refused = login.reserve(&keys).await.unwrap_err();
/// assert!(refused.retry_after_secs().unwrap() > 14 * 60);
///
/// // Another account from another network is not affected; a success costs nothing.
/// let bob = [ThrottleKey::account("bob"), ThrottleKey::network("203.0.113.1".parse().unwrap())];
/// for _ in 0..10 {
///     login.reserve(&bob).await.unwrap().release().await.unwrap();
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Throttle {
    name: Arc<str>,
    policy: ThrottlePolicy,
    store: Arc<dyn ThrottleStore>,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle named `name` (its keys' prefix; braces and whitespace are dropped from it).
    pub fn new(name: &str, policy: ThrottlePolicy, store: Arc<dyn ThrottleStore>) -> Self {
        let name: String = name.chars().filter(|c| !matches!(c, '{' | '}') && !c.is_whitespace()).collect();
        Throttle { name: name.into(), policy, store }
    }

    /// The policy.
    pub fn policy(&self) -> ThrottlePolicy {
        self.policy
    }

    /// Reserves one attempt under each of `keys`, in order. When one key is out of attempts,
    /// the keys already reserved are released and the refusal is returned (the one with the
    /// longest wait is not looked for: the first full key answers).
    pub async fn reserve(&self, keys: &[ThrottleKey]) -> Result<Attempt, ThrottleError> {
        let mut attempt = self.start();
        for key in keys {
            if let Err(err) = attempt.reserve(key).await {
                // Best effort: a release that fails leaves the others counted until the window
                // has passed (never fewer than the policy's attempts).
                let _ = attempt.release().await;
                return Err(err);
            }
        }
        Ok(attempt)
    }

    /// An attempt with no key reserved yet: add keys with [`Attempt::reserve`] as they become
    /// known (the client's network first, the account once the body is read).
    pub fn start(&self) -> Attempt {
        Attempt { throttle: self.clone(), id: random_id(), keys: Vec::new() }
    }

    fn storage_key(&self, key: &ThrottleKey) -> String {
        format!("{}:{{{}}}", self.name, key.as_str())
    }
}

/// An attempt counted under some keys of a [`Throttle`] (see there). Release it on success;
/// dropped (or [`fail`](Attempt::fail)ed), it keeps counting until the window has passed.
#[must_use = "an attempt counts as a failure unless it is released"]
pub struct Attempt {
    throttle: Throttle,
    id: String,
    keys: Vec<String>,
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt").field("throttle", &self.throttle.name).field("keys", &self.keys).finish()
    }
}

impl Attempt {
    /// Counts this attempt under `key` too. Refused: nothing is counted under `key`, the keys
    /// reserved before are still held (release the attempt if it ends here).
    pub async fn reserve(&mut self, key: &ThrottleKey) -> Result<(), ThrottleError> {
        let stored = self.throttle.storage_key(key);
        if self.keys.contains(&stored) {
            return Ok(());
        }
        self.throttle.store.reserve(&stored, &self.id, self.throttle.policy).await?;
        self.keys.push(stored);
        Ok(())
    }

    /// The attempt succeeded (or was not an attempt at all: a malformed request): it stops
    /// counting under every key.
    pub async fn release(self) -> Result<(), ThrottleError> {
        let mut result = Ok(());
        for key in &self.keys {
            if let Err(err) = self.throttle.store.release(key, &self.id).await {
                result = Err(err);
            }
        }
        result
    }

    /// The attempt failed: it keeps counting until the window has passed (the same as
    /// dropping it, said out loud).
    pub fn fail(self) {}
}
