//! Redis over TLS (feature `redis`): one server, a Sentinel set-up and a Cluster, every
//! connection of the stores in TLS (`rediss://`, `rediss+sentinel://`, `rediss+cluster://`),
//! servers verified against a CA the test makes (given to rustls through `SSL_CERT_FILE`, which
//! the system-roots loader honours).
//!
//! One test function: it sets the process's `SSL_CERT_FILE` before anything connects. Without
//! `redis-server` it says "skipped"; with `REQUIRE_REDIS=1` (CI) it fails.
#![cfg(feature = "redis")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::redis_server::{unique_prefix, RedisProcess};
use common::{eventually, get as http_get, post as http_post, revocations, subscribed, token};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tower_jwt_guard::refresh::{RedisRefreshStore, RefreshStore, SenderConstraint};

/// A hang detector for servers and a cluster to form, not a speed requirement.
const PATIENCE: Duration = Duration::from_secs(60);
const TEST: &str = "every_topology_is_reached_over_tls";

/// A CA and a certificate for `127.0.0.1` signed by it, as PEM files in a fresh directory.
struct Certificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certificates {
    fn make(dir: &Path) -> Certificates {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "tower-jwt-guard test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        // Not the CA's name: OpenSSL (redis-cli) would take the certificate for self-signed.
        params.distinguished_name.push(DnType::CommonName, "redis test server");
        let cert = params.signed_by(&key, &ca).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Certificates {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
        }
    }

    /// `redis-server` arguments: TLS only, on `{port}`.
    fn server_args(&self) -> Vec<String> {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        [
            "--port",
            "0",
            "--tls-port",
            "{port}",
            "--tls-cert-file",
            &path(&self.cert),
            "--tls-key-file",
            &path(&self.key),
            "--tls-ca-cert-file",
            &path(&self.ca),
            "--tls-auth-clients",
            "no",
            "--bind",
            "127.0.0.1",
            "--dir",
            "{dir}",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect()
    }
}

fn start(args: &[String]) -> Option<RedisProcess> {
    RedisProcess::start(TEST, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `CLUSTER INFO` (or any command answered with text) over TLS.
async fn text(port: u16, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("rediss://127.0.0.1:{port}/")).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query_async(&mut conn).await.ok()? {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        redis::Value::VerbatimString { text, .. } => Some(text),
        other => Some(format!("{other:?}")),
    }
}

/// Two instances on `url`: a revocation made on one is refused on the other, and a refresh
/// token rotates.
async fn stores_work_through(url: &str) {
    let prefix = unique_prefix("tls");
    let (a, b) = (revocations(url, &prefix), revocations(url, &prefix));
    let (addr_a, addr_b) = (common::revocation_instance(&a).await, common::revocation_instance(&b).await);
    subscribed(&a, PATIENCE).await;
    subscribed(&b, PATIENCE).await;
    let access = token("alice");
    assert!(http_get(addr_b, "/me", &access.token).await.is(200, None), "{url}");
    assert_eq!(http_post(addr_a, "/logout", &access.token).await.status, 204, "{url}");
    eventually("the revocation to reach the other instance", PATIENCE, || async {
        http_get(addr_b, "/me", &access.token).await.is(401, Some("TOKEN_REVOKED")).then_some(())
    })
    .await;
    let refresh = RedisRefreshStore::builder(url).unwrap().key_prefix(&prefix).build().unwrap();
    let login = refresh.issue("alice", &SenderConstraint::none()).await.unwrap();
    assert_eq!(
        refresh.rotate(login.token.as_str(), &SenderConstraint::none()).await.unwrap().subject,
        "alice"
    );
}

#[tokio::test]
async fn every_topology_is_reached_over_tls() {
    let dir = std::env::temp_dir().join(format!("tjg-{}", unique_prefix(TEST).replace(':', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let certificates = Certificates::make(&dir);
    // Before any connection is made, and the only test of this binary: rustls's system roots
    // are read from this file.
    std::env::set_var("SSL_CERT_FILE", &certificates.ca);
    let base = certificates.server_args();
    let storage = ["--save", "", "--appendonly", "no"].map(str::to_owned);

    // One server.
    let Some(server) = start(&[base.clone(), storage.to_vec()].concat()) else { return };
    stores_work_through(&format!("rediss://127.0.0.1:{}/", server.port)).await;
    // The same server asked in plain TCP: no answer it could trust, so the store fails closed.
    let plain = revocations(&format!("redis://127.0.0.1:{}/", server.port), &unique_prefix("plain"));
    let addr = common::revocation_instance(&plain).await;
    let answer = http_get(addr, "/me", &token("bob").token).await;
    assert!(answer.is(503, Some("AUTH_UNAVAILABLE")), "{answer:?}");

    // A Sentinel over TLS, watching that server over TLS.
    let monitor = format!("sentinel monitor mymaster 127.0.0.1 {} 1\n", server.port);
    let config = RedisProcess::config_file(TEST, &monitor);
    let sentinel_args = [
        vec![config, "--sentinel".to_owned(), "--tls-replication".to_owned(), "yes".to_owned()],
        base.clone(),
    ]
    .concat();
    let sentinel = start(&sentinel_args).unwrap();
    stores_work_through(&format!("rediss+sentinel://127.0.0.1:{}/mymaster", sentinel.port)).await;

    // A three-node Cluster, its bus and its clients in TLS.
    let cluster_args = [
        base,
        storage.to_vec(),
        ["--cluster-enabled", "yes", "--cluster-config-file", "nodes-{port}.conf", "--tls-cluster", "yes"]
            .map(str::to_owned)
            .to_vec(),
    ]
    .concat();
    let nodes = [start(&cluster_args).unwrap(), start(&cluster_args).unwrap(), start(&cluster_args).unwrap()];
    let hosts: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let created = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(&certificates.ca)
        .args(["--cluster", "create"])
        .args(&hosts)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs (package redis-tools)");
    assert!(
        created.status.success(),
        "{}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    for node in &nodes {
        eventually("the cluster to form", PATIENCE, || async {
            text(node.port, &["CLUSTER", "INFO"]).await?.contains("cluster_state:ok").then_some(())
        })
        .await;
    }
    stores_work_through(&format!("rediss+cluster://{}/", hosts.join(","))).await;
    drop((nodes, sentinel, server));
}
