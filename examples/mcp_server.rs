//! An MCP server that OAuth clients discover (RFC 9728) and that accepts only tokens issued for
//! it (RFC 8707): the authorization the Model Context Protocol asks of every HTTP server.
//!
//! ```text
//! cargo run --example mcp_server
//! ```
//!
//! The resource identifier is `PUBLIC_URL` + `/mcp` (`PUBLIC_URL` defaults to `http://` + the
//! address it listens on); tokens must name it in `aud`. The metadata lists
//! `MCP_AUTHORIZATION_SERVER` as the authorization server (default: the configured issuer,
//! `JWT_ISSUER` or `JWT_OIDC_ISSUER`). The other variables are those of every example.
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /.well-known/oauth-protected-resource/mcp` | the RFC 9728 metadata, no token needed |
//! | `POST /mcp` without a valid token | 401, `WWW-Authenticate: Bearer resource_metadata="<that URL>"` |
//! | `POST /mcp` `initialize`, `tools/list` | any valid token for this resource |
//! | `POST /mcp` `tools/call` `whoami` | the token's `sub`; needs scope `mcp:tools`, else 403 `insufficient_scope` |
//!
//! The MCP endpoint is a minimal JSON-RPC handler of the streamable HTTP transport (JSON
//! answers, no server-sent events), not the `rmcp` SDK: the scope is checked per tool and must
//! refuse with an HTTP 403 challenge, which the SDK's transport would turn into a JSON-RPC
//! error inside a 200; and the SDK would double the build of this crate's examples.

mod support;

use axum::body::to_bytes;
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_jwt_guard::{ProtectedResource, ScopeSet, Scoped};

use support::Settings;

/// The scope the `whoami` tool needs.
struct McpTools;
impl ScopeSet for McpTools {
    const SCOPES: &'static [&'static str] = &["mcp:tools"];
}

/// The MCP protocol revisions this server speaks, newest first.
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// Longest JSON-RPC message read.
const MAX_MESSAGE: usize = 64 * 1024;

/// `POST /mcp`: one JSON-RPC message. The layer has already verified the token.
async fn mcp(request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let message: Value = match to_bytes(body, MAX_MESSAGE).await.map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(message)) => message,
        _ => return rpc(Value::Null, Err((-32700, "parse error"))),
    };
    // A notification (no id), such as `notifications/initialized`, gets 202 and no body.
    let Some(id) = message.get("id").cloned() else { return StatusCode::ACCEPTED.into_response() };
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => {
            let asked = message["params"]["protocolVersion"].as_str();
            let version =
                PROTOCOL_VERSIONS.into_iter().find(|v| Some(*v) == asked).unwrap_or(PROTOCOL_VERSIONS[0]);
            Ok(json!({
                "protocolVersion": version,
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "tower-jwt-guard mcp_server", "version": env!("CARGO_PKG_VERSION") },
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({ "tools": [{
            "name": "whoami",
            "description": "The subject of the access token (needs scope mcp:tools)",
            "inputSchema": { "type": "object", "properties": {} },
        }] })),
        "tools/call" if message["params"]["name"] == "whoami" => {
            // The scope is checked here, per tool: without it, the layer's 403 challenge
            // (`insufficient_scope`, `scope`, `resource_metadata`) answers, not a JSON-RPC error.
            match Scoped::<McpTools>::from_request_parts(&mut parts, &()).await {
                Err(refusal) => return refusal.into_response(),
                Ok(Scoped(context, _)) => {
                    let sub = context.subject().unwrap_or_default().to_owned();
                    Ok(json!({
                        "content": [{ "type": "text", "text": sub }],
                        "structuredContent": { "sub": sub },
                        "isError": false,
                    }))
                }
            }
        }
        "tools/call" => Err((-32602, "unknown tool")),
        _ => Err((-32601, "method not found")),
    };
    rpc(id, result)
}

/// A JSON-RPC response.
fn rpc(id: Value, result: Result<Value, (i64, &str)>) -> Response {
    let body = match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err((code, message)) => {
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
        }
    };
    Json(body).into_response()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    let settings = Settings::from_env("127.0.0.1:3000");
    // The resource identifier names the address clients use, so it is known once listening.
    let tls = support::tls::Tls::from_env();
    let (listener, addr) = settings.listen().await;
    let resource = format!("{}/mcp", support::public_url(addr));

    let mut metadata = ProtectedResource::new(&resource)
        .unwrap_or_else(|err| support::fail("PUBLIC_URL", err))
        .scopes_supported(["mcp:tools"])
        .resource_name("tower-jwt-guard MCP example");
    if let Some(server) = std::env::var("MCP_AUTHORIZATION_SERVER").ok().filter(|s| !s.trim().is_empty()) {
        metadata = metadata.authorization_server(server);
    }
    let auth = settings
        .auth_builder()
        .resource(&resource)
        .protected_resource(metadata)
        .build()
        .unwrap_or_else(|err| support::fail("configuration", err));
    let Some(metadata) = auth.resource_metadata() else { support::fail("configuration", "no metadata") };

    let app = Router::<()>::new()
        .route("/mcp", post(mcp))
        .route_layer(auth.layer::<Value>())
        .merge(auth.resource_metadata_router());

    let curl = support::curl();
    let transport = tls.as_ref().map_or("plain HTTP", support::tls::Tls::describe);
    println!(
        "mcp_server listening on {}://{addr} ({}; {transport})",
        support::scheme(),
        settings.describe_keys()
    );
    println!("  resource {resource}, authorization servers {:?}", metadata.authorization_servers());
    println!("  {curl} -i {}", metadata.metadata_url());
    let call = r#"-H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'"#;
    println!("  {curl} -i -X POST {resource} {call}   # 401 naming the metadata");
    let issuer = settings.token_issuer_builder().map(|builder| builder.audience(resource.clone()).build());
    let mint = |scope: &str| issuer.as_ref().and_then(|i| i.mint("alice", &json!({ "scope": scope })).ok());
    match (mint("mcp:tools"), mint("profile")) {
        (Some(tools), Some(profile)) => {
            println!("  {curl} -i -X POST {resource} -H 'Authorization: Bearer {}' {call}", tools.token);
            println!(
                "  {curl} -i -X POST {resource} -H 'Authorization: Bearer {}' {call}   # 403: no mcp:tools",
                profile.token
            );
        }
        _ => println!("  {curl} -i -X POST {resource} -H \"Authorization: Bearer $TOKEN\" {call}"),
    }

    support::serve(listener, app, tls.as_ref()).await;
}
