//! Encrypted tokens (JWE, RFC 7516; feature `jwe`): decrypted before the claims are read, with
//! the recipient's [`DecryptionKey`]s, each bound to one `alg` / `enc` pair.
//!
//! Built on aws-lc-rs's primitives (AES-GCM, AES key wrap, RSA-OAEP, ECDH, AES-CBC, HMAC):
//! no maintained JWE crate runs without OpenSSL. The Concat KDF of ECDH-ES is the only
//! construction written here (RFC 7518 §4.6.2, in `concat_kdf.rs`).
//!
//! A token that decrypts is either a claims set (under a shared secret) or a nested signed JWT
//! (`cty: "JWT"`; required under a public-key algorithm), which is then verified like any JWS.
//! Every refusal is `INVALID_TOKEN`; a wrong key and a wrong tag are the same refusal.
//!
//! ```
//! use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
//! use tower_jwt_guard::JwtAuth;
//!
//! let auth = JwtAuth::builder()
//!     .hmac_secret(b"0123456789abcdef0123456789abcdef")
//!     .decryption_key(DecryptionKey::secret(
//!         KeyManagement::A256Kw,
//!         ContentEncryption::A256Gcm,
//!         b"fedcba9876543210fedcba9876543210",
//!     )?)
//!     .build()?;
//! # let _ = auth;
//! # Ok::<(), tower_jwt_guard::ConfigError>(())
//! ```

mod algorithms;
mod compact;
mod concat_kdf;
mod content;
mod decrypt;
mod decryption_key;
mod encrypt;
mod encryption_key;
mod header;
mod key_management;
mod private_key;

pub use algorithms::{ContentEncryption, KeyManagement, UnsupportedAlgorithm};
pub(crate) use compact::JweCompact;
pub(crate) use decrypt::{Decrypted, DecryptionKeys};
pub use decryption_key::DecryptionKey;
pub use encrypt::EncryptionFailed;
pub use encryption_key::EncryptionKey;
