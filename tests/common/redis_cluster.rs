//! A Redis Cluster of local `redis-server` processes (feature `redis`): started, formed with
//! `redis-cli --cluster create`, and read back through `CLUSTER NODES` to find which node owns a
//! key, to kill or freeze it, and to wait until the cluster has failed over.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use super::eventually;
use super::redis_server::RedisProcess;

/// A data node on `{port}`, in memory only.
pub const DATA_NODE: [&str; 10] =
    ["--bind", "127.0.0.1", "--port", "{port}", "--save", "", "--appendonly", "no", "--dir", "{dir}"];

/// One command to the node on `port` (a fresh connection, at most 1 s: a frozen node answers nothing).
pub async fn query(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let attempt = async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
}

/// A command's answer as text.
pub async fn text(port: u16, args: &[&str]) -> Option<String> {
    match query(port, args).await.ok()? {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        redis::Value::VerbatimString { text, .. } => Some(text),
        redis::Value::Int(n) => Some(n.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// One line of `CLUSTER NODES`, as a node sees it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// Flagged `fail` or `fail?`.
    pub failing: bool,
    /// The primary's id, for a replica.
    pub primary_id: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

fn parse_nodes(text: &str) -> Vec<NodeView> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, addr, flags, primary_id) =
                (fields.first()?, fields.get(1)?, fields.get(2)?, fields.get(3)?);
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let slots = fields[8.min(fields.len())..]
                .iter()
                .filter(|slot| !slot.starts_with('['))
                .filter_map(|slot| match slot.split_once('-') {
                    Some((from, to)) => Some((from.parse().ok()?, to.parse().ok()?)),
                    None => slot.parse().ok().map(|one| (one, one)),
                })
                .collect();
            Some(NodeView {
                id: (*id).to_owned(),
                port,
                primary: flags.contains("master"),
                failing: flags.contains("fail"),
                primary_id: (*primary_id != "-").then(|| (*primary_id).to_owned()),
                slots,
            })
        })
        .collect()
}

/// Local cluster nodes, killed on drop.
pub struct Cluster {
    pub nodes: Vec<RedisProcess>,
    /// Indices of the nodes killed or frozen (and not yet restarted).
    down: HashSet<usize>,
}

