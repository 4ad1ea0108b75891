//! The Gateway client against the live network (run by `scripts/test.sh`).
//!
//! Chaincode-agnostic checks use the shim's conformance chaincode (`put`, `get`, `event`,
//! `fail`), deployed here as `conformance` unless the network already has it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use bcami_e2e::{Chaincode, NetworkEnv, User};
use fabric_gateway_client::{
    ChaincodeEvent, ChaincodeEventStream, Checkpoint, Contract, Deadlines, Error, Gateway,
    RetryPolicy, Signer, Stage, StartAt, load_msp,
};

const CHAINCODE: &str = "conformance";
const PACKAGE: &str = "fabric-shim-conformance";

/// The network settings, with the conformance chaincode deployed (once per test binary).
fn network() -> NetworkEnv {
    NetworkEnv::with_chaincode(CHAINCODE, &Chaincode::Package(PACKAGE))
}

fn unique(label: &str) -> String {
    bcami_e2e::unique(&format!("gw-{label}"))
}

async fn contract(env: &NetworkEnv, user: User) -> Contract {
    env.utility_channel(user).await.contract(CHAINCODE)
}

#[tokio::test]
async fn submit_commits_valid_and_evaluate_reads_it_back() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let key = unique("key");

    let committed = contract.submit("put", [key.as_str(), "v1"]).await.unwrap();
    // The fixture's `put` answers with the transaction id it saw.
    assert_eq!(committed.result, committed.transaction_id.as_bytes());
    assert_eq!(committed.attempts, 1);
    assert!(committed.block_number > 0);

    assert_eq!(
        contract.evaluate("get", [key.as_str()]).await.unwrap(),
        b"v1"
    );

    // The other org's peer sees the same committed state.
    let operator = env
        .operator
        .gateway(User::Client1)
        .await
        .unwrap()
        .network(env.channel.clone())
        .contract(CHAINCODE);
    let value = operator
        .proposal("get")
        .arg(key.as_str())
        .evaluate()
        .await
        .unwrap();
    assert_eq!(value, b"v1");
}

#[tokio::test]
async fn submit_async_returns_a_commit_handle_whose_status_is_valid() {
    let env = network();
    let contract = contract(&env, User::Client2).await;
    let key = unique("async");
    let submitted = contract
        .proposal("put")
        .args([key.as_str(), "v2"])
        .submit_async()
        .await
        .unwrap();
    assert_eq!(submitted.result(), submitted.transaction_id().as_bytes());
    let status = submitted.commit().status().await.unwrap();
    assert!(status.is_valid(), "{status:?}");
    assert_eq!(status.transaction_id, submitted.transaction_id());
    assert!(status.block_number > 0);
    assert_eq!(
        contract.evaluate("get", [key.as_str()]).await.unwrap(),
        b"v2"
    );
}

#[tokio::test]
async fn contract_rejection_reaches_the_client_as_the_contracts_own_message() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let message = "meter 4f2a: reading timestamp 1700000000 is not after 1700000900";

    let err = contract.submit("fail", ["409", message]).await.unwrap_err();
    let Error::Endorse(stage) = &err else {
        panic!("expected an endorse error, got {err:?}");
    };
    assert_eq!(stage.endpoint(), env.utility.peer_address);
    assert!(err.transaction_id().is_some());
    let rejection = err.chaincode_error().expect("a chaincode rejection");
    assert_eq!(rejection.message, message);
    assert_eq!(rejection.status, Some(409));
    assert!(
        stage.details().iter().any(|d| d.message.contains(message)),
        "{stage}"
    );

    let err = contract
        .evaluate("fail", ["500", "internal contract failure"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Evaluate(_)), "{err:?}");
    let rejection = err.chaincode_error().expect("a chaincode rejection");
    assert_eq!(rejection.message, "internal contract failure");
}

