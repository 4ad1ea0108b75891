//! Who holds which role: the configuration (`bcami_api::Config`, stored under the simple key
//! `config`) matched against the transaction's creator. Until an administrator runs
//! `Configure`, the defaults for the BC-AMI test network apply.

use bcami_api::{Config, NodeOu, Role, RoleRule};
use fabric_shim::{Creator, NodeRole};

fn ou_matches(ou: NodeOu, role: Option<NodeRole>) -> bool {
    matches!(
        (ou, role),
        (NodeOu::Admin, Some(NodeRole::Admin))
            | (NodeOu::Client, Some(NodeRole::Client))
            | (NodeOu::Peer, Some(NodeRole::Peer))
            | (NodeOu::Orderer, Some(NodeRole::Orderer))
    )
}

fn rule_matches(rule: &RoleRule, creator: &Creator) -> bool {
    creator.msp_id() == rule.msp_id && ou_matches(rule.node_ou, creator.role())
}

/// Whether `creator` holds `role` under `config`.
pub fn holds(config: &Config, creator: &Creator, role: Role) -> bool {
    config.rules(role).iter().any(|r| rule_matches(r, creator))
}

/// Describe a creator for error messages: `OperatorMSP client`.
pub fn describe_creator(creator: &Creator) -> String {
    let role = match creator.role() {
        Some(NodeRole::Admin) => "admin",
        Some(NodeRole::Client) => "client",
        Some(NodeRole::Peer) => "peer",
        Some(NodeRole::Orderer) => "orderer",
        None => "without NodeOU",
    };
    format!("{} {role}", creator.msp_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_shim::X509Identity;

    #[test]
    fn roles_need_both_msp_and_ou() {
        let c = Config::default();
        let id = |msp: &str, ous: &[&str]| {
            Creator::new(msp, X509Identity::from_parts("CN=x", "CN=ca", ous, &[]))
        };
        assert!(holds(
            &c,
            &id("UtilityMSP", &["admin"]),
            Role::Administrator
        ));
        assert!(!holds(
            &c,
            &id("UtilityMSP", &["client"]),
            Role::Administrator
        ));
        assert!(!holds(
            &c,
            &id("OperatorMSP", &["admin"]),
            Role::Administrator
        ));
        assert!(!holds(&c, &id("UtilityMSP", &[]), Role::Mdms));
        assert!(holds(
            &c,
            &id("OperatorMSP", &["client"]),
            Role::Concentrator
        ));
        assert_eq!(
            describe_creator(&id("UtilityMSP", &[])),
            "UtilityMSP without NodeOU"
        );
    }
}
