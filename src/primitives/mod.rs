//! What every part of the crate shares, and the floor under all of them: the errors, the
//! token's facts and claims, the clock, the cookie and body helpers, URL normalisation and the
//! readings of a request path.
//!
//! Nothing here imports anything else of the crate (see DESIGN.md, "Floors").

#[cfg(feature = "redis")]
pub(crate) mod abort_on_drop;
pub(crate) mod algorithm;
pub(crate) mod authorization;
pub(crate) mod body;
pub(crate) mod claims;
pub(crate) mod clock;
pub(crate) mod compact;
pub(crate) mod cookie;
pub(crate) mod error;
pub(crate) mod path;
pub(crate) mod url;
