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

use std::path::{Path, PathBuf};
use std::process::Command;

use bcami_api::{ErrorCode, Function, Role};
use bcami_client::{Org, Rejection, User};
use bcami_e2e::NetworkEnv;
use fabric_gateway_client::{Code, Contract, Error, Gateway, load_msp};

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
        // The AMI head-end: it registers its key as a Utility client (the MDMS role).
        Function::ProvisionHeadEnd => &[A],
        Function::RegisterHeadEndKey => &[M],
        Function::GetHeadEnd => &[A, C, M],
        Function::RotateHeadEndKey => &[A],
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
        // Group keys (issue 13).
        Function::SetGroupAuthority => &[A],
        Function::RequestGroupCredential => &[C],
        Function::IssueGroupCredential => &[A],
        Function::PublishKeyPackages => &[C, M],
        Function::CreateGroup => &[C, M],
        Function::SubmitGroupCommit => &[C, M],
        Function::ProposeGroupRemoval => &[A],
        Function::GetGroupAuthority => &[A, C, M],
        Function::GetGroupCredential => &[A, C, M],
        Function::GetKeyPackage => &[A, C, M],
        Function::GetGroup => &[A, C, M],
        Function::GetGroupCommits => &[A, C, M],
        Function::GetGroupWelcome => &[A, C, M],
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

/// A throwaway CA nobody configured, and a NodeOU client certificate from it claiming to be an
/// Operator user, in an MSP folder (a forged data concentrator). Made with the `openssl` CLI.
fn rogue_msp(dir: &Path) -> PathBuf {
    let msp = dir.join("msp");
    for sub in ["cacerts", "signcerts", "keystore"] {
        std::fs::create_dir_all(msp.join(sub)).unwrap();
    }
    let ca = dir.join("ca");
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::write(
        ca.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let (ca_key, ca_cert) = (path(&ca.join("key.pem")), path(&msp.join("cacerts/ca.pem")));
    let (client_key, csr) = (path(&ca.join("client.key")), path(&ca.join("client.csr")));
    let steps: [Vec<String>; 6] = [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &ca_key,
        ],
        vec![
            "req",
            "-x509",
            "-new",
            "-key",
            &ca_key,
            "-sha256",
            "-days",
            "2",
            "-out",
            &ca_cert,
            "-subj",
            "/C=US/O=operator.bcami.local/CN=ca.operator.bcami.local",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &client_key,
        ],
        vec![
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &client_key,
            "-out",
            &path(&msp.join("keystore/priv_sk")),
        ],
        vec![
            "req",
            "-new",
            "-key",
            &client_key,
            "-out",
            &csr,
            "-subj",
            "/C=US/OU=client/CN=User1@operator.bcami.local",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            &path(&ca.join("ext.cnf")),
            "-out",
            &path(&msp.join("signcerts/cert.pem")),
        ],
    ]
    .map(|step| step.into_iter().map(str::to_owned).collect());
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("the rogue CA needs the openssl CLI: {e}"));
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut config = String::from("NodeOUs:\n  Enable: true\n");
    for (ou, name) in [
        ("Client", "client"),
        ("Peer", "peer"),
        ("Admin", "admin"),
        ("Orderer", "orderer"),
    ] {
        config.push_str(&format!(
            "  {ou}OUIdentifier:\n    Certificate: cacerts/ca.pem\n    OrganizationalUnitIdentifier: {name}\n"
        ));
    }
    std::fs::write(msp.join("config.yaml"), config).unwrap();
    msp
}

/// The identity in MSP folder `msp`, claiming `msp_id`, through `peer`'s gateway.
async fn outsider(
    env: &NetworkEnv,
    name: &'static str,
    msp: &Path,
    msp_id: &str,
    peer: &Org,
) -> Identity {
    let credentials = load_msp(msp, msp_id).unwrap_or_else(|e| panic!("{name}: {e}"));
    let gateway = Gateway::builder(peer.peer_address.clone(), credentials.identity)
        .signer(credentials.signer)
        .tls_ca_file(&peer.peer_tls_ca)
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot reach {}: {e}", peer.peer_address));
    Identity {
        name,
        role: None,
        contract: gateway.network(env.channel.clone()).contract(CHAINCODE),
    }
}

/// `GetCounts` as the Utility admin through `peer`, verbatim.
async fn counts(env: &NetworkEnv, peer: &Org) -> Vec<u8> {
    let admin = outsider(
        env,
        "Utility admin",
        env.utility.msp(User::Admin),
        &env.utility.msp_id,
        peer,
    )
    .await;
    admin
        .contract
        .evaluate(Function::GetCounts.name(), Vec::<String>::new())
        .await
        .unwrap_or_else(|e| panic!("GetCounts through {}: {e}", peer.peer_address))
}

/// Identities the channel does not admit as any application org's member never reach the
/// contract: the peer refuses their proposals before the chaincode runs. Neither that nor the
/// matrix changes the ledger: the counts are the same before and after, on both peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_outside_the_application_orgs_are_refused_by_the_peer() {
    let env = NetworkEnv::require();
    let orderer_msp = env
        .orderer
        .admin_msp
        .clone()
        .expect("network.json names the orderer admin's MSP (scripts/network.sh up writes it)");
    let orderer_msp_id = env
        .orderer
        .msp_id
        .clone()
        .expect("network.json names the orderer MSP ID");
    let dir = tempfile::tempdir().unwrap();
    let rogue = rogue_msp(dir.path());
    // Each with what the peer says: the orderer org is a channel member but no application
    // Writer; the rogue CA is no member at all.
    let outsiders = [
        (
            outsider(
                &env,
                "Orderer admin",
                &orderer_msp,
                &orderer_msp_id,
                &env.utility,
            )
            .await,
            "/Channel/Application/Writers",
        ),
        (
            outsider(
                &env,
                "rogue CA (claims an OperatorMSP client)",
                &rogue,
                &env.operator.msp_id,
                &env.operator,
            )
            .await,
            "creator org unknown",
        ),
    ];
    let before = [
        counts(&env, &env.utility).await,
        counts(&env, &env.operator).await,
    ];
    for (identity, reason) in &outsiders {
        for function in Function::ALL {
            let cell = format!("{function} as {}", identity.name);
            match identity
                .contract
                .evaluate(function.name(), Vec::<String>::new())
                .await
            {
                Ok(_) => panic!("{cell}: the contract answered"),
                Err(Error::Evaluate(refusal)) => {
                    // The endorser's own check, not the contract's answer.
                    assert_eq!(
                        refusal.code(),
                        Code::FailedPrecondition,
                        "{cell}: {refusal}"
                    );
                    assert!(
                        refusal.details().iter().any(|d| d.message.contains(reason)),
                        "{cell}: the peer's refusal does not say `{reason}`: {refusal}"
                    );
                    assert!(
                        refusal.chaincode_error().is_none(),
                        "{cell}: the contract ran"
                    );
                }
                Err(e) => panic!("{cell}: not an endorsement refusal: {e}"),
            }
        }
    }
    let after = [
        counts(&env, &env.utility).await,
        counts(&env, &env.operator).await,
    ];
    assert_eq!(before, after, "the counts changed");
    assert_eq!(after[0], after[1], "the peers disagree");
}
