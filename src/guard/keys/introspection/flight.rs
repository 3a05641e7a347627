//! [`Introspector`]: the calls to the endpoint, one per token at a time. Requests that carry a
//! token already being introspected wait for that call (single flight); a call runs on its own
//! task, so a client that hangs up does not cancel it for the others, and it always ends within
//! the timeout. At most `max_in_flight` distinct tokens are introspected at once: a flood of
//! made-up tokens gets 503 at once instead of a queue of calls.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::builder::IntrospectorBuilder;
use super::cache::TokenHash;
use super::client::{CallError, Client};
use super::response::Answer;
use super::settings::Settings;

/// The outcome of a call, shared by every request waiting for it.
pub(crate) type FlightResult = Result<Arc<Answer>, CallError>;
/// A call in flight.
pub(crate) type Flight = Shared<BoxFuture<'static, FlightResult>>;

/// Checks opaque access tokens at an introspection endpoint (RFC 7662). Give it to
/// [`JwtAuthBuilder::introspection`](crate::JwtAuthBuilder::introspection); cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::keys::Introspector;
/// use tower_jwt_guard::JwtAuth;
///
/// let introspector = Introspector::builder("https://auth.example.com/oauth/introspect")
///     .client_secret_basic("orders-api", "the client secret")
///     .cache_ttl(Duration::from_secs(30))
///     .build()?;
/// let auth = JwtAuth::builder()
///     .introspection(introspector)
///     .issuer("https://auth.example.com")
///     .audience("orders-api")
///     .build()?;
/// # let _ = auth;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    settings: Settings,
    flights: Mutex<HashMap<TokenHash, Flight>>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("client", &self.inner.client)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// An introspector for the endpoint at `url` (http or https). Client credentials are
    /// required; an invalid URL is reported by [`IntrospectorBuilder::build`].
    pub fn builder(url: impl AsRef<str>) -> IntrospectorBuilder {
        IntrospectorBuilder::new(url.as_ref())
    }

    /// An introspector whose endpoint is the `introspection_endpoint` of `issuer`'s metadata
    /// (RFC 8414, then OpenID Connect discovery), read by the first call. The metadata must name
    /// exactly this issuer; a layer built with it accepts only tokens whose `iss` is this issuer,
    /// unless [`JwtAuthBuilder::issuer`](crate::JwtAuthBuilder::issuer) names the accepted ones.
    ///
    /// ```
    /// use tower_jwt_guard::keys::Introspector;
    ///
    /// let introspector = Introspector::discover("https://auth.example.com")
    ///     .client_secret_basic("orders-api", "the client secret")
    ///     .build()?;
    /// assert_eq!(introspector.issuer(), Some("https://auth.example.com"));
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn discover(issuer: impl AsRef<str>) -> IntrospectorBuilder {
        IntrospectorBuilder::discover(issuer.as_ref())
    }

    /// The issuer the endpoint is discovered from ([`discover`](Self::discover)), if it is.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.client.issuer()
    }

    pub(super) fn new(client: Client, settings: Settings) -> Self {
        Introspector { inner: Arc::new(Inner { client, settings, flights: Mutex::new(HashMap::new()) }) }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The call that answers for `token` (whose hash is `hash`): the one in flight for it, or a
    /// new one. The token is copied into the call and dropped with it.
    pub(crate) fn introspect(&self, hash: TokenHash, token: &str) -> Result<Flight, CallError> {
        let mut flights = self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.get(&hash) {
            return Ok(flight.clone());
        }
        if flights.len() >= self.inner.settings.max_in_flight {
            return Err(CallError::Busy("too many introspection calls at once"));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| CallError::Busy("no tokio runtime is running to introspect"))?;
        let inner = Arc::clone(&self.inner);
        let token = token.to_owned();
        let task = runtime.spawn(async move {
            let answer = inner.client.introspect(&token).await;
            drop(token);
            // Removed under the lock the flight was inserted under: a later request starts anew.
            inner.flights.lock().unwrap_or_else(PoisonError::into_inner).remove(&hash);
            if let Err(err) = &answer {
                tracing::warn!(target: "tower_jwt_guard", error = %err, "token introspection failed");
            }
            answer.map(Arc::new)
        });
        let flight = async move {
            task.await.unwrap_or_else(|_| Err(CallError::Request("the introspection task failed".into())))
        }
        .boxed()
        .shared();
        flights.insert(hash, flight.clone());
        Ok(flight)
    }
}
