//! A node script of `tests/interop` run as a child process that speaks JSON lines: commands in
//! on stdin, one JSON object out per answer on stdout (other lines, notices, are passed over).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The running script; killed when dropped.
pub struct NodeScript {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl NodeScript {
    /// Starts `node <script>` in `interop` with the environment `env`.
    pub fn start(interop: &Path, script: &str, env: &[(&str, &std::ffi::OsStr)]) -> NodeScript {
        let mut command = tokio::process::Command::new("node");
        command.current_dir(interop).arg(script);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let stdout =
            tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
        NodeScript { child, stdin, stdout }
    }

    /// The next JSON object line (at most 30 s).
    pub async fn next(&mut self) -> Value {
        let read = async {
            loop {
                let line = self.stdout.next_line().await.unwrap().expect("the provider is running");
                if let Ok(object @ Value::Object(_)) = serde_json::from_str(&line) {
                    return object;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read).await.expect("the provider answers")
    }

    /// Writes `command` and a newline.
    pub async fn send(&mut self, command: &str) {
        tokio::io::AsyncWriteExt::write_all(&mut self.stdin, format!("{command}\n").as_bytes())
            .await
            .unwrap();
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
