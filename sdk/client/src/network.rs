//! A network's connection details, read once: `network.json`, which `scripts/network.sh up`
//! writes next to `network.env` (the same values, for bash).

use std::path::{Path, PathBuf};

use fabric_gateway_client::{Gateway, GatewayBuilder, load_msp};
use serde::Deserialize;

use crate::fabric::ConnectError;

/// Which of an organisation's users to act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum User {
    /// The org admin (`Admin@…`).
    Admin,
    /// `User1@…`.
    Client1,
    /// `User2@…`.
    Client2,
}

/// The MSP folders of an organisation's users.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Users {
    /// The admin.
    pub admin: PathBuf,
    /// Client 1.
    pub client1: PathBuf,
    /// Client 2.
    pub client2: PathBuf,
}

/// One peer organisation: its peer and its users.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    /// MSP id, e.g. `UtilityMSP`.
    pub msp_id: String,
    /// The peer's gateway address, `host:port`.
    pub peer_address: String,
    /// The peer's TLS root CA (PEM file).
    pub peer_tls_ca: PathBuf,
    /// The users' MSP folders.
    pub msp: Users,
}

impl Org {
    /// The MSP folder of `user`.
    pub fn msp(&self, user: User) -> &Path {
        match user {
            User::Admin => &self.msp.admin,
            User::Client1 => &self.msp.client1,
            User::Client2 => &self.msp.client2,
        }
    }

    /// A gateway builder for this org's peer as `user`, to adjust before connecting.
    ///
    /// # Errors
    /// Loading the identity or the TLS CA.
    pub fn gateway_builder(
        &self,
        user: User,
    ) -> Result<GatewayBuilder, fabric_gateway_client::Error> {
        let credentials = load_msp(self.msp(user), &self.msp_id)?;
        Gateway::builder(self.peer_address.clone(), credentials.identity)
            .signer(credentials.signer)
            .tls_ca_file(&self.peer_tls_ca)
    }

    /// A gateway to this org's peer as `user`, with the default deadlines and retries.
    ///
    /// # Errors
    /// Loading the identity, the TLS CA, or connecting.
    pub async fn gateway(&self, user: User) -> Result<Gateway, fabric_gateway_client::Error> {
        self.gateway_builder(user)?.connect().await
    }
}

/// The ordering service, for clients that talk to it directly.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Orderer {
    /// The first orderer's address.
    pub address: String,
    /// The orderers' TLS root CA.
    pub tls_ca: PathBuf,
    /// The ordering organization's MSP ID (absent in files from before it was written).
    #[serde(default)]
    pub msp_id: Option<String>,
    /// The ordering organization's admin MSP folder (a channel member that is no application
    /// org: the access-control tests use it as an outsider).
    #[serde(default)]
    pub admin_msp: Option<PathBuf>,
}

/// What `network.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// The repository the network was started from.
    pub repo: PathBuf,
    /// The network's run folder.
    pub run_dir: PathBuf,
    /// The channel, e.g. `ami`.
    pub channel: String,
    /// The ordering service.
    pub orderer: Orderer,
    /// The Utility org: administrator (admin) and MDMS (client1).
    pub utility: Org,
    /// The Operator org: data concentrators (client1, client2).
    pub operator: Org,
}

impl Network {
    /// Its file name in a run folder.
    pub const FILE: &'static str = "network.json";

    /// Parses the text of `network.json`.
    ///
    /// # Errors
    /// [`ConnectError::Json`] naming what is wrong.
    pub fn from_json(text: &str) -> Result<Network, ConnectError> {
        serde_json::from_str(text).map_err(|e| ConnectError::Json(e.to_string()))
    }

    /// Reads `network.json` at `path`.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(path: &Path) -> Result<Network, ConnectError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConnectError::Read {
            path: path.to_owned(),
            source,
        })?;
        Network::from_json(&text).map_err(|e| match e {
            ConnectError::Json(detail) => {
                ConnectError::Json(format!("{}: {detail}", path.display()))
            }
            other => other,
        })
    }

    /// Identifies this network instance: SHA-256 of the Utility peer's TLS root CA, which
    /// `network.sh up` generates afresh for every new network.
    ///
    /// # Errors
    /// The CA file cannot be read.
    pub fn id(&self) -> Result<String, ConnectError> {
        let pem =
            std::fs::read(&self.utility.peer_tls_ca).map_err(|source| ConnectError::Read {
                path: self.utility.peer_tls_ca.clone(),
                source,
            })?;
        // HID is SHA-256 of its input: a convenient, dependency-free digest.
        Ok(bcami_sdk::Hid::from_meter_id(&pem).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `scripts/network.sh up` writes it (`write_network_json`).
    const SAMPLE: &str = r#"{
  "repo": "/work/main",
  "runDir": "/tmp/run dir",
  "channel": "ami",
  "orderer": {"address": "127.0.0.1:7000", "tlsCa": "/c/orderer ca.pem"},
  "utility": {
    "mspId": "UtilityMSP",
    "peerAddress": "127.0.0.1:7030",
    "peerTlsCa": "/c/u/tlsca.pem",
    "msp": {"admin": "/c/u/Admin@utility.bcami.local/msp", "client1": "/c/u/User1@utility.bcami.local/msp", "client2": "/c/u/User2@utility.bcami.local/msp"}
  },
  "operator": {
    "mspId": "OperatorMSP",
    "peerAddress": "127.0.0.1:7040",
    "peerTlsCa": "/c/o/tlsca.pem",
    "msp": {"admin": "/c/o/Admin@operator.bcami.local/msp", "client1": "/c/o/User1@operator.bcami.local/msp", "client2": "/c/o/User2@operator.bcami.local/msp"}
  }
}
"#;

    #[test]
    fn network_json_parses_into_typed_settings() {
        let n = Network::from_json(SAMPLE).unwrap();
        assert_eq!(n.run_dir, PathBuf::from("/tmp/run dir"));
        assert_eq!(n.channel, "ami");
        assert_eq!(n.orderer.tls_ca, PathBuf::from("/c/orderer ca.pem"));
        assert_eq!(n.utility.msp_id, "UtilityMSP");
        assert_eq!(n.operator.peer_address, "127.0.0.1:7040");
        assert_eq!(
            n.utility.msp(User::Client2),
            Path::new("/c/u/User2@utility.bcami.local/msp")
        );
        assert_eq!(
            n.operator.msp(User::Admin),
            Path::new("/c/o/Admin@operator.bcami.local/msp")
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = Network::from_json(&SAMPLE.replace("peerAddress", "peer"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("peerAddress"), "{err}");
        let err = Network::from_json(&SAMPLE.replace("\"channel\"", "\"chanel\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("channel"), "{err}");
        assert!(Network::load(Path::new("/nonexistent/network.json")).is_err());
    }
}
