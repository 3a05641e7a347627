//! The smallest complete program: an axum service whose `/me` and `/admin` routes need a JWT.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no configuration it verifies HS256 tokens signed with a random secret made at start,
//! and prints ready-to-paste `curl` commands with tokens it minted. The environment variables
//! of the README (`BIND`, `JWT_SECRET`, `JWT_PUBLIC_KEY`, `JWT_ALG`, `JWT_ISSUER`,
//! `JWT_AUDIENCE`) change that.
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /health` | 200, no token needed |
//! | `GET /me` | 200 with the token's claims as JSON |
//! | `GET /admin` | 200 when the token shows a second factor; otherwise 401 with a step-up challenge |
//! | `GET /ready` | 200 when the layer can answer (keys loaded, stores reachable), 503 with the reasons |
//! | `GET /metrics` | the layer's metrics as Prometheus text (feature `metrics`, on by default) |

mod support;

use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tower_jwt_guard::{Claims, RequireMfa};

use support::Settings;

/// The claims this service reads: a subject, and whatever else the token carries.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    sub: String,
    #[serde(flatten)]
    other: Map<String, Value>,
}

async fn health() -> &'static str {
    "ok"
}

async fn me(Claims(user): Claims<User>) -> Json<Value> {
    Json(json!(*user))
}

async fn admin(RequireMfa(context): RequireMfa, Claims(user): Claims<User>) -> Json<Value> {
    Json(json!({ "admin": true, "sub": user.sub, "amr": context.amr }))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    // Before the first request: the layer's metrics register with the recorder on first use.
    let metrics = support::metrics_recorder();
    let settings = Settings::from_env("127.0.0.1:3000");
    let (listener, addr) = settings.listen().await;
    let auth = support::with_dpop(settings.auth_builder(), addr)
        .build()
        .unwrap_or_else(|err| support::fail("configuration", err));

    let app = Router::new()
        .route("/me", get(me))
        .route("/admin", get(admin))
        .route_layer(auth.layer::<User>())
        .route("/health", get(health))
        .merge(support::operations(&auth, metrics));

    println!("quickstart listening on http://{addr} ({})", settings.describe_keys());
    println!("  curl -i http://{addr}/health");
    println!("  curl -i http://{addr}/ready");
    println!("  curl -s http://{addr}/metrics");
    match settings.demo_tokens() {
        Some(tokens) => {
            let (plain, mfa) = (tokens.password_only, tokens.second_factor);
            println!("  curl -i http://{addr}/me -H 'Authorization: Bearer {plain}'");
            println!(
                "  curl -i http://{addr}/admin -H 'Authorization: Bearer {plain}'   # 401: no second factor"
            );
            println!("  curl -i http://{addr}/admin -H 'Authorization: Bearer {mfa}'");
        }
        None => {
            println!("  curl -i http://{addr}/me -H \"Authorization: Bearer $TOKEN\"");
            println!("  curl -i http://{addr}/admin -H \"Authorization: Bearer $TOKEN\"   # needs amr with a second factor");
        }
    }

    if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(support::shutdown_signal()).await {
        support::fail("server", err);
    }
}
