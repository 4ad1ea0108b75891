//! Fabric through the Gateway client: the administrator and the MDMS talk to the Utility peer,
//! the concentrators to the Operator peer, each with its own MSP identity from the network's
//! crypto material (`network.env`). An integrator or the MDMS connects with [`Fabric::connect`]
//! and calls the contract through [`crate::Client`].

use std::path::{Path, PathBuf};

use bcami_api::Function;
use fabric_gateway_client::Contract;

use crate::ledger::{Caller, Ledger, LedgerError, Outcome, Rejection};
use crate::network::{Network, Org, User};

/// Why the network's settings could not be read or its peers not reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// `network.json` does not parse.
    #[error("network settings: {0}")]
    Json(String),
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

/// A network and what to call on it.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The network's connection details.
    pub network: Network,
    /// Chaincode name.
    pub chaincode: String,
    /// Where the network's one MDMS keeps its key (default: `mdms/` beside `network.json`).
    pub mdms_state: PathBuf,
}

impl Settings {
    /// Reads `network.json` at `path`; the MDMS state defaults to `mdms/` beside it.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(path: &Path, chaincode: &str) -> Result<Settings> {
        let network = Network::load(path)?;
        let run_dir = path.parent().unwrap_or_else(|| Path::new("."));
        Ok(Settings {
            network,
            chaincode: chaincode.to_owned(),
            mdms_state: run_dir.join("mdms"),
        })
    }
}

/// The contract on Fabric, one gateway connection per identity.
pub struct Fabric {
    administrator: Contract,
    concentrators: Vec<Contract>,
    mdms: Contract,
    /// One channel handle per organization's peer: a submit returns once every one of them has
    /// committed the transaction, so a read through any identity sees the write.
    peers: Vec<fabric_gateway_client::Network>,
    endpoints: String,
}

async fn contract(settings: &Settings, org: &Org, user: User) -> Result<Contract> {
    let gateway = org
        .gateway_builder(user)
        .map_err(gateway_error(format!(
            "cannot load the {} identity in {} or its peer's TLS CA {}",
            org.msp_id,
            org.msp(user).display(),
            org.peer_tls_ca.display()
        )))?
        .connect()
        .await
        .map_err(gateway_error(format!(
            "cannot reach the {} peer",
            org.msp_id
        )))?;
    Ok(gateway
        .network(settings.network.channel.clone())
        .contract(settings.chaincode.clone()))
}

impl Fabric {
    /// Connects every identity: the administrator (Utility admin), the MDMS (Utility client1)
    /// and the concentrators (Operator client1 and client2).
    pub async fn connect(settings: &Settings) -> Result<Fabric> {
        let (utility, operator) = (&settings.network.utility, &settings.network.operator);
        let administrator = contract(settings, utility, User::Admin).await?;
        let mdms = contract(settings, utility, User::Client1).await?;
        let mut concentrators = Vec::new();
        for user in [User::Client1, User::Client2] {
            concentrators.push(contract(settings, operator, user).await?);
        }
        let peers = vec![
            administrator.network().clone(),
            concentrators[0].network().clone(),
        ];
        Ok(Fabric {
            administrator,
            concentrators,
            mdms,
            peers,
            endpoints: format!(
                "{} ({}), {} ({})",
                utility.peer_address, utility.msp_id, operator.peer_address, operator.msp_id
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
    result.map(|value| Ok(ok(value))).or_else(refusal)
}

fn refusal(error: fabric_gateway_client::Error) -> Result<Outcome, LedgerError> {
    match error.chaincode_error() {
        Some(refusal) => Ok(Err(Rejection::new(refusal.status, refusal.message))),
        None => Err(Box::new(error)),
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
        let committed = match proposal.submit().await {
            Ok(committed) => committed,
            Err(error) => return refusal(error),
        };
        // The submitting peer has committed; the other organization's peer may still be a block
        // behind, and a concentrator registering a meter the administrator has just provisioned
        // endorses there. Wait for it (a peer that already has the block answers at once).
        for peer in &self.peers {
            peer.commit(&committed.transaction_id)?.wait().await?;
        }
        Ok(Ok(committed.result))
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
