//! [`Introspector`]: opaque access tokens checked at the authorization server's introspection
//! endpoint (RFC 7662), cached safely (feature `introspection`).
//!
//! A token that is not a compact JWS (three base64url parts), or every token when
//! [`IntrospectorBuilder::all_tokens`] says so, is sent to the endpoint instead of being verified
//! locally. An active answer becomes the same [`Claims<C>`](crate::Claims) and
//! [`TokenFacts`](crate::TokenFacts) as a verified JWT, and then meets the same rules: issuer,
//! audience, required claims, token kinds, time, custom checks, bindings (a `cnf` in the answer
//! fails closed like a token's), revocation.
//!
//! The parts: `settings` (and their defaults), `builder`, `discovery` (the endpoint from the
//! issuer's RFC 8414 metadata), `client` (the HTTP POST with client authentication, a timeout and
//! a size cap), `assertion` (`private_key_jwt`), `response` (what an answer says, read strictly),
//! `flight` (one call per token in flight, a cap on calls at once), `cache` (answers by a hash
//! of the token, never past `exp`).

mod assertion;
pub(crate) mod builder;
mod cache;
mod client;
mod discovery;
mod flight;
mod response;
mod settings;
mod signed;

pub use assertion::ClientAssertionKey;
pub use builder::IntrospectorBuilder;
pub(crate) use cache::{Cached, IntrospectionCache, TokenHash};
pub use flight::Introspector;
pub(crate) use flight::{Flight, FlightResult};
pub(crate) use response::Answer;
pub use settings::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_NEGATIVE_CACHE_TTL, DEFAULT_TIMEOUT,
};
