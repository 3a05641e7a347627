//! The mcp_server example, run as a user runs it: an MCP client's view over loopback, and a
//! real OAuth client library (oauth4webapi, under node) discovering it from a 401.

mod example_process;
mod harness;

use std::path::Path;
use std::process::Command;

use axum::routing::get;
use axum::{Json, Router};
use example_process::Example;
use harness::{answer, client, now, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::Algorithm;

const SECRET: &str = "mcp-server-test-secret-of-32-bytes!!";

/// An authorization server that publishes only its RFC 8414 metadata: enough for discovery.
async fn authorization_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/as", listener.local_addr().unwrap());
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    });
    let app = Router::new()
        .route("/.well-known/oauth-authorization-server/as", get(move || async move { Json(document) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

/// The example, with its authorization server, and the two tokens its banner prints
/// (with scope `mcp:tools`, without).
async fn start() -> (Example, String, String, String) {
    let issuer = authorization_server().await;
    let mut example = Example::start(
        "mcp_server",
        &[("JWT_SECRET", SECRET), ("JWT_ISSUER", &issuer), ("MCP_AUTHORIZATION_SERVER", &issuer)],
    );
    let mut tokens = Vec::new();
    while tokens.len() < 2 {
        let line = example.next_line();
        if let Some(rest) = line.split("Bearer ").nth(1) {
            tokens.push(rest.split('\'').next().unwrap().to_string());
        }
    }
    let without = tokens.pop().unwrap();
    let with = tokens.pop().unwrap();
    (example, issuer, with, without)
}

async fn rpc(url: &str, token: Option<&str>, method: &str, params: Value) -> Answer {
    let mut request = client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request).await
}

#[tokio::test]
async fn an_mcp_client_meets_the_metadata_the_audience_and_the_scope() {
    let (example, issuer, tools, profile) = start().await;
    let mcp = format!("{}/mcp", example.url());
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", example.url());
    let attribute = format!(r#"resource_metadata="{metadata_url}""#);

    // The metadata, no token needed; its resource is the URL it was fetched for (§3.3).
    let metadata = answer(client().get(&metadata_url)).await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.body["resource"], mcp.as_str());
    assert_eq!(metadata.body["authorization_servers"], json!([issuer]));
    assert_eq!(metadata.body["scopes_supported"], json!(["mcp:tools"]));
    assert_eq!(metadata.body["bearer_methods_supported"], json!(["header"]));

    // Without a token: 401 naming the metadata.
    let refused = rpc(&mcp, None, "initialize", json!({})).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.challenge.unwrap(), format!(r#"Bearer realm="api", {attribute}"#));

    // With a valid token: initialize and tools/list, scope or not.
    let init = rpc(&mcp, Some(&profile), "initialize", json!({ "protocolVersion": "2025-06-18" })).await;
    assert_eq!(init.status, 200);
    assert_eq!(init.body["id"], 7);
    assert_eq!(init.body["result"]["protocolVersion"], "2025-06-18");
    assert!(init.body["result"]["capabilities"]["tools"].is_object());
    let list = rpc(&mcp, Some(&profile), "tools/list", json!({})).await;
    assert_eq!(list.body["result"]["tools"][0]["name"], "whoami");

    // whoami needs mcp:tools.
    let whoami = json!({ "name": "whoami", "arguments": {} });
    let me = rpc(&mcp, Some(&tools), "tools/call", whoami.clone()).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["result"]["content"][0]["text"], "alice");
    let denied = rpc(&mcp, Some(&profile), "tools/call", whoami).await;
    assert_eq!((denied.status, denied.code()), (403, "INSUFFICIENT_SCOPE"));
    let challenge = denied.challenge.unwrap();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.contains(r#"scope="mcp:tools""#), "{challenge}");
    assert!(challenge.ends_with(&attribute), "{challenge}");

    // A token of the same issuer for another resource is refused (RFC 8707).
    let key = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes());
    let claims = |aud: &str| json!({ "sub": "alice", "iss": issuer, "aud": aud, "scope": "mcp:tools", "exp": now() + 60 });
    let other = rpc(&mcp, Some(&key.sign(&claims("http://127.0.0.1:1/mcp"))), "tools/list", json!({})).await;
    assert_eq!((other.status, other.code()), (401, "INVALID_TOKEN"));
    assert!(other.challenge.unwrap().ends_with(&attribute));
    let ours = rpc(&mcp, Some(&key.sign(&claims(&mcp))), "tools/list", json!({})).await;
    assert_eq!(ours.status, 200);
}

/// Whether node and the npm packages of `tests/interop` are installed (`npm ci --prefix tests/interop`).
fn node_ready(interop: &Path) -> Result<(), String> {
    match Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => return Err("node is not installed".into()),
    }
    if !interop.join("node_modules/oauth4webapi/package.json").exists() {
        return Err("oauth4webapi is not installed: run `npm ci --prefix tests/interop`".into());
    }
    Ok(())
}

#[tokio::test]
async fn oauth4webapi_discovers_the_authorization_server_from_a_401() {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    if let Err(why) = node_ready(&interop) {
        // In CI the interop test must run; elsewhere it may be skipped, and says so.
        assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
        println!("skipped: {why}");
        return;
    }
    let (example, issuer, _, _) = start().await;
    let mcp = format!("{}/mcp", example.url());
    // A token the resource refuses (signed with another key), as a client holding a stale one.
    let stale = TestKey::hmac(Algorithm::HS256, b"another-secret-of-at-least-32-bytes!");
    let stale = stale.sign(&json!({ "sub": "alice", "iss": issuer, "aud": mcp, "exp": now() + 60 }));

    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").current_dir(&interop).arg("discover.mjs").arg(&mcp).arg(&stale).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let learnt: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let mcp = format!("{}/mcp", example.url());
    assert_eq!(learnt["error"], "invalid_token");
    assert_eq!(
        learnt["resource_metadata"],
        format!("{}/.well-known/oauth-protected-resource/mcp", example.url())
    );
    assert_eq!(learnt["resource"], mcp);
    assert_eq!(learnt["scopes_supported"], json!(["mcp:tools"]));
    assert_eq!(learnt["issuer"], issuer);
    assert_eq!(learnt["token_endpoint"], format!("{issuer}/token"));
}
