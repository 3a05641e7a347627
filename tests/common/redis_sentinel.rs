//! Redis Sentinel of local `redis-server` processes (feature `redis`): replicas of a primary,
//! three sentinels watching it as `mymaster`, the URL the stores take, and what the sentinels
//! and the replicas say during a failover.

use std::time::Duration;

use super::eventually;
use super::redis_cluster::{query, text, DATA_NODE};
use super::redis_server::RedisProcess;

/// The arguments of a data node replicating the primary on `primary_port`.
pub fn replica_node(primary_port: &str) -> Vec<&str> {
    [&DATA_NODE[..], &["--replicaof", "127.0.0.1", primary_port]].concat()
}

/// Three sentinels watching the primary on `primary_port` as `mymaster`: quorum 2, down after
/// 1 s, `failover_timeout`, one replica resynchronised at a time.
pub fn start_sentinels(test: &str, primary_port: u16, failover_timeout: Duration) -> Vec<RedisProcess> {
    let monitor = format!(
        "sentinel monitor mymaster 127.0.0.1 {primary_port} 2\nsentinel down-after-milliseconds mymaster 1000\n\
         sentinel failover-timeout mymaster {}\nsentinel parallel-syncs mymaster 1\n",
        failover_timeout.as_millis()
    );
    (0..3)
        .map(|_| {
            let config = RedisProcess::config_file(test, &monitor);
            RedisProcess::start(
                test,
                &[&config, "--sentinel", "--bind", "127.0.0.1", "--port", "{port}", "--dir", "{dir}"],
            )
            .unwrap()
        })
        .collect()
}

/// Waits until every sentinel knows `replicas` replicas of `mymaster` (they learn them from the
/// primary).
pub async fn await_replicas(sentinels: &[RedisProcess], replicas: usize, patience: Duration) {
    for sentinel in sentinels {
        eventually("the sentinels to see the replica", patience, || async {
            let known = query(sentinel.port, &["SENTINEL", "REPLICAS", "mymaster"]).await.ok()?;
            matches!(&known, redis::Value::Array(list) if list.len() >= replicas).then_some(())
        })
        .await;
    }
}

/// The `redis+sentinel://` URL of `sentinels`, for `mymaster`.
pub fn sentinel_url(sentinels: &[RedisProcess]) -> String {
    let hosts: Vec<String> = sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
    format!("redis+sentinel://{}/mymaster", hosts.join(","))
}

/// The port of the primary that the sentinel on `sentinel_port` names now.
pub async fn named_primary(sentinel_port: u16) -> Option<u16> {
    let addr = query(sentinel_port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]).await.ok()?;
    let redis::Value::Array(parts) = addr else { return None };
    let Some(redis::Value::BulkString(port)) = parts.get(1) else { return None };
    String::from_utf8_lossy(port).parse::<u16>().ok()
}

/// `Some` once the replica's replication offset is the primary's: it has every write so far.
pub async fn caught_up(primary_port: u16, replica_port: u16) -> Option<()> {
    let offset = |info: String| {
        info.lines().find_map(|l| l.strip_prefix("master_repl_offset:").map(|v| v.trim().to_owned()))
    };
    let primary_offset = offset(text(primary_port, &["INFO", "replication"]).await?)?;
    let replica_offset = offset(text(replica_port, &["INFO", "replication"]).await?)?;
    (primary_offset == replica_offset).then_some(())
}
