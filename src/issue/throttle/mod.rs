//! Throttles for the issuing side: limits on password and second-factor attempts that count
//! *before* the work they protect, per account and per client network, in one process or
//! shared by every instance through Redis.
//!
//! - [`Throttle::reserve`] counts an attempt under its keys before the password hash or the
//!   TOTP check runs, atomically per key, so no burst gets more than the budget verified; a
//!   success [releases](Attempt::release) it, a failure keeps counting for the window.
//! - [`ThrottleKey`]: an account (by a hash of its name), or the client's network: IPv4 per
//!   address, IPv6 per `/64`, IPv4-mapped IPv6 as IPv4. Take the address from
//!   [`TrustedProxies::client_ip`](crate::binding::TrustedProxies::client_ip), so a client
//!   behind your proxies is counted by its own address and nobody else can choose it.
//! - [`ThrottlePolicy`]: `N` attempts per sliding window (default 5 per 15 minutes); a key
//!   that has them is locked until the oldest leaves the window, and the refusal says when
//!   ([`ThrottleError::retry_after_secs`], for `Retry-After`).
//! - [`TotpSteps`]: the last TOTP time step each account used, in the same store, so a code
//!   is accepted once across every instance (RFC 6238 §5.2).
//! - Stores: [`MemoryThrottleStore`] (bounded, one process) and, with the `redis` feature,
//!   `RedisThrottleStore` (one Lua script per key: standalone, Sentinel and Cluster alike).
//!   A store that cannot answer refuses ([`ThrottleError::Unavailable`]): fail closed.
//!
//! A token endpoint, in order: reserve the client network's attempt (from the request head,
//! before the body is read), read the body (bounded), reserve the account's, wait for a
//! password-hash slot, verify; release on success.
//!
//! ```
//! use std::net::IpAddr;
//! use std::sync::Arc;
//! use tower_jwt_guard::issue::throttle::{MemoryThrottleStore, Throttle, ThrottleError, ThrottleKey, ThrottlePolicy};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = Arc::new(MemoryThrottleStore::new());
//! let login = Throttle::new("login", ThrottlePolicy::default(), store);
//!
//! async fn log_in(login: &Throttle, client: IpAddr, user: &str, password: &str) -> Result<bool, ThrottleError> {
//!     let mut attempt = login.start();
//!     attempt.reserve(&ThrottleKey::network(client)).await?;
//!     if let Err(refused) = attempt.reserve(&ThrottleKey::account(user)).await {
//!         attempt.release().await?; // not verified: the network's attempt is not spent
//!         return Err(refused);
//!     }
//!     let good = password == "correct horse"; // the expensive check, under the reservation
//!     if good { attempt.release().await? } else { attempt.fail() }
//!     Ok(good)
//! }
//!
//! // Wrong passwords for alice, each from another IPv6 address of one /64: one network.
//! for host in 1..=5 {
//!     let ip = format!("2001:db8:0:7::{host}").parse().unwrap();
//!     assert_eq!(log_in(&login, ip, "alice", "guess").await, Ok(false));
//! }
//! let same_64 = "2001:db8:0:7::99".parse().unwrap();
//! assert!(matches!(log_in(&login, same_64, "bob", "correct horse").await, Err(ThrottleError::Limited { .. })));
//! // From elsewhere, alice's account is locked too (per account); bob is not.
//! let elsewhere = "198.51.100.7".parse().unwrap();
//! assert!(log_in(&login, elsewhere, "alice", "correct horse").await.is_err());
//! assert_eq!(log_in(&login, elsewhere, "bob", "correct horse").await, Ok(true));
//! # }
//! ```
//!
//! A lock per account lets anyone lock an account for one window by failing on purpose (the
//! price of stopping a guesser who spreads over many addresses). Keep the window short, and
//! tell the user by another channel when an account is locked often.

mod attempt;
mod key;
mod memory;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod steps;
mod store;

pub use attempt::{Attempt, Throttle};
pub use key::{client_network, ThrottleKey};
pub use memory::{MemoryThrottleStore, DEFAULT_THROTTLE_CAPACITY};
pub use policy::ThrottlePolicy;
#[cfg(feature = "redis")]
pub use redis::{RedisThrottleStore, RedisThrottleStoreBuilder};
pub use steps::{TotpSteps, DEFAULT_STEP_RETENTION};
pub use store::{ThrottleError, ThrottleStore};
