//! A real `redis-server` per test, on an ephemeral loopback port, killed on drop.
//!
//! - `REDIS_URL` set: that server is used (tests isolate themselves with a unique key prefix);
//! - else `redis-server` on the PATH: a private server is started with `--save '' --appendonly no`;
//! - else the test is skipped with a clear message, unless `REQUIRE_REDIS=1` (set by CI),
//!   which turns the skip into a failure.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the test's Redis is.
pub enum Redis {
    /// A server this test started and controls (can stop and restart it).
    Local(RedisServer),
    /// A server given by `REDIS_URL`.
    External(String),
}

impl Redis {
    /// The Redis for a test, or `None` (after printing why) when the test must be skipped.
    pub fn for_test(test: &str) -> Option<Redis> {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Some(Redis::External(url));
        }
        if let Some(binary) = find_binary() {
            return Some(Redis::Local(RedisServer::start(binary)));
        }
        skip(test, "redis-server not found on PATH and REDIS_URL not set")
    }

    /// A server this test controls (for stop/restart tests), or `None` when skipped.
    pub fn local_for_test(test: &str) -> Option<RedisServer> {
        match find_binary() {
            Some(binary) => Some(RedisServer::start(binary)),
            None => skip(test, "redis-server not found on PATH (this test stops and restarts it)"),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Redis::Local(server) => server.url(),
            Redis::External(url) => url.clone(),
        }
    }
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var("REQUIRE_REDIS").is_ok_and(|v| v == "1") {
        panic!("{test}: REQUIRE_REDIS=1 but {why}");
    }
    eprintln!("{test}: skipped: {why} (install redis-server or set REDIS_URL to run it)");
    None
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/bin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}

/// A private `redis-server` process.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start(binary: PathBuf) -> RedisServer {
        for _ in 0..10 {
            let port = free_port();
            let mut server = RedisServer { binary: binary.clone(), port, child: None };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (the test's "Redis is down").
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (the port may be taken meanwhile: retried a while).
    pub fn restart(&mut self) {
        self.stop();
        let start = Instant::now();
        while !self.spawn() {
            assert!(start.elapsed() < Duration::from_secs(20), "redis-server did not restart on its port");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Spawns the process and waits until it accepts connections; `false` if it exited
    /// (port collision) or never came up.
    fn spawn(&mut self) -> bool {
        let child = Command::new(&self.binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() && self.answers_ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().unwrap().port()
}

/// A key prefix no other test uses (tests may share a `REDIS_URL` server).
pub fn unique_prefix(test: &str) -> String {
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("test:{test}:{suffix}:")
}

impl RedisServer {
    /// Freezes the process (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

/// A `redis-server` process with arguments of the test's choosing (a replica, a sentinel, a
/// cluster node), killed on drop. `None` (after saying why) when the test must be skipped.
pub struct RedisProcess {
    pub port: u16,
    child: Option<Child>,
    binary: PathBuf,
    /// The arguments it was started with (`{port}` and `{dir}` replaced), for a restart.
    args: Vec<String>,
}

impl RedisProcess {
    /// Starts `redis-server` on a free port (below 55535, so that a cluster's bus port, port +
    /// 10000, exists) with `args` (`{port}` and `{dir}` in them are replaced), and waits until
    /// it accepts connections.
    pub fn start(test: &str, args: &[&str]) -> Option<RedisProcess> {
        let binary = find_binary().or_else(|| skip(test, "redis-server not found on PATH"))?;
        let dir = std::env::temp_dir().join(format!("tjg-{}", unique_prefix(test).replace(':', "-")));
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..20 {
            let port = free_port();
            if port >= 55535 || TcpListener::bind(("127.0.0.1", port + 10000)).is_err() {
                continue;
            }
            let args: Vec<String> = args
                .iter()
                .map(|arg| arg.replace("{port}", &port.to_string()).replace("{dir}", &dir.to_string_lossy()))
                .collect();
            let mut process = RedisProcess { port, child: None, binary: binary.clone(), args };
            if process.spawn() {
                return Some(process);
            }
        }
        panic!("{test}: could not start redis-server {args:?}");
    }

    /// Starts the process again, on the same port with the same arguments and directory (a
    /// cluster node rejoins with its `nodes.conf`); the port may be taken meanwhile: retried a while.
    pub fn restart(&mut self) {
        self.kill();
        let start = Instant::now();
        while !self.spawn() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not restart on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the process again as a replica of the server on `primary_port` (a memory-only
    /// primary that restarted as a primary would come back empty).
    pub fn restart_as_replica_of(&mut self, primary_port: u16) {
        if let Some(at) = self.args.iter().position(|arg| arg == "--replicaof") {
            self.args.drain(at..at + 3);
        }
        self.args.extend(["--replicaof".to_owned(), "127.0.0.1".to_owned(), primary_port.to_string()]);
        self.restart();
    }

    /// Whether the process runs (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Spawns the process and waits until it accepts connections; `false` if it exited or never came up.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new(&self.binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], self.port)),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Writes `contents` (with `{port}` replaced later by [`start`](Self::start)) to a fresh
    /// file for a sentinel's configuration (sentinels rewrite their file).
    pub fn config_file(test: &str, contents: &str) -> String {
        let path = std::env::temp_dir().join(format!("tjg-{}.conf", unique_prefix(test).replace(':', "-")));
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Redis key of the revocation of `issuer`'s token `jti` (`{prefix}revoked:jti:{len}:{issuer}{jti}`,
/// the issuer length-prefixed): the layout is stored data, so a test pins it.
pub fn token_key(prefix: &str, issuer: Option<&str>, jti: &str) -> String {
    let issuer = issuer.unwrap_or("");
    format!("{prefix}revoked:jti:{}:{issuer}{jti}", issuer.len())
}

/// The Redis key of the revocation of `issuer`'s subject (as [`token_key`]).
pub fn subject_key(prefix: &str, issuer: Option<&str>, subject: &str) -> String {
    let issuer = issuer.unwrap_or("");
    format!("{prefix}revoked:sub:{}:{issuer}{subject}", issuer.len())
}
