//! Fetching and refreshing: one fetch at a time (single flight), the background refresh loop,
//! the backoff after failures, and which requests may wait for a fetch.
//!
//! A request waits for a fetch only when its token names a `kid` the keys held do not have (or no
//! keys are held), and only under three limits, decided in this order under one lock:
//! 1. the unknown-kid rate limit: at most one refetch per `unknown_kid_interval` is granted to
//!    requests; a request arriving while that granted fetch still runs may wait for it too, but a
//!    request arriving later in the interval, or while a fetch runs that no request was granted
//!    (a background refresh, a retry after failures), is answered at once from the keys held;
//! 2. the cap on waiting requests (`max_waiting_requests`): beyond it, a request is answered at once;
//! 3. the timeout: a request waits at most the fetch timeout, counted from when it began waiting,
//!    however long the fetch itself takes (discovery and JWKS requests, each within the timeout).
//!
//! Answered at once means: `INVALID_TOKEN` when keys are held (the `kid` is not among them), 503
//! `AUTH_UNAVAILABLE` when none are. So a hung or slowloris endpoint holds at most the cap of
//! requests, each for at most the timeout, and a token whose `kid` is held never waits.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::builder::{Endpoint, Settings};
use super::key_set::KeySet;
use super::oidc;
use super::state::Inner;
use super::{JwksError, JwksKeys};

impl Settings {
    /// The refresh delay after a successful fetch: the server's `max-age` within the bounds.
    pub(super) fn refresh_after(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.refresh_interval)
            .clamp(self.min_refresh_interval, self.max_refresh_interval.max(self.min_refresh_interval))
    }

    /// The retry delay after `failures` failed fetches in a row: doubling, bounded.
    pub(super) fn retry_after(&self, failures: u32) -> Duration {
        let doubled = self.retry_interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
        doubled.min(self.max_retry_interval)
    }
}

/// How a request for a fetch (by the background refresh or [`JwksKeys::refresh`]) was answered.
pub(super) enum Start {
    /// A fetch started; the receiver sees it complete.
    Started(watch::Receiver<u64>),
    /// A fetch was already running; the receiver sees it complete.
    Joined(watch::Receiver<u64>),
    /// No tokio runtime to fetch on.
    NoRuntime,
}

/// Whether a request that needs a fetch (an unknown `kid`, or no usable keys) may wait for one.
pub(super) enum Wait {
    /// Wait for the fetch the receiver sees complete, at most the timeout; the guard counts the
    /// request among the waiters until it is dropped.
    For(watch::Receiver<u64>, Waiting),
    /// The unknown-kid rate limit grants no fetch now: answer at once.
    RateLimited,
    /// As many requests as the cap allows wait already: answer at once.
    Full,
    /// No tokio runtime to fetch on.
    NoRuntime,
}

/// One request waiting for a fetch: counted in `Control::waiting` while it lives.
pub(super) struct Waiting {
    source: Arc<Inner>,
    /// Whether this request started the fetch (else it joined one).
    pub(super) started: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut control = self.source.control();
        control.waiting = control.waiting.saturating_sub(1);
    }
}

impl JwksKeys {
    /// Fetches the document now (joining no fetch that started earlier) and returns the number of
    /// usable keys, or why the fetch failed (the previous keys are then kept).
    ///
    /// Not rate limited: meant for start-up, admin endpoints and tests, not for the request path.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        loop {
            match self.inner.start_fetch() {
                Start::Started(started) => {
                    if !self.inner.wait_for(started).await {
                        return Err(JwksError::Request("the fetch did not finish in time".into()));
                    }
                    break;
                }
                Start::Joined(earlier) => {
                    if !self.inner.wait_for(earlier).await {
                        return Err(JwksError::Request("a running fetch did not finish in time".into()));
                    }
                }
                Start::NoRuntime => return Err(JwksError::NoRuntime),
            }
        }
        let last_error = self.inner.control().last_error.clone();
        match last_error {
            Some(err) => Err(err),
            None => Ok(self.status().keys),
        }
    }
}

impl Inner {
    /// Starts the background refresh on the current tokio runtime (if any), unless it runs: once,
    /// and again after the runtime it ran on shut down.
    pub(super) fn ensure_refresher(self: &Arc<Self>) {
        if self.refresher_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = Handle::try_current() else { return };
        if !self.refresher_started.swap(true, Ordering::AcqRel) {
            // Moved into the task: dropped when it ends, even if it is dropped before it ever runs.
            let running = RefresherRunning(Arc::downgrade(self));
            runtime.spawn(refresh_loop(Arc::downgrade(self), running));
        }
    }

    /// Waits for the fetch `done` watches, at most as long as a fetch can take (discovery and JWKS
    /// requests, each within the timeout) plus a margin. Whether it completed.
    pub(super) async fn wait_for(&self, mut done: watch::Receiver<u64>) -> bool {
        let longest = self.settings.timeout.saturating_mul(2).saturating_add(Duration::from_secs(1));
        matches!(tokio::time::timeout(longest, done.changed()).await, Ok(Ok(())))
    }