#[tokio::test]
async fn offline_signing_submits_with_signatures_made_outside_the_client() {
    let env = network();
    let creds = load_msp(env.utility.msp(User::Client1), &env.utility.msp_id).unwrap();
    // The gateway holds no key: every signature is made by `key` from a digest.
    let key = creds.signer;
    let gateway = Gateway::builder(env.utility.peer_address.clone(), creds.identity)
        .tls_ca_file(&env.utility.peer_tls_ca)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let contract = gateway.network(env.channel.clone()).contract(CHAINCODE);
    let k = unique("offline");

    let mut proposal = contract
        .proposal("put")
        .args([k.as_str(), "v3"])
        .build()
        .unwrap();
    proposal.set_signature(key.sign(&proposal.digest()).unwrap());
    let mut transaction = proposal.endorse().await.unwrap();
    transaction.set_signature(key.sign(&transaction.digest()).unwrap());
    let mut commit = transaction.submit().await.unwrap();
    commit.set_signature(key.sign(&commit.digest()).unwrap());
    let status = commit.wait().await.unwrap();
    assert_eq!(status.transaction_id, proposal.transaction_id());

    let mut query = contract.proposal("get").arg(k.as_str()).build().unwrap();
    query.set_signature(key.sign(&query.digest()).unwrap());
    assert_eq!(query.evaluate().await.unwrap(), b"v3");
}

async fn next_event(stream: &mut ChaincodeEventStream) -> ChaincodeEvent {
    // A liveness guard, not a performance assertion: a missing event must fail, not hang.
    tokio::time::timeout(Duration::from_secs(120), stream.next())
        .await
        .expect("no event within 120 s")
        .expect("the stream ended")
        .expect("event stream error")
}

