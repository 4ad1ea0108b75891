//! End-to-end tests of BC-AMI against a live Fabric network.
//!
//! This library is the tests' shared helper: it reads the network's connection details
//! (`network.env`, written by `scripts/network.sh up`) once into typed [`NetworkEnv`] settings
//! and connects Gateway clients as any of the network's users. The tests run through
//! `scripts/test.sh`, which brings the network up and exports those variables; run alone, without
//! a network, they fail with a message saying so — they never pass silently.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fabric_gateway_client::{Gateway, load_msp};

/// Why the network settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Neither the variables nor a `network.env` file are available.
    #[error(
        "no BC-AMI network settings: {0}. The end-to-end tests need a running network; run them with scripts/test.sh (or source $BCAMI_RUN_DIR/network.env after scripts/network.sh up)"
    )]
    Missing(String),
    /// The `network.env` file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Which of an organization's users to act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// The org admin (`Admin@…`).
    Admin,
    /// `User1@…`.
    Client1,
    /// `User2@…`.
    Client2,
}

/// One peer organization's connection details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// MSP id, e.g. `UtilityMSP`.
    pub msp_id: String,
    /// The peer's gateway address, `127.0.0.1:port`.
    pub peer_address: String,
    /// The peer's TLS root CA (PEM file).
    pub peer_tls_ca: PathBuf,
    /// MSP folder of the admin.
    pub msp_admin: PathBuf,
    /// MSP folder of client 1.
    pub msp_client1: PathBuf,
    /// MSP folder of client 2.
    pub msp_client2: PathBuf,
}

impl Org {
    /// The MSP folder of `user`.
    pub fn msp(&self, user: User) -> &Path {
        match user {
            User::Admin => &self.msp_admin,
            User::Client1 => &self.msp_client1,
            User::Client2 => &self.msp_client2,
        }
    }

    /// A gateway to this org's peer, as `user`, with the default deadlines and retries.
    ///
    /// # Errors
    /// Loading the identity or connecting.
    pub async fn gateway(&self, user: User) -> Result<Gateway, fabric_gateway_client::Error> {
        self.gateway_builder(user)?.connect().await
    }

    /// A gateway builder for this org's peer, as `user`, to adjust before connecting.
    ///
    /// # Errors
    /// Loading the identity or the TLS CA.
    pub fn gateway_builder(
        &self,
        user: User,
    ) -> Result<fabric_gateway_client::GatewayBuilder, fabric_gateway_client::Error> {
        let creds = load_msp(self.msp(user), &self.msp_id)?;
        Gateway::builder(self.peer_address.clone(), creds.identity)
            .signer(creds.signer)
            .tls_ca_file(&self.peer_tls_ca)
    }
}

/// The network's connection details, as `scripts/network.sh up` writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkEnv {
    /// The repository root.
    pub repo: PathBuf,
    /// The network's run folder.
    pub run_dir: PathBuf,
    /// The channel, `ami`.
    pub channel: String,
    /// The Utility org.
    pub utility: Org,
    /// The Operator org.
    pub operator: Org,
    /// The first orderer's address.
    pub orderer_address: String,
    /// The orderers' TLS root CA.
    pub orderer_tls_ca: PathBuf,
}

impl NetworkEnv {
    /// Loads the settings from the process environment (as `scripts/test.sh` exports them) or,
    /// failing that, from `$BCAMI_NETWORK_ENV` or `$BCAMI_RUN_DIR/network.env`.
    ///
    /// # Errors
    /// [`EnvError::Missing`] naming what is missing and how to run the tests.
    pub fn load() -> Result<Self, EnvError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        if vars.contains_key("BCAMI_CHANNEL") {
            return Self::from_vars(&vars);
        }
        let file = vars
            .get("BCAMI_NETWORK_ENV")
            .map(PathBuf::from)
            .or_else(|| {
                vars.get("BCAMI_RUN_DIR")
                    .map(|d| Path::new(d).join("network.env"))
            })
            .ok_or_else(|| {
                EnvError::Missing(
                    "BCAMI_CHANNEL, BCAMI_NETWORK_ENV and BCAMI_RUN_DIR are all unset".into(),
                )
            })?;
        let text = std::fs::read_to_string(&file).map_err(|source| EnvError::Read {
            path: file.clone(),
            source,
        })?;
        Self::from_vars(&parse_env_file(&text))
    }

    /// Like [`Self::load`], but panics with the reason: for use at the top of a test.
    pub fn require() -> Self {
        match Self::load() {
            Ok(env) => env,
            Err(e) => panic!("{e}"),
        }
    }

    /// Builds the settings from `KEY → value` pairs.
    ///
    /// # Errors
    /// [`EnvError::Missing`] naming the first missing variable.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, EnvError> {
        let get = |key: &str| {
            vars.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| EnvError::Missing(format!("{key} is not set")))
        };
        let org = |prefix: &str| -> Result<Org, EnvError> {
            Ok(Org {
                msp_id: get(&format!("BCAMI_{prefix}_MSPID"))?,
                peer_address: get(&format!("BCAMI_{prefix}_PEER_ADDRESS"))?,
                peer_tls_ca: get(&format!("BCAMI_{prefix}_PEER_TLS_CA"))?.into(),
                msp_admin: get(&format!("BCAMI_{prefix}_MSP_ADMIN"))?.into(),
                msp_client1: get(&format!("BCAMI_{prefix}_MSP_CLIENT1"))?.into(),
                msp_client2: get(&format!("BCAMI_{prefix}_MSP_CLIENT2"))?.into(),
            })
        };
        let run_dir: PathBuf = get("BCAMI_RUN_DIR")?.into();
        let repo = match vars.get("BCAMI_REPO") {
            Some(repo) if !repo.is_empty() => PathBuf::from(repo),
            _ => default_repo(),
        };
        Ok(Self {
            repo,
            run_dir,
            channel: get("BCAMI_CHANNEL")?,
            utility: org("UTILITY")?,
            operator: org("OPERATOR")?,
            orderer_address: get("BCAMI_ORDERER_ADDRESS")?,
            orderer_tls_ca: get("BCAMI_ORDERER_TLS_CA")?.into(),
        })
    }

    /// Whether chaincode `name` has been deployed on this network.
    pub fn is_deployed(&self, name: &str) -> bool {
        self.run_dir
            .join("chaincode")
            .join(name)
            .join("chaincode.env")
            .is_file()
    }

    /// Deploys chaincode `name` from cargo package `package` with `scripts/network.sh deploy`,
    /// unless it is already deployed. The chaincode is built in its own target folder
    /// (`$CARGO_TARGET_DIR/e2e-chaincode`), so that the running `cargo test` does not hold the
    /// build lock it needs.
    ///
    /// # Errors
    /// A message with the script's exit status and where its log is.
    pub fn ensure_deployed(&self, name: &str, package: &str) -> Result<(), String> {
        if self.is_deployed(name) {
            return Ok(());
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| self.repo.join("target"), PathBuf::from)
            .join("e2e-chaincode");
        let script = self.repo.join("scripts/network.sh");
        let status = Command::new(&script)
            .args(["deploy", "--name", name, "--package", package])
            .env("BCAMI_RUN_DIR", &self.run_dir)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} deploy --name {name} --package {package} failed ({status}); see {}",
                script.display(),
                self.run_dir
                    .join(format!("logs/deploy-{name}.log"))
                    .display()
            ))
        }
    }
}

