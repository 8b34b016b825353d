//! Child processes that never outlive their test, and ports for them.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A port nobody listens on right now (another process may take it before
/// the caller binds it; [`start_listening`] handles that race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// Whether this process runs as root (some tools refuse root, others need it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout == b"0\n")
        .unwrap_or(false)
}

/// A child process that is killed when dropped, also when its test panics:
/// no process outlives its test (a survivor would keep the test runner's
/// output pipe open and hang whoever reads it).
#[derive(Debug)]
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    pub fn new(child: Child) -> KillOnDrop {
        KillOnDrop(Some(child))
    }

    /// The process id, while the process is owned.
    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// SIGKILL now (no shutdown hook runs) and reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `"STOP"`, `"CONT"`, `"TERM"`) without reaping.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.id() {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .expect("running kill");
            assert!(status.success(), "kill -{signal} {pid} failed");
        }
    }

    /// The exit status, if the process has already ended.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut()?.try_wait().ok().flatten()
    }

    /// Waits (up to `bound`) for the process to exit by itself.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL now and collect whatever the process printed to piped outputs.
    pub fn kill_with_output(mut self) -> std::process::Output {
        let mut child = self.0.take().expect("the process is still owned");
        let _ = child.kill();
        child.wait_with_output().expect("reaping the process")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the program `command(port)` builds on a free port and returns once
/// it accepts connections there and is still alive a moment later. A port
/// taken by a parallel test between [`free_port`] and the bind makes the
/// program exit (or another process answers): then another port is tried.
pub async fn start_listening(
    command: impl Fn(u16) -> Command,
    what: &str,
) -> (KillOnDrop, SocketAddr) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = KillOnDrop::new(
            command(port)
                .spawn()
                .unwrap_or_else(|error| panic!("starting {what}: {error}")),
        );
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.exit_status() {
                eprintln!("{what} on port {port} exited ({status}); trying another port");
                break;
            }
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                // Someone else may hold the port (then this bind failed and
                // the program is exiting): it must still be alive a moment later.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if child.exit_status().is_none() {
                    return (child, address);
                }
                continue;
            }
            assert!(Instant::now() < deadline, "{what} did not start listening");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("{what} exited five times before listening");
}