#[tokio::test]
async fn event_consumer_resumed_from_its_checkpoint_sees_every_event_exactly_once() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let network = contract_network(&env).await;
    let name = unique("event");

    // A first event fixes the start block; then several concurrent ones, which the orderers
    // tend to cut into shared blocks (so some restarts land mid-block).
    let first = contract
        .submit("event", [name.as_str(), "0"])
        .await
        .unwrap();
    let start_block = first.block_number;
    let mut pending = Vec::new();
    for i in 1..=6 {
        let contract = contract.clone();
        let name = name.clone();
        pending.push(tokio::spawn(async move {
            let submitted = contract
                .proposal("event")
                .args([name, i.to_string()])
                .submit_async()
                .await
                .unwrap();
            submitted.commit().wait().await.unwrap();
            submitted.transaction_id().to_owned()
        }));
    }
    let mut ours = vec![first.transaction_id.clone()];
    for p in pending {
        ours.push(p.await.unwrap());
    }

    // The reference order: one uninterrupted consumer from the start block.
    let all = collect_ours(
        &network,
        &name,
        StartAt::Block(start_block),
        None,
        ours.len(),
    )
    .await;
    let mut sorted_all: Vec<&str> = all.iter().map(|e| e.transaction_id.as_str()).collect();
    sorted_all.sort_unstable();
    let mut sorted_ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    sorted_ours.sort_unstable();
    assert_eq!(sorted_all, sorted_ours, "every committed event, once");
    let mut per_block: HashMap<u64, usize> = HashMap::new();
    for e in &all {
        *per_block.entry(e.block_number).or_default() += 1;
        assert_eq!(e.chaincode_name, CHAINCODE);
    }
    println!("events per block: {per_block:?}");

    // Stop after each position, persist the checkpoint, resume from the file.
    let dir = std::env::temp_dir().join(unique("checkpoints"));
    std::fs::create_dir_all(&dir).unwrap();
    for stop_after in 1..all.len() {
        let path = dir.join(format!("cp-{stop_after}.json"));
        let mut seen = Vec::new();
        {
            let mut checkpoint = Checkpoint::new();
            let mut stream = network
                .chaincode_events(CHAINCODE, StartAt::Block(start_block), None)
                .unwrap();
            while seen.len() < stop_after {
                let event = next_event(&mut stream).await;
                if event.event_name == name {
                    seen.push(event.transaction_id.clone());
                }
                checkpoint.record(&event);
                checkpoint.save(&path).unwrap();
            }
        } // Dropping the stream stops the first consumer mid-stream.
        let checkpoint = Checkpoint::load(&path).unwrap().expect("saved");
        let resumed = collect_ours(
            &network,
            &name,
            StartAt::Block(start_block),
            Some(&checkpoint),
            all.len() - stop_after,
        )
        .await;
        seen.extend(resumed.into_iter().map(|e| e.transaction_id));
        let expected: Vec<String> = all.iter().map(|e| e.transaction_id.clone()).collect();
        assert_eq!(seen, expected, "stopped after {stop_after}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression (issue 16): a stream opened at `NextCommit` right before a submit must deliver
/// that submit's event, as the official clients do: the request goes out when the stream is
/// opened, not when it is first read. A second, later event marks where to stop reading: with
/// the old lazy stream the first event is missing before the marker.
#[tokio::test]
async fn stream_opened_at_next_commit_sees_the_event_of_a_submit_made_right_after() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let network = contract_network(&env).await;
    let name = unique("next-commit");

    let mut stream = network
        .chaincode_events(CHAINCODE, StartAt::NextCommit, None)
        .unwrap();
    let first = contract
        .submit("event", [name.as_str(), "first"])
        .await
        .unwrap();
    let marker = contract
        .submit("event", [name.as_str(), "marker"])
        .await
        .unwrap();

    let mut seen = Vec::new();
    loop {
        let event = next_event(&mut stream).await;
        if event.event_name != name {
            continue;
        }
        seen.push(event.transaction_id.clone());
        if event.transaction_id == marker.transaction_id {
            break;
        }
    }
    assert_eq!(
        seen,
        [first.transaction_id.clone(), marker.transaction_id.clone()],
        "the first submit's event (block {}) is missing: the stream started late",
        first.block_number
    );
}

async fn contract_network(env: &NetworkEnv) -> fabric_gateway_client::Network {
    env.utility_channel(User::Client1).await
}

/// Reads events until `count` events named `name` arrived, in stream order. A duplicate would
/// take the place of a later event and so show up in the comparison with the reference order.
async fn collect_ours(
    network: &fabric_gateway_client::Network,
    name: &str,
    start: StartAt,
    checkpoint: Option<&Checkpoint>,
    count: usize,
) -> Vec<ChaincodeEvent> {
    let mut stream = network
        .chaincode_events(CHAINCODE, start, checkpoint)
        .unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let event = next_event(&mut stream).await;
        if event.event_name == name {
            out.push(event);
        }
    }
    out
}

async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    address
}

#[tokio::test]
async fn unreachable_peer_yields_an_error_naming_the_stage_and_the_endpoint() {
    let env = network();
    let creds = load_msp(env.utility.msp(User::Client1), &env.utility.msp_id).unwrap();
    let address = closed_port().await;
    let builder = Gateway::builder(address.clone(), creds.identity)
        .signer(creds.signer)
        .tls_ca_file(&env.utility.peer_tls_ca)
        .unwrap()
        .retry(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        })
        .deadlines(Deadlines {
            connect: Duration::from_secs(3),
            ..Deadlines::default()
        });

    let err = builder.clone().connect().await.unwrap_err();
    assert_eq!(err.stage(), Some(Stage::Connect));
    assert!(err.to_string().contains(&address), "{err}");

    let contract = builder
        .connect_lazy()
        .unwrap()
        .network(env.channel.clone())
        .contract(CHAINCODE);
    let err = contract.submit("put", ["k", "v"]).await.unwrap_err();
    let Error::Endorse(stage) = &err else {
        panic!("expected an endorse error, got {err:?}");
    };
    assert_eq!(stage.code(), fabric_gateway_client::Code::Unavailable);
    assert_eq!(stage.endpoint(), address);
    let text = err.to_string();
    assert!(
        text.starts_with("endorse failed for transaction "),
        "{text}"
    );
    assert!(text.contains(&address), "{text}");
}
