//! Fabric through the Gateway client: the administrator and the MDMS talk to the Utility peer,
//! the concentrators to the Operator peer, each with its own MSP identity from the network's
//! crypto material (`network.env`). An integrator or the MDMS connects with [`Fabric::connect`]
//! and calls the contract through [`crate::Client`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bcami_api::Function;
use fabric_gateway_client::{Contract, Gateway, load_msp};

use crate::ledger::{Caller, Ledger, LedgerError, Outcome, Rejection};

/// Why the network's settings could not be read or its peers not reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A setting is missing or empty.
    #[error("{0} is missing")]
    Missing(String),
    /// An organisation lacks an identity the client needs.
    #[error("{msp_id} has no {name} identity (BCAMI_*_MSP_*)")]
    NoIdentity {
        /// The organisation.
        msp_id: String,
        /// The identity.
        name: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An identity could not be loaded or a peer not reached.
    #[error("{what}: {source}")]
    Gateway {
        /// What was being done.
        what: String,
        /// The gateway client's error (it names the stage and endpoint).
        source: LedgerError,
    },
}

/// Wraps a gateway client error with what was being done.
fn gateway_error<E: std::error::Error + Send + Sync + 'static>(
    what: String,
) -> impl FnOnce(E) -> ConnectError {
    move |source| ConnectError::Gateway {
        what,
        source: Box::new(source),
    }
}

type Result<T, E = ConnectError> = std::result::Result<T, E>;

/// One organisation's peer and identities.
#[derive(Clone, Debug)]
pub struct Org {
    /// MSP id.
    pub msp_id: String,
    /// Peer gateway address, `host:port`.
    pub peer: String,
    /// The peer's TLS root CA (PEM file).
    pub tls_ca: PathBuf,
    /// MSP folders of the identities used, by name.
    pub msp: BTreeMap<&'static str, PathBuf>,
}

/// What `network.env` says, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Channel name.
    pub channel: String,
    /// Chaincode name.
    pub chaincode: String,
    /// The Utility org: administrator (admin) and MDMS (client1).
    pub utility: Org,
    /// The Operator org: concentrators (client1, client2).
    pub operator: Org,
    /// Where the network's one MDMS keeps its key (default: `mdms/` beside `network.env`).
    pub mdms_state: PathBuf,
}

/// `export KEY="value"` lines → map. Other lines are ignored.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            if key.starts_with('#') || key.is_empty() {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((key.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

impl Settings {
    /// Reads the settings from the text of `network.env`; the MDMS state defaults to
    /// `<run dir>/mdms`, where `run_dir` holds `network.env`.
    pub fn from_env_file(text: &str, chaincode: &str, run_dir: &Path) -> Result<Settings> {
        let env = parse_env(text);
        let get = |key: &str| {
            env.get(key)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| ConnectError::Missing(key.to_owned()))
        };
        let org = |prefix: &str, identities: &[(&'static str, &str)]| -> Result<Org> {
            let mut msp = BTreeMap::new();
            for (name, suffix) in identities {
                if let Ok(path) = get(&format!("BCAMI_{prefix}_MSP_{suffix}")) {
                    msp.insert(*name, PathBuf::from(path));
                }
            }
            Ok(Org {
                msp_id: get(&format!("BCAMI_{prefix}_MSPID"))?,
                peer: get(&format!("BCAMI_{prefix}_PEER_ADDRESS"))?,
                tls_ca: PathBuf::from(get(&format!("BCAMI_{prefix}_PEER_TLS_CA"))?),
                msp,
            })
        };
        let settings = Settings {
            channel: get("BCAMI_CHANNEL")?,
            chaincode: chaincode.to_owned(),
            utility: org("UTILITY", &[("admin", "ADMIN"), ("client1", "CLIENT1")])?,
            operator: org(
                "OPERATOR",
                &[("client1", "CLIENT1"), ("client2", "CLIENT2")],
            )?,
            mdms_state: run_dir.join("mdms"),
        };
        for (org, needed) in [
            (&settings.utility, &["admin", "client1"][..]),
            (&settings.operator, &["client1"][..]),
        ] {
            for name in needed {
                if !org.msp.contains_key(name) {
                    return Err(ConnectError::NoIdentity {
                        msp_id: org.msp_id.clone(),
                        name: (*name).to_owned(),
                    });
                }
            }
        }
        Ok(settings)
    }
}

impl Settings {
    /// Identifies this network instance: SHA-256 of the Utility peer's TLS root CA, which
    /// `network.sh up` generates afresh for every new network.
    pub fn network_id(&self) -> Result<String> {
        let pem = std::fs::read(&self.utility.tls_ca).map_err(|source| ConnectError::Read {
            path: self.utility.tls_ca.clone(),
            source,
        })?;
        // HID is SHA-256 of its input: a convenient, dependency-free digest.
        Ok(bcami_sdk::Hid::from_meter_id(&pem).to_string())
    }
}

/// The contract on Fabric, one gateway connection per identity.
pub struct Fabric {
    administrator: Contract,
    concentrators: Vec<Contract>,
    mdms: Contract,
    endpoints: String,
}

