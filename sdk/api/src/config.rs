//! Who holds which role, and how far a message timestamp may be from the transaction's.
//!
//! Stored under the simple key `config` (JSON). Until an administrator runs `Configure`, the
//! defaults for the BC-AMI test network apply.

use bcami_sdk::Timestamp;
use serde::{Deserialize, Serialize};

use crate::function::Role;

/// One way to hold a role: an MSP id and a NodeOU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleRule {
    /// The creator's MSP id, e.g. `UtilityMSP`.
    pub msp_id: String,
    /// The creator's NodeOU.
    pub node_ou: NodeOu,
}

/// A Fabric NodeOU, as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeOu {
    /// `admin`
    Admin,
    /// `client`
    Client,
    /// `peer`
    Peer,
    /// `orderer`
    Orderer,
}

impl NodeOu {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOu::Admin => "admin",
            NodeOu::Client => "client",
            NodeOu::Peer => "peer",
            NodeOu::Orderer => "orderer",
        }
    }
}

impl RoleRule {
    /// A rule.
    pub fn new(msp_id: &str, node_ou: NodeOu) -> Self {
        Self {
            msp_id: msp_id.to_owned(),
            node_ou,
        }
    }
}

/// How far a message timestamp may lie from the transaction timestamp, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Window {
    /// A message may be at most this much older than the transaction.
    pub past_ms: u64,
    /// A message may be at most this much newer than the transaction (meter clock skew).
    pub future_ms: u64,
}

impl Window {
    /// Largest accepted `pastMs`: 7 days.
    pub const MAX_PAST_MS: u64 = 7 * 24 * 3_600_000;
    /// Largest accepted `futureMs`: 1 hour.
    pub const MAX_FUTURE_MS: u64 = 3_600_000;

    /// Where `timestamp` lies relative to the window around `now` (the transaction time).
    pub fn place_at(&self, timestamp: Timestamp, now: Timestamp) -> Placement {
        let now = i128::from(now.unix_millis());
        let t = i128::from(timestamp.unix_millis());
        if t < now - i128::from(self.past_ms) {
            Placement::Stale
        } else if t > now + i128::from(self.future_ms) {
            Placement::Future
        } else {
            Placement::Inside
        }
    }

    /// Whether `timestamp` lies inside the window around `now` (the transaction time).
    pub fn admits(&self, timestamp: Timestamp, now: Timestamp) -> bool {
        self.place_at(timestamp, now) == Placement::Inside
    }

    /// Where `timestamp` (Unix ms) lies relative to the window around `tx_millis`.
    pub fn place(&self, timestamp: u64, tx_millis: i64) -> Placement {
        let tx_millis = i128::from(tx_millis);
        let t = i128::from(timestamp);
        if t < tx_millis - i128::from(self.past_ms) {
            Placement::Stale
        } else if t > tx_millis + i128::from(self.future_ms) {
            Placement::Future
        } else {
            Placement::Inside
        }
    }
}

impl Default for Window {
    fn default() -> Self {
        Self {
            past_ms: 300_000,
            future_ms: 60_000,
        }
    }
}

/// Where a timestamp lies relative to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Older than the window allows.
    Stale,
    /// Inside the window.
    Inside,
    /// Newer than the window allows.
    Future,
}

/// The contract configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Who is the administrator.
    pub administrator: Vec<RoleRule>,
    /// Who is a data concentrator.
    pub concentrator: Vec<RoleRule>,
    /// Who is the MDMS.
    pub mdms: Vec<RoleRule>,
    /// The timestamp window.
    pub window: Window,
}

impl Default for Config {
    /// The test network: Utility admin, Operator clients, Utility clients; 5 min past, 1 min
    /// future.
    fn default() -> Self {
        Self {
            administrator: vec![RoleRule::new("UtilityMSP", NodeOu::Admin)],
            concentrator: vec![RoleRule::new("OperatorMSP", NodeOu::Client)],
            mdms: vec![RoleRule::new("UtilityMSP", NodeOu::Client)],
            window: Window::default(),
        }
    }
}

impl Config {
    /// The rules of one role.
    pub fn rules(&self, role: Role) -> &[RoleRule] {
        match role {
            Role::Administrator => &self.administrator,
            Role::Concentrator => &self.concentrator,
            Role::Mdms => &self.mdms,
        }
    }

    /// `UtilityMSP admin or …`: how to hold `role`, for error messages.
    pub fn describe(&self, role: Role) -> String {
        let rules: Vec<String> = self
            .rules(role)
            .iter()
            .map(|r| format!("{} {}", r.msp_id, r.node_ou.as_str()))
            .collect();
        format!("{role} ({})", rules.join(" or "))
    }

    /// Apply an update: fields present replace the current ones.
    pub fn updated(&self, update: ConfigUpdate) -> Config {
        Config {
            administrator: update
                .administrator
                .unwrap_or_else(|| self.administrator.clone()),
            concentrator: update
                .concentrator
                .unwrap_or_else(|| self.concentrator.clone()),
            mdms: update.mdms.unwrap_or_else(|| self.mdms.clone()),
            window: update.window.unwrap_or(self.window),
        }
    }
}

/// The argument of `Configure`: every field optional, present ones replace the current value.
/// The contract checks it when parsing ([`crate::Call::parse`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigUpdate {
    /// New administrator rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrator: Option<Vec<RoleRule>>,
    /// New data concentrator rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concentrator: Option<Vec<RoleRule>>,
    /// New MDMS rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdms: Option<Vec<RoleRule>>,
    /// New window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_edges_are_inclusive_and_do_not_overflow() {
        let w = Window {
            past_ms: 10,
            future_ms: 5,
        };
        assert_eq!(w.place(90, 100), Placement::Inside);
        assert_eq!(w.place(89, 100), Placement::Stale);
        assert_eq!(w.place(105, 100), Placement::Inside);
        assert_eq!(w.place(106, 100), Placement::Future);
        assert_eq!(w.place(i64::MAX as u64, i64::MAX), Placement::Inside);
        assert_eq!(w.place(u64::MAX, i64::MAX), Placement::Future);
        assert_eq!(w.place(0, i64::MIN), Placement::Future);
        assert_eq!(w.place(u64::MAX, i64::MIN), Placement::Future);
        let at = Timestamp::from_unix_millis;
        assert_eq!(w.place_at(at(89), at(100)), Placement::Stale);
        assert!(w.admits(at(90), at(100)) && w.admits(at(105), at(100)));
        assert!(!w.admits(at(106), at(100)));
        assert_eq!(w.place_at(at(u64::MAX), at(u64::MAX)), Placement::Inside);
    }

    #[test]
    fn roles_are_described_with_their_rules() {
        assert_eq!(
            Config::default().describe(Role::Concentrator),
            "data concentrator (OperatorMSP client)"
        );
    }
}
