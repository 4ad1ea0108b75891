//! Tests of a chaincode-as-a-service *binary* (one built on [`crate::server::main`]): run it with
//! a given environment, or start it in plaintext on a free loopback port and stop it the way the
//! network scripts do (SIGTERM).
//!
//! A crate's integration test that uses this also makes `cargo test` build the binary, which the
//! network suites then deploy (scripts/test.sh builds once and points `BCAMI_BIN_DIR` at it).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::server::env;

/// How long a starting server may take to listen (a debug build on a loaded CI machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Every configuration variable the server reads, cleared before a test sets its own.
const CONFIG_VARS: [&str; 5] = [
    env::ADDRESS,
    env::ID,
    env::TLS_CERT,
    env::TLS_KEY,
    env::CLIENT_CA_CERT,
];

/// Runs `binary` to completion with only `vars` of the server's configuration set.
pub fn run_with(binary: &Path, vars: &[(&str, &str)]) -> io::Result<Output> {
    configured(binary, vars).stdin(Stdio::null()).output()
}

fn configured(binary: &Path, vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary);
    for name in CONFIG_VARS {
        command.env_remove(name);
    }
    command.envs(vars.iter().copied()).env("RUST_LOG", "warn");
    command
}

/// A server binary serving plaintext on a loopback port.
#[derive(Debug)]
pub struct RunningServer {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
}

impl RunningServer {
    /// Starts `binary` as package `chaincode_id` and returns once it accepts TCP connections.
    /// Fails if it exits first or does not listen within a minute.
    pub fn start(binary: &Path, chaincode_id: &str) -> io::Result<Self> {
        let address = free_loopback_port()?;
        let child = configured(
            binary,
            &[
                (env::ADDRESS, &address.to_string()),
                (env::ID, chaincode_id),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
        let mut server = Self { child, address };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited ({status}) before listening on {address}",
                    binary.display()
                )));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.child.kill()?;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} did not listen on {address} within {START_TIMEOUT:?}",
                        binary.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM (as `network.sh down` does) and waits for the exit status.
    pub fn terminate(mut self) -> io::Result<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !sent.success() {
            self.child.kill()?;
            return Err(io::Error::other("kill -TERM failed"));
        }
        self.child.wait()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a server behind; after `terminate` the
        // child has been waited for and this is a no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port the OS just gave out and took back. Another process could
/// take it in between; the ephemeral range is large and tests use each for milliseconds.
fn free_loopback_port() -> io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}
