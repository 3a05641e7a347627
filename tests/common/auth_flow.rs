//! `/auth/login`, `/auth/refresh`, `/auth/logout` wired to the stores the way an application
//! (and the full_flow example) does it, plus a small client for them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_jwt_guard::issue::TokenIssuer;
use tower_jwt_guard::refresh::{IssuedRefresh, RefreshCookie, RefreshError, RefreshStore, SenderConstraint};
use tower_jwt_guard::revocation::RevocationStore;
use tower_jwt_guard::{AuthContext, Claims, JwtAuth};

use super::User;

#[derive(Clone)]
pub struct AuthState {
    pub issuer: TokenIssuer,
    pub revocations: Arc<dyn RevocationStore>,
    pub refresh: Arc<dyn RefreshStore>,
    pub cookie: RefreshCookie,
}

fn rejection(status: StatusCode, code: &str, error: &str) -> (StatusCode, Json<serde_json::Value>) {
    (status, Json(json!({ "error": error, "code": code })))
}

/// A new access token plus the refresh cookie.
fn tokens(state: &AuthState, refresh: &IssuedRefresh) -> Response {
    let Ok(access) = state.issuer.mint(&refresh.subject, &json!({})) else {
        return rejection(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "try again later").into_response();
    };
    let body =
        json!({ "access_token": access.token, "token_type": "Bearer", "expires_in": access.expires_in });
    ([(SET_COOKIE, state.cookie.set(refresh))], Json(body)).into_response()
}

/// Login without a password check (the tests are about what follows).
async fn login(State(state): State<AuthState>) -> Response {
    match state.refresh.issue("alice", &SenderConstraint::none()).await {
        Ok(issued) => tokens(&state, &issued),
        Err(_) => {
            rejection(StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE", "try again later").into_response()
        }
    }
}

/// `POST /auth/refresh` (cookie): rotate, answer a new access token and the rotated cookie.
async fn refresh(State(state): State<AuthState>, headers: HeaderMap) -> Response {
    let Some(presented) = state.cookie.read(&headers) else {
        return rejection(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN", "log in again").into_response();
    };
    match state.refresh.rotate(presented, &SenderConstraint::none()).await {
        Ok(rotated) => tokens(&state, &rotated),
        Err(RefreshError::Unavailable) => {
            rejection(StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE", "try again later").into_response()
        }
        Err(RefreshError::Reused { .. }) => (
            [(SET_COOKIE, state.cookie.clear())],
            rejection(StatusCode::UNAUTHORIZED, "REFRESH_TOKEN_REUSED", "log in again"),
        )
            .into_response(),
        Err(_) => (
            [(SET_COOKIE, state.cookie.clear())],
            rejection(StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN", "log in again"),
        )
            .into_response(),
    }
}

/// `POST /auth/logout` (bearer, cookie): revoke the access token's `jti` and the refresh family.
async fn logout(State(state): State<AuthState>, ctx: AuthContext, headers: HeaderMap) -> Response {
    let unavailable = || rejection(StatusCode::SERVICE_UNAVAILABLE, "AUTH_UNAVAILABLE", "try again later");
    if let (Some(jti), Some(exp)) = (ctx.jti(), ctx.expires_at) {
        if state.revocations.revoke_token(ctx.issuer(), jti, exp).await.is_err() {
            return unavailable().into_response();
        }
    }
    if let Some(presented) = state.cookie.read(&headers) {
        if state.refresh.revoke(presented, &SenderConstraint::none()).await.is_err() {
            return unavailable().into_response();
        }
    }
    (StatusCode::NO_CONTENT, [(SET_COOKIE, state.cookie.clear())]).into_response()
}

async fn protected(Claims(user): Claims<User>) -> Json<serde_json::Value> {
    Json(json!({ "sub": user.sub }))
}

/// One instance of the service.
pub async fn serve_auth(
    revocations: Arc<dyn RevocationStore>,
    refresh_store: Arc<dyn RefreshStore>,
) -> SocketAddr {
    let auth =
        JwtAuth::builder().hmac_secret(super::SECRET).revocation(Arc::clone(&revocations)).build().unwrap();
    let state = AuthState {
        issuer: super::issuer(),
        revocations,
        refresh: refresh_store,
        cookie: RefreshCookie::new("refresh_token", "/auth"),
    };
    let app = Router::new()
        .route("/auth/logout", post(logout))
        .route("/protected", get(protected))
        .route_layer(auth.layer::<User>())
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .with_state(state);
    super::serve(app).await
}

/// What the client keeps: the access token and the refresh cookie's value.
#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
}

/// The answer of a login or refresh: a new session, or the status and code.
pub async fn call(addr: SocketAddr, path: &str, session: Option<&Session>) -> Result<Session, super::Answer> {
    let mut request = reqwest::Client::new().post(format!("http://{addr}{path}"));
    if let Some(session) = session {
        request = request
            .bearer_auth(&session.access)
            .header("cookie", format!("refresh_token={}", session.refresh));
    }
    let response = request.send().await.expect("the test server answers");
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|pair| pair.strip_prefix("refresh_token="))
        .map(str::to_owned);
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    match (status, body.get("access_token").and_then(|t| t.as_str()), cookie) {
        (200, Some(access), Some(refresh)) if !refresh.is_empty() => {
            Ok(Session { access: access.to_owned(), refresh })
        }
        _ => {
            Err(super::Answer { status, code: body.get("code").and_then(|c| c.as_str()).map(str::to_owned) })
        }
    }
}