    /// Starts a fetch unless one is running (single flight). Not rate limited: for the background
    /// refresh and [`JwksKeys::refresh`], never for requests (see [`Inner::wait_for_fetch`]).
    pub(super) fn start_fetch(self: &Arc<Self>) -> Start {
        let Ok(runtime) = Handle::try_current() else { return Start::NoRuntime };
        let done = self.completed.subscribe();
        let mut control = self.control();
        if control.in_flight {
            return Start::Joined(done);
        }
        control.start();
        drop(control);
        self.spawn_fetch(&runtime);
        Start::Started(done)
    }

    /// For a request whose token the keys held cannot verify (unknown `kid`, or no usable keys):
    /// whether it may wait for a fetch, starting one if the rate limit grants it. The limits, in
    /// order (the module documentation says why): the rate limit, the cap on waiters.
    pub(super) fn wait_for_fetch(self: &Arc<Self>) -> Wait {
        let Ok(runtime) = Handle::try_current() else { return Wait::NoRuntime };
        let done = self.completed.subscribe();
        let mut control = self.control();
        // 1. The rate limit, before anything is joined.
        let now = Instant::now();
        let interval = self.settings.unknown_kid_interval;
        let mut start = false;
        if control.last_on_demand.is_none_or(|last| now.duration_since(last) >= interval) {
            // A new grant: this interval's refetch is the running fetch, or one started now. (A
            // running fetch may have started just before a new key was published: a token of that
            // key is then refused until the next grant, as it would be had it come a moment earlier.)
            control.last_on_demand = Some(now);
            if !control.in_flight {
                control.start();
                start = true;
            }
            control.granted_fetch = Some(control.fetches_started);
        } else if !(control.in_flight && control.granted_fetch == Some(control.fetches_started)) {
            // The interval's refetch is over, or the running fetch was not granted to requests
            // (a background refresh, a retry): nothing to wait for.
            return Wait::RateLimited;
        }
        // 2. The cap: the fetch runs anyway, but no more requests wait for it.
        let full = control.waiting >= self.settings.max_waiting_requests;
        if !full {
            control.waiting += 1;
        }
        drop(control);
        if start {
            self.spawn_fetch(&runtime);
        }
        if full {
            return Wait::Full;
        }
        Wait::For(done, Waiting { source: Arc::clone(self), started: start })
    }

    /// Spawns the fetch just marked as running ([`Control::start`]) on `runtime`.
    fn spawn_fetch(self: &Arc<Self>, runtime: &Handle) {
        // Moved into the task: whatever becomes of it, the flag is cleared and waiters are woken.
        let in_flight = InFlight { source: Arc::clone(self), finished: false };
        runtime.spawn(Arc::clone(self).run_fetch(in_flight));
    }

    /// One fetch, run as its own task so a client going away does not cancel it.
    async fn run_fetch(self: Arc<Self>, mut in_flight: InFlight) {
        let result = self.fetch().await;
        let kept = self.loaded().set.as_ref().map_or(0, |set| set.len());
        {
            let mut control = self.control();
            match result {
                Ok((keys, refresh_after)) => {
                    self.metrics.fetched("success");
                    tracing::debug!(target: "tower_jwt_guard", keys, ?refresh_after, "JWKS fetched");
                    control.last_error = None;
                    control.failures = 0;
                    control.next_refresh = refresh_after;
                }
                Err(err @ JwksError::NoUsableKeys { .. }) => {
                    self.metrics.fetched("no_usable_keys");
                    tracing::error!(
                        target: "tower_jwt_guard",
                        error = %err,
                        "the JWKS holds no usable key; the keys held before are withdrawn, tokens are refused (401)"
                    );
                    control.last_error = Some(err);
                    control.failures = control.failures.saturating_add(1);
                }
                Err(err) if kept == 0 => {
                    self.metrics.fetched("error");
                    tracing::warn!(
                        target: "tower_jwt_guard",
                        error = %err,
                        "JWKS fetch failed; no keys yet, requests are refused (503) until a fetch succeeds"
                    );
                    control.last_error = Some(err);
                    control.failures = control.failures.saturating_add(1);
                }
                Err(err) => {
                    self.metrics.fetched("error");
                    tracing::warn!(
                        target: "tower_jwt_guard",
                        error = %err,
                        kept,
                        "JWKS fetch failed; the last good keys stay in use"
                    );
                    control.last_error = Some(err);
                    control.failures = control.failures.saturating_add(1);
                }
            }
        }
        self.publish_metrics();
        in_flight.finished = true;
        drop(in_flight);
    }