impl Cluster {
    /// `primaries` primaries with `replicas` replicas each, `cluster-node-timeout 2000`; waits
    /// until every node says `cluster_state:ok` and every replica is in sync. `None` when skipped.
    pub async fn start(test: &str, primaries: usize, replicas: usize) -> Option<Cluster> {
        let args = [
            &DATA_NODE[..],
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes-{port}.conf",
                "--cluster-node-timeout",
                "2000",
            ],
        ]
        .concat();
        let first = RedisProcess::start(test, &args)?;
        let mut nodes = vec![first];
        for _ in 1..primaries * (1 + replicas) {
            nodes.push(RedisProcess::start(test, &args).unwrap());
        }
        let hosts: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&hosts)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli runs (package redis-tools)");
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stdout));
        let cluster = Cluster { nodes, down: HashSet::new() };
        cluster.settle(Duration::from_secs(60)).await;
        Some(cluster)
    }

    /// `redis+cluster://` the first `seeds` nodes.
    pub fn url(&self, seeds: usize) -> String {
        let hosts: Vec<String> =
            self.nodes[..seeds].iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }

    pub fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port == port).expect("a node of this cluster")
    }

    fn live(&self) -> impl Iterator<Item = (usize, &RedisProcess)> {
        self.nodes.iter().enumerate().filter(|(i, _)| !self.down.contains(i))
    }

    /// The cluster as a live node sees it.
    pub async fn view(&self) -> Option<Vec<NodeView>> {
        for (_, node) in self.live() {
            if let Some(nodes) = text(node.port, &["CLUSTER", "NODES"]).await {
                return Some(parse_nodes(&nodes));
            }
        }
        None
    }

    /// The slot of `key`.
    pub async fn slot(&self, key: &str) -> u16 {
        let (_, node) = self.live().next().expect("a live node");
        text(node.port, &["CLUSTER", "KEYSLOT", key])
            .await
            .and_then(|s| s.parse().ok())
            .expect("CLUSTER KEYSLOT")
    }

    /// The index of the node that serves `slot` as a live node sees it.
    pub async fn primary_of(&self, slot: u16) -> usize {
        let view = self.view().await.expect("a live node answers");
        let owner = view
            .iter()
            .find(|n| n.primary && n.slots.iter().any(|&(from, to)| (from..=to).contains(&slot)))
            .expect("an owner of every slot");
        self.index_of(owner.port)
    }

    /// The current primaries' indices (with slots), by port.
    pub async fn primaries(&self) -> Vec<usize> {
        let view = self.view().await.expect("a live node answers");
        let mut ports: Vec<u16> =
            view.iter().filter(|n| n.primary && !n.slots.is_empty() && !n.failing).map(|n| n.port).collect();
        ports.sort_unstable();
        ports.into_iter().map(|port| self.index_of(port)).collect()
    }

    /// The node whose clients subscribe to `channel` (`PUBSUB NUMSUB` counts a node's own).
    pub async fn subscribed_to(&self, channel: &str) -> Vec<usize> {
        let mut found = Vec::new();
        for (i, node) in self.live() {
            if let Ok(redis::Value::Array(reply)) = query(node.port, &["PUBSUB", "NUMSUB", channel]).await {
                if matches!(reply.get(1), Some(redis::Value::Int(n)) if *n > 0) {
                    found.push(i);
                }
            }
        }
        found
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
        self.down.insert(i);
    }

    /// Freezes node `i` (SIGSTOP).
    pub fn freeze(&mut self, i: usize) {
        self.nodes[i].freeze();
        self.down.insert(i);
    }

    /// Starts killed node `i` again (it rejoins as a replica of whoever took its slots).
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
        self.down.remove(&i);
    }

    /// Whether the cluster is whole again: every live node says `cluster_state:ok` and sees
    /// every slot owned by a live primary; every live replica is in sync with its primary.
    pub async fn settled(&self) -> bool {
        let live_ports: HashSet<u16> = self.live().map(|(_, n)| n.port).collect();
        for (_, node) in self.live() {
            let Some(info) = text(node.port, &["CLUSTER", "INFO"]).await else { return false };
            if !info.contains("cluster_state:ok") {
                return false;
            }
            let Some(nodes) = text(node.port, &["CLUSTER", "NODES"]).await else { return false };
            let view = parse_nodes(&nodes);
            let covered: u32 = view
                .iter()
                .filter(|n| n.primary && !n.failing && live_ports.contains(&n.port))
                .flat_map(|n| n.slots.iter().map(|&(from, to)| u32::from(to - from) + 1))
                .sum();
            if covered != 16384 {
                return false;
            }
            let Some(replication) = text(node.port, &["INFO", "replication"]).await else { return false };
            if replication.contains("role:slave") && !replication.contains("master_link_status:up") {
                return false;
            }
            if replication.contains("master_sync_in_progress:1") {
                return false;
            }
        }
        true
    }

    /// Whether every live primary's replicas have all its writes (same replication offset).
    pub async fn caught_up(&self) -> bool {
        for (_, node) in self.live() {
            let Some(info) = text(node.port, &["INFO", "replication"]).await else { return false };
            if !info.contains("role:master") {
                continue;
            }
            let field = |name: &str| {
                info.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).map(str::to_owned)
            };
            let Some(offset) = field("master_repl_offset:") else { return false };
            let replicas = info.lines().filter(|l| l.starts_with("slave") && l.contains("offset="));
            for replica in replicas {
                if !replica.split(',').any(|part| part == format!("offset={offset}")) {
                    return false;
                }
            }
        }
        true
    }

    /// Waits until [`settled`](Self::settled); returns how long that took.
    pub async fn settle(&self, patience: Duration) -> Duration {
        let start = std::time::Instant::now();
        eventually("the cluster to settle", patience, || async { self.settled().await.then_some(()) }).await;
        start.elapsed()
    }
}
