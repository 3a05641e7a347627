//! tonic handlers (feature `tonic`): the verified claims and [`AuthContext`] from a
//! `tonic::Request`, and every [`AuthError`] as a `tonic::Status`.
//!
//! [`JwtLayer`](crate::JwtLayer) already answers gRPC requests it refuses with a trailers-only
//! status (16 UNAUTHENTICATED, 7 PERMISSION_DENIED, 14 UNAVAILABLE); this module is for what a
//! handler decides itself, for example a second factor for one method only.

use tonic::{Code, Status};

use crate::guard::context::{Anonymous, AuthContext};
use crate::primitives::claims::Claims;
use crate::primitives::error::{AuthError, ErrorKind};

/// Reads what [`JwtLayer`](crate::JwtLayer) put into a `tonic::Request`'s extensions.
///
/// ```
/// use tonic::{Request, Response, Status};
/// use tower_jwt_guard::GrpcAuth;
///
/// #[derive(serde::Deserialize)]
/// struct User { sub: String }
///
/// async fn whoami(request: Request<()>) -> Result<Response<String>, Status> {
///     let user = request.claims::<User>()?;
///     Ok(Response::new(user.sub.clone()))
/// }
///
/// async fn delete_account(request: Request<()>) -> Result<Response<()>, Status> {
///     let context = request.require_mfa()?; // PERMISSION_DENIED without a second factor
///     # let _ = context;
///     Ok(Response::new(()))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Without the layer in front, the handler answers INTERNAL: a wiring bug.
/// let status = whoami(Request::new(())).await.unwrap_err();
/// assert_eq!(status.code(), tonic::Code::Internal);
/// # }
/// ```
pub trait GrpcAuth {
    /// The verified claims, decoded into `C` (the type given to the layer).
    fn claims<C: Send + Sync + 'static>(&self) -> Result<Claims<C>, Status>;

    /// Who the request is authenticated as, with which token, and how strongly.
    fn auth_context(&self) -> Result<AuthContext, Status>;

    /// The [`AuthContext`] when the token satisfies the [`MfaPolicy`](crate::MfaPolicy),
    /// PERMISSION_DENIED (`MFA_REQUIRED`) otherwise.
    fn require_mfa(&self) -> Result<AuthContext, Status> {
        let context = self.auth_context()?;
        if context.mfa_satisfied() {
            Ok(context)
        } else {
            Err(context.policy().mfa.challenge().into())
        }
    }
}

impl<T> GrpcAuth for tonic::Request<T> {
    fn claims<C: Send + Sync + 'static>(&self) -> Result<Claims<C>, Status> {
        self.extensions().get::<Claims<C>>().cloned().ok_or_else(|| absent(self.extensions()))
    }

    fn auth_context(&self) -> Result<AuthContext, Status> {
        self.extensions().get::<AuthContext>().cloned().ok_or_else(|| absent(self.extensions()))
    }
}

/// Nothing in the extensions: an anonymous request (optional mode) or no layer at all.
fn absent(extensions: &http::Extensions) -> Status {
    let kind = if extensions.get::<Anonymous>().is_some() {
        ErrorKind::MissingToken
    } else {
        tracing::error!(target: "tower_jwt_guard", "GrpcAuth used on a service without JwtLayer");
        ErrorKind::MissingLayer
    };
    AuthError::new(kind).into()
}

/// The gRPC status of a rejection: the code of [`ErrorKind::grpc_code`] and the message
/// `"<CODE>: <message>"`, as the layer writes it.
///
/// ```
/// use tower_jwt_guard::{AuthError, ErrorKind};
///
/// let status = tonic::Status::from(AuthError::new(ErrorKind::TokenExpired));
/// assert_eq!(status.code(), tonic::Code::Unauthenticated);
/// assert_eq!(status.message(), "TOKEN_EXPIRED: the token has expired");
/// ```
impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        let code = Code::from(i32::from(error.kind().grpc_code()));
        Status::new(code, format!("{}: {}", error.code(), error.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_keeps_its_grpc_code() {
        for kind in ErrorKind::ALL {
            let status = Status::from(AuthError::new(kind));
            assert_eq!(status.code() as i32, i32::from(kind.grpc_code()), "{kind}");
            assert!(status.message().starts_with(kind.code()), "{kind}");
        }
    }

    #[test]
    fn anonymous_request_is_unauthenticated_not_internal() {
        let mut request = tonic::Request::new(());
        request.extensions_mut().insert(Anonymous(Default::default()));
        assert_eq!(request.auth_context().unwrap_err().code(), Code::Unauthenticated);
        assert_eq!(request.claims::<()>().unwrap_err().code(), Code::Unauthenticated);
    }
}