    /// Discovery (if needed), GET, parse, swap the key set. Returns the number of keys and when
    /// to refresh next.
    async fn fetch(&self) -> Result<(usize, Duration), JwksError> {
        let url = match &self.endpoint {
            Endpoint::Jwks(url) => url.clone(),
            Endpoint::Oidc { issuer, discovery } => {
                let known = self.control().jwks_uri.clone();
                match known {
                    Some(url) => url,
                    None => {
                        let url = oidc::discover(&self.fetcher, issuer, discovery).await?;
                        self.control().jwks_uri = Some(url.clone());
                        url
                    }
                }
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match self.fetcher.get(&url).await {
            Ok(fetched) => fetched,
            Err(err) => {
                self.control().jwks_uri = None;
                return Err(err);
            }
        };
        let previous = self.loaded().set.clone();
        let set = KeySet::parse(&fetched.body, previous.as_deref(), self.settings.algorithms.as_deref())?;
        let (keys, skipped) = (set.len(), set.skipped());
        {
            let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
            loaded.set = Some(Arc::new(set));
            loaded.fetched_at = Some(Instant::now());
        }
        // The old set (and with it every retired key) is dropped here. A well-formed document
        // without usable keys is honoured too: the provider may have withdrawn a compromised key.
        drop(previous);
        if keys == 0 {
            return Err(JwksError::NoUsableKeys { skipped });
        }
        Ok((keys, self.settings.refresh_after(fetched.max_age)))
    }

    /// The delay before the next background fetch.
    fn next_delay(&self) -> Duration {
        let control = self.control();
        match control.last_error {
            None => control.next_refresh,
            Some(_) => self.settings.retry_after(control.failures),
        }
    }
}

/// Clears `in_flight` and wakes the waiters when a fetch task ends, or is dropped unfinished
/// (its runtime shut down): a fetch that never completes must not hold the source forever.
struct InFlight {
    source: Arc<Inner>,
    finished: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut control = self.source.control();
            if !self.finished {
                control.last_error = Some(JwksError::Request("the fetch was cancelled".into()));
                control.failures = control.failures.saturating_add(1);
            }
            control.in_flight = false;
        }
        self.source.completed.send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

/// Clears `refresher_started` when the refresh task ends or is dropped with its runtime.
struct RefresherRunning(Weak<Inner>);

impl Drop for RefresherRunning {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            inner.refresher_started.store(false, Ordering::Release);
        }
    }
}

/// The background refresh: fetch, sleep as long as the answer stays fresh, again; and drop the
/// keys when they pass `max_staleness`. It holds only a weak reference while sleeping, and ends
/// when the source is dropped.
async fn refresh_loop(source: Weak<Inner>, _running: RefresherRunning) {
    let mut next_fetch = Instant::now();
    loop {
        let wake = {
            let Some(inner) = source.upgrade() else { return };
            inner.drop_if_stale();
            if Instant::now() >= next_fetch {
                match inner.start_fetch() {
                    Start::Started(done) | Start::Joined(done) => {
                        // A fetch that overran its time limit is waited for again on the next round.
                        inner.wait_for(done).await;
                    }
                    Start::NoRuntime => return,
                }
                inner.drop_if_stale();
                let delay = inner.next_delay();
                next_fetch = Instant::now().checked_add(delay).unwrap_or_else(far_future);
            }
            let stale_at = inner.loaded().stale_at(inner.settings.max_staleness);
            let wake = stale_at.map_or(next_fetch, |stale_at| stale_at.min(next_fetch));
            // The age gauge grows between fetches: wake to update it.
            #[cfg(feature = "metrics")]
            let wake = {
                inner.publish_metrics();
                Instant::now()
                    .checked_add(crate::guard::observe::metrics::JWKS_AGE_TICK)
                    .map_or(wake, |tick| tick.min(wake))
            };
            wake
        };
        tokio::time::sleep_until(wake.into()).await;
    }
}

/// A wake-up time that never comes in practice (for delays that overflow `Instant`).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 60 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::keys::jwks::DEFAULT_MAX_RETRY_INTERVAL;

    #[test]
    fn max_age_is_bounded() {
        let settings = Settings {
            min_refresh_interval: Duration::from_secs(30),
            max_refresh_interval: Duration::from_secs(3600),
            refresh_interval: Duration::from_secs(300),
            ..Settings::default()
        };
        assert_eq!(settings.refresh_after(None), Duration::from_secs(300));
        assert_eq!(settings.refresh_after(Some(Duration::ZERO)), Duration::from_secs(30));
        assert_eq!(settings.refresh_after(Some(Duration::from_secs(600))), Duration::from_secs(600));
        assert_eq!(settings.refresh_after(Some(Duration::from_secs(86_400))), Duration::from_secs(3600));
    }

    #[test]
    fn retries_back_off_up_to_the_maximum() {
        let settings = Settings::default();
        assert_eq!(settings.retry_after(1), Duration::from_secs(1));
        assert_eq!(settings.retry_after(2), Duration::from_secs(2));
        assert_eq!(settings.retry_after(4), Duration::from_secs(8));
        assert_eq!(settings.retry_after(40), DEFAULT_MAX_RETRY_INTERVAL);
    }
}