fn default_repo() -> PathBuf {
    // tests/ is one level below the repository root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Parses `export KEY=value` lines as `scripts/network.sh` writes them (values shell-quoted with
/// backslashes or single/double quotes; `#` comments).
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        vars.insert(key.trim().to_owned(), unquote(raw));
    }
    vars
}

/// Undoes POSIX shell quoting of one word: `\x`, `'…'` and `"…"` (with `\"`, `\\`, `\$`).
fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => out.push(n),
                            Some(n) => {
                                out.push('\\');
                                out.push(n);
                            }
                            None => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# BC-AMI network connection details; source this file.
export BCAMI_REPO=/work/main
export BCAMI_RUN_DIR=/tmp/run\ dir
export BCAMI_CHANNEL=ami
export BCAMI_ORDERER_ADDRESS=127.0.0.1:7000
export BCAMI_ORDERER_ADDRESSES=127.0.0.1:7000\ 127.0.0.1:7001
export BCAMI_ORDERER_TLS_CA='/c/orderer ca.pem'
export BCAMI_UTILITY_MSPID=UtilityMSP
export BCAMI_UTILITY_PEER_ADDRESS=127.0.0.1:7030
export BCAMI_UTILITY_PEER_TLS_CA=/c/u/tlsca.pem
export BCAMI_UTILITY_MSP_ADMIN=/c/u/Admin@utility.bcami.local/msp
export BCAMI_UTILITY_MSP_CLIENT1=/c/u/User1@utility.bcami.local/msp
export BCAMI_UTILITY_MSP_CLIENT2=/c/u/User2@utility.bcami.local/msp
export BCAMI_OPERATOR_MSPID=OperatorMSP
export BCAMI_OPERATOR_PEER_ADDRESS=127.0.0.1:7040
export BCAMI_OPERATOR_PEER_TLS_CA="/c/o/tls\"ca.pem"
export BCAMI_OPERATOR_MSP_ADMIN=/c/o/Admin@operator.bcami.local/msp
export BCAMI_OPERATOR_MSP_CLIENT1=/c/o/User1@operator.bcami.local/msp
export BCAMI_OPERATOR_MSP_CLIENT2=/c/o/User2@operator.bcami.local/msp
"#;

    #[test]
    fn network_env_file_parses_into_typed_settings() {
        let vars = parse_env_file(SAMPLE);
        assert_eq!(
            vars["BCAMI_ORDERER_ADDRESSES"],
            "127.0.0.1:7000 127.0.0.1:7001"
        );
        let env = NetworkEnv::from_vars(&vars).expect("complete");
        assert_eq!(env.run_dir, PathBuf::from("/tmp/run dir"));
        assert_eq!(env.channel, "ami");
        assert_eq!(env.orderer_tls_ca, PathBuf::from("/c/orderer ca.pem"));
        assert_eq!(env.utility.msp_id, "UtilityMSP");
        assert_eq!(env.operator.peer_address, "127.0.0.1:7040");
        assert_eq!(env.operator.peer_tls_ca, PathBuf::from("/c/o/tls\"ca.pem"));
        assert_eq!(
            env.utility.msp(User::Client2),
            Path::new("/c/u/User2@utility.bcami.local/msp")
        );
        assert!(!env.is_deployed("nothing-here"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let mut vars = parse_env_file(SAMPLE);
        vars.remove("BCAMI_OPERATOR_PEER_ADDRESS");
        let err = NetworkEnv::from_vars(&vars).expect_err("incomplete");
        let text = err.to_string();
        assert!(text.contains("BCAMI_OPERATOR_PEER_ADDRESS"), "{text}");
        assert!(text.contains("scripts/test.sh"), "{text}");
    }
}
