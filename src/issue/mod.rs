//! The issuing side: [`TokenIssuer`] mints access tokens that [`JwtLayer`](crate::JwtLayer)
//! accepts, signed with a [`SigningKey`]; [`TokenKind::token_issuer`](crate::TokenKind::token_issuer)
//! mints a token kind; [`refresh`] holds refresh tokens; [`throttle`] limits password and TOTP attempts; [`ServiceTokenLayer`] puts a service
//! token on a client's outgoing requests.
//!
//! The issuer adds the registered claims (`iss`, `sub`, `aud`, `iat`, `nbf`, `exp`, a random
//! `jti`) to your claims. Given the layer's binding policies
//! ([`TokenIssuerBuilder::bindings_of`]), it binds every token it mints for a request
//! ([`TokenIssuer::mint_for`]) with the code the layer checks it with; after a second factor,
//! [`TokenIssuer::step_up`] re-issues the token with the method added to `amr`.
//!
//! This side uses the guard's types (the configuration, the binding policies, the token facts);
//! the guard never uses it.

mod bounded_body;
mod dpop;
mod issuer;
mod outgoing;
pub mod refresh;
mod sign_request;
mod sign_response;
mod signing_key;
mod signing_service;
pub mod throttle;
mod token_kind;

pub use dpop::DpopKey;
pub use issuer::{
    IssueError, MintedToken, RequestBinding, TokenIssuer, TokenIssuerBuilder, DEFAULT_TOKEN_TTL,
};
pub use outgoing::{
    BoxError, ServiceTokenFuture, ServiceTokenLayer, ServiceTokenService, ServiceTokens, ServiceTokensBuilder,
};
pub use sign_request::{SignRequest, SignRequestFuture, SignRequestLayer};
pub use sign_response::{SignResponse, SignResponseFuture, SignResponseLayer, SignedBody};
pub use signing_key::SigningKey;
