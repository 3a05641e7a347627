//! The minting half of a [`TokenKind`]: a [`TokenIssuer`] for its tokens. What a token of a
//! kind must be, and the check of it, belong to the guard (`guard/verify/token_kind.rs`).

use super::{SigningKey, TokenIssuer, TokenIssuerBuilder};
use crate::guard::verify::TokenKind;

impl TokenKind {
    /// A [`TokenIssuer`] builder that mints tokens of this kind: its `typ`, its first audience
    /// and its first issuer are set. Add the claims the kind requires when minting.
    ///
    /// ```
    /// use tower_jwt_guard::{issue::SigningKey, Algorithm, TokenKind};
    ///
    /// let kind = TokenKind::new("service", "service+jwt").audience("orders");
    /// let issuer = kind.token_issuer(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// let minted = issuer.mint("gateway", &serde_json::json!({ "scope": "read:orders" }))?;
    /// # let _ = minted;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token_issuer(&self, key: SigningKey) -> TokenIssuerBuilder {
        let mut builder = TokenIssuer::builder(key).token_type(self.token_type().to_owned());
        if let Some(audience) = self.audiences().first() {
            builder = builder.audience(audience.clone());
        }
        if let Some(issuer) = self.issuers().first() {
            builder = builder.issuer(issuer.clone());
        }
        builder
    }
}