async fn contract(settings: &Settings, org: &Org, msp: &Path) -> Result<Contract> {
    let credentials = load_msp(msp, &org.msp_id).map_err(gateway_error(format!(
        "cannot load the {} identity in {}",
        org.msp_id,
        msp.display()
    )))?;
    let gateway = Gateway::builder(org.peer.clone(), credentials.identity)
        .signer(credentials.signer)
        .tls_ca_file(&org.tls_ca)
        .map_err(gateway_error(format!(
            "cannot read the {} TLS CA {}",
            org.msp_id,
            org.tls_ca.display()
        )))?
        .connect()
        .await
        .map_err(gateway_error(format!(
            "cannot reach the {} peer",
            org.msp_id
        )))?;
    Ok(gateway
        .network(settings.channel.clone())
        .contract(settings.chaincode.clone()))
}

impl Fabric {
    /// Connects every identity.
    pub async fn connect(settings: &Settings) -> Result<Fabric> {
        let path = |org: &Org, name: &str| -> Result<PathBuf> {
            org.msp
                .get(name)
                .cloned()
                .ok_or_else(|| ConnectError::NoIdentity {
                    msp_id: org.msp_id.clone(),
                    name: name.to_owned(),
                })
        };
        let administrator = contract(
            settings,
            &settings.utility,
            &path(&settings.utility, "admin")?,
        )
        .await?;
        let mdms = contract(
            settings,
            &settings.utility,
            &path(&settings.utility, "client1")?,
        )
        .await?;
        let mut concentrators = Vec::new();
        for msp in settings.operator.msp.values() {
            concentrators.push(contract(settings, &settings.operator, msp).await?);
        }
        Ok(Fabric {
            administrator,
            concentrators,
            mdms,
            endpoints: format!(
                "{} ({}), {} ({})",
                settings.utility.peer,
                settings.utility.msp_id,
                settings.operator.peer,
                settings.operator.msp_id
            ),
        })
    }

    /// The peers, for messages.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn contract(&self, caller: Caller) -> &Contract {
        match caller {
            Caller::Administrator => &self.administrator,
            Caller::Concentrator(n) => &self.concentrators[n % self.concentrators.len()],
            Caller::Mdms => &self.mdms,
        }
    }
}

/// A contract refusal, or the gateway error (which names the stage and endpoint).
fn outcome<T>(
    result: Result<T, fabric_gateway_client::Error>,
    ok: impl FnOnce(T) -> Vec<u8>,
) -> Result<Outcome, LedgerError> {
    match result {
        Ok(value) => Ok(Ok(ok(value))),
        Err(error) => match error.chaincode_error() {
            Some(refusal) => Ok(Err(Rejection::new(refusal.status, refusal.message))),
            None => Err(Box::new(error)),
        },
    }
}

impl Ledger for Fabric {
    fn mode(&self) -> &'static str {
        "fabric"
    }

    fn concentrator_identities(&self) -> usize {
        self.concentrators.len()
    }

    async fn submit(
        &self,
        caller: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        // Every BC-AMI transaction is idempotent under re-endorsement: a reading is keyed by
        // HID + timestamp, and a read conflict means the first attempt did not commit.
        let proposal = self
            .contract(caller)
            .proposal(function.name())
            .args(args)
            .idempotent(true);
        // Mismatched endorsements and unreachable nodes are retried inside the client.
        outcome(proposal.submit().await, |committed| committed.result)
    }

    async fn evaluate(
        &self,
        caller: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        let result = self.contract(caller).evaluate(function.name(), args).await;
        outcome(result, |bytes| bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = r#"# BC-AMI network connection details
export BCAMI_CHANNEL="ami"
export BCAMI_UTILITY_MSPID="UtilityMSP"
export BCAMI_UTILITY_PEER_ADDRESS="127.0.0.1:7030"
export BCAMI_UTILITY_PEER_TLS_CA="/run/u-ca.pem"
export BCAMI_UTILITY_MSP_ADMIN="/run/u/admin/msp"
export BCAMI_UTILITY_MSP_CLIENT1="/run/u/user1/msp"
export BCAMI_OPERATOR_MSPID="OperatorMSP"
export BCAMI_OPERATOR_PEER_ADDRESS="127.0.0.1:7040"
export BCAMI_OPERATOR_PEER_TLS_CA="/run/o-ca.pem"
export BCAMI_OPERATOR_MSP_CLIENT1="/run/o/user1/msp"
export BCAMI_OPERATOR_MSP_CLIENT2='/run/o/user2/msp'
"#;

    #[test]
    fn reads_network_env() {
        let s = Settings::from_env_file(ENV, "bcami", Path::new("/run")).unwrap();
        assert_eq!(s.mdms_state, PathBuf::from("/run/mdms"));
        assert_eq!(s.channel, "ami");
        assert_eq!(s.utility.peer, "127.0.0.1:7030");
        assert_eq!(s.utility.msp["admin"], PathBuf::from("/run/u/admin/msp"));
        assert_eq!(s.operator.msp.len(), 2);
        assert_eq!(s.operator.msp["client2"], PathBuf::from("/run/o/user2/msp"));
    }

    #[test]
    fn names_what_is_missing() {
        let err =
            Settings::from_env_file(&ENV.replace("BCAMI_CHANNEL", "X"), "bcami", Path::new("/"))
                .unwrap_err();
        assert!(err.to_string().contains("BCAMI_CHANNEL"), "{err}");
        let err = Settings::from_env_file(
            &ENV.replace("BCAMI_UTILITY_MSP_ADMIN", "X"),
            "bcami",
            Path::new("/"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("admin"), "{err}");
    }
}
