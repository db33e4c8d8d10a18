//! `gatehouse serve` as a child process, for what needs a real process: several nodes on one
//! database, `kill -9`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `gatehouse serve` process; killed when dropped.
pub struct Node {
    pub url: String,
    child: Child,
}

impl Node {
    /// Starts `gatehouse serve` on 127.0.0.1:`port` with the settings in `env`
    /// (`GATEHOUSE_*`), and waits until it answers `/health`.
    pub async fn start(port: u16, env: &[(&str, &str)]) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .env_remove("GATEHOUSE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/health", node.url)).await
                && r.status() == 200
            {
                return node;
            }
            assert!(Instant::now() < deadline, "node on {port} did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: the process ends at once, with no chance to finish anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `url` answers `status`, for at most `within`.
pub async fn wait_for_status(url: &str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == status
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never answered {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
