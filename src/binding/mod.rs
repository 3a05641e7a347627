//! Step 3 of the request path: binding policies tie a token to its caller.
//!
//! Each configured [`BindingPolicy`] compares the request with the token's `cnf` claims on every
//! request, cache hit or not. A token that lacks a claim a policy needs is refused.

use http::{Extensions, HeaderMap, Method, Request, Uri};

use crate::context::Confirmation;
use crate::error::AuthError;

/// A borrowed view of a request's head: what binding policies look at.
///
/// ```
/// use tower_jwt_guard::binding::RequestHead;
///
/// let request = http::Request::builder().uri("/me").body(()).unwrap();
/// let head = RequestHead::of(&request);
/// assert_eq!(head.uri.path(), "/me");
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The extensions (where the connection's peer address lives).
    pub extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The head of request `parts`.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }
}

/// A rule that ties a token to the request that presents it.
///
/// ```
/// use tower_jwt_guard::binding::{BindingPolicy, RequestHead};
/// use tower_jwt_guard::{AuthError, Confirmation};
///
/// /// Tokens are only good on one host name.
/// struct SameHost;
///
/// impl BindingPolicy for SameHost {
///     fn name(&self) -> &'static str { "host" }
///     fn check(&self, request: &RequestHead<'_>, _: Option<&Confirmation>) -> Result<(), AuthError> {
///         match request.headers.get("host") {
///             Some(host) if host == "api.example.com" => Ok(()),
///             _ => Err(AuthError::binding_mismatch(self.name())),
///         }
///     }
/// }
/// ```
pub trait BindingPolicy: Send + Sync + 'static {
    /// The binding's name, as reported in a `BINDING_MISMATCH` rejection.
    fn name(&self) -> &'static str;

    /// Compares `request` with the token's confirmation claims.
    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError>;
}
