//! The issuing side: [`TokenIssuer`] mints access tokens that [`JwtLayer`](crate::JwtLayer)
//! accepts, signed with a [`SigningKey`]; [`TokenKind::token_issuer`](crate::TokenKind::token_issuer)
//! mints a token kind; [`refresh`] holds refresh tokens; [`ServiceTokenLayer`] puts a service
//! token on a client's outgoing requests.
//!
//! This side uses the guard's types (the configuration, the binding policies, the token facts);
//! the guard never uses it.

mod issuer;
mod outgoing;
pub mod refresh;

pub use issuer::{IssueError, MintedToken, SigningKey, TokenIssuer, TokenIssuerBuilder, DEFAULT_TOKEN_TTL};
pub use outgoing::{
    BoxError, ServiceTokenFuture, ServiceTokenLayer, ServiceTokenService, ServiceTokens, ServiceTokensBuilder,
};
