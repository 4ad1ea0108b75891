//! The access-control matrix on the live network: every contract function × every user of the
//! two peer organisations, through each org's own peer. The expected roles are this file's own
//! table, an exhaustive `match` over `bcami_api::Function`: a new function does not compile here
//! until it has a row. The check runs in the endorsing peer's simulation, before the arguments
//! are parsed, so each cell is an evaluate with no arguments: nothing is ordered and the matrix
//! changes no state. A refused cell must be the contract's 403 `forbidden` naming every role
//! that may call the function; an allowed cell must get past the role check (an answer, or any
//! other refusal, such as 400 for the missing argument).
//!
//! Run by `scripts/test.sh e2e` (needs `$BCAMI_RUN_DIR/network.json` and `bcami` deployed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bcami_api::{ErrorCode, Function, Role};
use bcami_client::{Org, Rejection, User};
use bcami_e2e::NetworkEnv;
use fabric_gateway_client::Contract;

const CHAINCODE: &str = "bcami";

/// Who may call each function, as chaincode/contract/README.md documents it.
fn documented_roles(function: Function) -> &'static [Role] {
    use Role::{Administrator as A, Concentrator as C, Mdms as M};
    match function {
        Function::Configure => &[A],
        Function::GetConfig => &[A, C, M],
        Function::ProvisionMeters => &[A],
        Function::ProvisionMdms => &[A],
        Function::RegisterMeter => &[C],
        Function::RegisterMdmsKey => &[M],
        Function::RotateMeterKey => &[C],
        Function::RotateMdmsKey => &[A],
        Function::RevokeMeter => &[A],
        Function::SubmitReadings => &[C],
        Function::GetMeter => &[A, C, M],
        Function::GetMdmsKey => &[A, C, M],
        Function::GetReadings => &[A, M],
        Function::ListMeters => &[A, C, M],
        Function::GetCounts => &[A, C, M],
        // Anonymous readings (issue 15).
        Function::SetAnonIssuerKey => &[A],
        Function::RequestAnonCredential => &[C],
        Function::PostAnonCredential => &[A],
        Function::SubmitAnonReadings => &[C],
        Function::GetAnonIssuerKey => &[A, C, M],
        Function::GetAnonCredential => &[A, C],
        Function::GetAnonAggregate => &[A, M],
        Function::GetAnonDoubleReports => &[A],
        Function::RecordAnonTrace => &[A],
    }
}

/// One column of the matrix: a user of one org, and the role the default configuration gives
/// it (`None`: no role).
struct Identity {
    name: &'static str,
    role: Option<Role>,
    contract: Contract,
}

async fn identity(
    env: &NetworkEnv,
    org: &Org,
    user: User,
    name: &'static str,
    role: Option<Role>,
) -> Identity {
    let gateway = org
        .gateway(user)
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot connect: {e}"));
    Identity {
        name,
        role,
        contract: gateway.network(env.channel.clone()).contract(CHAINCODE),
    }
}

/// The contract's answer to `function` without arguments: `Ok` or its refusal.
async fn evaluate(identity: &Identity, function: Function) -> Result<Vec<u8>, Rejection> {
    match identity
        .contract
        .evaluate(function.name(), Vec::<String>::new())
        .await
    {
        Ok(bytes) => Ok(bytes),
        Err(e) => match e.chaincode_error() {
            Some(refusal) => Err(Rejection::new(refusal.status, refusal.message)),
            None => panic!("{} {function}: not a contract answer: {e}", identity.name),
        },
    }
}

#[test]
fn the_table_is_the_contract_s_rule() {
    // The contract enforces `Function::roles`; this file's table is what the README documents.
    for function in Function::ALL {
        let mut documented = documented_roles(function).to_vec();
        let mut enforced = function.roles().to_vec();
        documented.sort();
        enforced.sort();
        assert_eq!(documented, enforced, "{function}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_admits_exactly_its_roles() {
    let env = NetworkEnv::require();
    let (utility, operator) = (&env.utility, &env.operator);
    let identities = [
        identity(
            &env,
            utility,
            User::Admin,
            "Utility admin",
            Some(Role::Administrator),
        )
        .await,
        identity(
            &env,
            utility,
            User::Client1,
            "Utility client1",
            Some(Role::Mdms),
        )
        .await,
        identity(
            &env,
            utility,
            User::Client2,
            "Utility client2",
            Some(Role::Mdms),
        )
        .await,
        identity(&env, operator, User::Admin, "Operator admin", None).await,
        identity(
            &env,
            operator,
            User::Client1,
            "Operator client1",
            Some(Role::Concentrator),
        )
        .await,
        identity(
            &env,
            operator,
            User::Client2,
            "Operator client2",
            Some(Role::Concentrator),
        )
        .await,
    ];
    let mut cells = 0;
    for function in Function::ALL {
        let roles = documented_roles(function);
        for identity in &identities {
            let allowed = identity.role.is_some_and(|r| roles.contains(&r));
            let cell = format!("{function} as {}", identity.name);
            match evaluate(identity, function).await {
                Err(r) if r.code == Some(ErrorCode::Forbidden) => {
                    assert!(!allowed, "{cell}: refused: {r}");
                    assert_eq!(r.status, Some(403), "{cell}: {r}");
                    assert!(
                        r.message.contains(&format!("{function} requires the")),
                        "{cell}: {r}"
                    );
                    for role in roles {
                        assert!(
                            r.message.contains(&role.to_string()),
                            "{cell}: does not name {role}: {r}"
                        );
                    }
                }
                Err(r) => {
                    assert!(allowed, "{cell}: not refused as forbidden: {r}");
                    assert!(
                        r.code
                            .is_some_and(|c| c.status() == 400 || c.status() == 404),
                        "{cell}: past the role check, only the argument or the ledger may fail: {r}"
                    );
                }
                Ok(bytes) => {
                    assert!(allowed, "{cell}: answered");
                    assert!(
                        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                        "{cell}: not JSON"
                    );
                }
            }
            cells += 1;
        }
    }
    assert_eq!(cells, Function::ALL.len() * identities.len());
}
