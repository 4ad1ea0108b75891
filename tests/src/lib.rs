//! End-to-end tests of BC-AMI against a live Fabric network.
//!
//! This library is the tests' shared helper: it reads the network's connection details
//! (`network.json`, written by `scripts/network.sh up`) once into [`bcami_client::Network`] and
//! connects Gateway clients as any of the network's users. The tests run through
//! `scripts/test.sh`, which brings the network up and exports `BCAMI_RUN_DIR`; run alone, without
//! a network, they fail with a message saying so — they never pass silently.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

pub use bcami_client::{Network, Org, User};

/// Why the network settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Neither `$BCAMI_NETWORK_JSON` nor `$BCAMI_RUN_DIR` is set.
    #[error(
        "no BC-AMI network settings: {0}. The end-to-end tests need a running network; run them with scripts/test.sh (or export BCAMI_RUN_DIR after scripts/network.sh up)"
    )]
    Missing(String),
    /// `network.json` cannot be read or does not parse.
    #[error(transparent)]
    Network(#[from] bcami_client::ConnectError),
}

/// The network's connection details, as `scripts/network.sh up` writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkEnv {
    /// `network.json`.
    pub network: Network,
}

impl Deref for NetworkEnv {
    type Target = Network;

    fn deref(&self) -> &Network {
        &self.network
    }
}

impl NetworkEnv {
    /// Loads `$BCAMI_NETWORK_JSON`, or `$BCAMI_RUN_DIR/network.json`.
    ///
    /// # Errors
    /// [`EnvError::Missing`] naming what is missing and how to run the tests, or the file's
    /// problem.
    pub fn load() -> Result<Self, EnvError> {
        let file = std::env::var_os("BCAMI_NETWORK_JSON")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("BCAMI_RUN_DIR").map(|d| Path::new(&d).join(Network::FILE))
            })
            .ok_or_else(|| {
                EnvError::Missing("BCAMI_NETWORK_JSON and BCAMI_RUN_DIR are both unset".into())
            })?;
        Ok(Self {
            network: Network::load(&file)?,
        })
    }

    /// Like [`Self::load`], but panics with the reason: for use at the top of a test.
    pub fn require() -> Self {
        match Self::load() {
            Ok(env) => env,
            Err(e) => panic!("{e}"),
        }
    }

    /// Whether chaincode `name` has been deployed on this network.
    pub fn is_deployed(&self, name: &str) -> bool {
        self.network
            .run_dir
            .join("chaincode")
            .join(name)
            .join("chaincode.env")
            .is_file()
    }

    /// Deploys chaincode `name` with `scripts/network.sh deploy`, unless it is already
    /// deployed. A cargo package is taken from `$BCAMI_BIN_DIR` when that is set (scripts/test.sh
    /// points it at the build it made), or else built in its own target folder
    /// (`$CARGO_TARGET_DIR/e2e-chaincode`), so that the running `cargo test` does not hold the
    /// build lock it needs.
    ///
    /// # Errors
    /// A message with the script's exit status and where its log is.
    pub fn ensure_deployed(&self, name: &str, chaincode: &Chaincode) -> Result<(), String> {
        if self.is_deployed(name) {
            return Ok(());
        }
        let script = self.network.repo.join("scripts/network.sh");
        let mut command = Command::new(&script);
        command
            .args(["deploy", "--name", name])
            .env("BCAMI_RUN_DIR", &self.network.run_dir);
        match chaincode {
            Chaincode::Package(package) => {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map_or_else(|| self.network.repo.join("target"), PathBuf::from)
                    .join("e2e-chaincode");
                command
                    .args(["--package", package])
                    .env("CARGO_TARGET_DIR", &target);
            }
            Chaincode::Server {
                script,
                client_auth,
            } => {
                command.arg("--binary").arg(script);
                if *client_auth {
                    command.arg("--client-auth");
                }
            }
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} deploy --name {name} failed ({status}); see {}",
                script.display(),
                self.network
                    .run_dir
                    .join(format!("logs/deploy-{name}.log"))
                    .display()
            ))
        }
    }

    /// The network with chaincode `name` deployed, deploying it on first use in this test
    /// process; panics with the reason when that fails.
    pub fn with_chaincode(name: &str, chaincode: &Chaincode) -> Self {
        static DEPLOYED: OnceLock<Mutex<HashMap<String, Result<NetworkEnv, String>>>> =
            OnceLock::new();
        let mut deployed = DEPLOYED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let result = deployed.entry(name.to_owned()).or_insert_with(|| {
            let env = Self::load().map_err(|e| e.to_string())?;
            env.ensure_deployed(name, chaincode)?;
            Ok(env)
        });
        match result {
            Ok(env) => env.clone(),
            Err(e) => panic!("{e}"),
        }
    }

    /// The channel through the Utility peer's gateway, as `user`; panics if it cannot connect.
    pub async fn utility_channel(&self, user: User) -> fabric_gateway_client::Network {
        self.utility
            .gateway(user)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the Utility peer's gateway: {e}"))
            .network(self.channel.clone())
    }
}

/// How to deploy a test chaincode.
#[derive(Debug, Clone)]
pub enum Chaincode {
    /// A cargo package of this workspace, run as a chaincode service.
    Package(&'static str),
    /// A server start script (`network.sh deploy --binary`), with or without mutual TLS.
    Server {
        /// The script that starts the chaincode server.
        script: PathBuf,
        /// Whether the peer must present a client certificate.
        client_auth: bool,
    },
}

/// A value unique to this test process and moment, so reruns on one network never collide.
pub fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{label}-{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_deployed_on_a_network_without_chaincode() {
        let json = r#"{"repo":"/r","runDir":"/nonexistent/run","channel":"ami",
            "orderer":{"address":"127.0.0.1:7000","tlsCa":"/c/o.pem"},
            "utility":{"mspId":"UtilityMSP","peerAddress":"127.0.0.1:7030","peerTlsCa":"/c/u.pem",
              "msp":{"admin":"/a","client1":"/b","client2":"/c"}},
            "operator":{"mspId":"OperatorMSP","peerAddress":"127.0.0.1:7040","peerTlsCa":"/c/o.pem",
              "msp":{"admin":"/d","client1":"/e","client2":"/f"}}}"#;
        let env = NetworkEnv {
            network: Network::from_json(json).expect("complete"),
        };
        assert_eq!(env.channel, "ami");
        assert_eq!(env.operator.msp(User::Client2), Path::new("/f"));
        assert!(!env.is_deployed("nothing-here"));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = Network::load(Path::new("/nonexistent/network.json")).unwrap_err();
        assert!(
            EnvError::from(err)
                .to_string()
                .contains("/nonexistent/network.json"),
            "names the file"
        );
    }
}
