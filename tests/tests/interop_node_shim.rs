//! Interoperability: our Gateway client against a chaincode on Fabric's official Node shim
//! (`fabric-contract-api` / `fabric-shim` 2.5.8, `tests/interop/chaincode`), deployed as a
//! chaincode service with `scripts/network.sh deploy --binary … --client-auth` (mutual TLS
//! between the peers and the chaincode server: every call below goes through it).
//!
//! Needs `npm ci` in `tests/interop` (scripts/test.sh does it); the chaincode is deployed here
//! on first use as `interopnode`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use bcami_e2e::{Chaincode, NetworkEnv, User};
use fabric_gateway_client::{Contract, Error, StartAt};

const CHAINCODE: &str = "interopnode";

/// The network with the Node chaincode deployed (once per test binary); it needs
/// `tests/interop/node_modules`.
fn network() -> NetworkEnv {
    let env = NetworkEnv::require();
    let interop = env.repo.join("tests/interop");
    assert!(
        interop.join("node_modules/fabric-shim").is_dir(),
        "{} has no node_modules: run `npm ci` there (scripts/test.sh e2e does)",
        interop.display()
    );
    NetworkEnv::with_chaincode(
        CHAINCODE,
        &Chaincode::Server {
            script: interop.join("chaincode/server.sh"),
            client_auth: true,
        },
    )
}

fn unique(label: &str) -> String {
    bcami_e2e::unique(&format!("node-{label}"))
}

async fn contract(env: &NetworkEnv, user: User) -> Contract {
    env.utility_channel(user).await.contract(CHAINCODE)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test]
async fn put_get_and_history_through_the_node_shim() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let key = unique("key");

    let first = contract.submit("put", [key.as_str(), "v1"]).await.unwrap();
    // The Node contract answers with the transaction id the shim saw.
    assert_eq!(first.result, first.transaction_id.as_bytes());
    let second = contract.submit("put", [key.as_str(), "v2"]).await.unwrap();
    assert_eq!(
        contract.evaluate("get", [key.as_str()]).await.unwrap(),
        b"v2"
    );

    let history = json(&contract.evaluate("history", [key.as_str()]).await.unwrap());
    let mut entries: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["tx_id"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    let mut expected = vec![
        (first.transaction_id.clone(), "v1".to_owned()),
        (second.transaction_id.clone(), "v2".to_owned()),
    ];
    expected.sort();
    assert_eq!(entries, expected);
}

#[tokio::test]
async fn a_paginated_range_query_pages_through_every_key_once() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let prefix = unique("page");
    contract
        .submit("putmany", [prefix.as_str(), "7"])
        .await
        .unwrap();

    let (start, end) = (format!("{prefix}00000"), format!("{prefix}99999"));
    let mut bookmark = String::new();
    let mut keys = Vec::new();
    let mut pages = 0;
    loop {
        let page = json(
            &contract
                .evaluate(
                    "page",
                    [start.as_str(), end.as_str(), "3", bookmark.as_str()],
                )
                .await
                .unwrap(),
        );
        let got: Vec<String> = page["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        assert!(got.len() <= 3, "page of {}", got.len());
        assert_eq!(page["fetched"].as_u64(), Some(got.len() as u64));
        pages += 1;
        let done = got.is_empty();
        keys.extend(got);
        bookmark = page["bookmark"].as_str().unwrap().to_owned();
        if done || keys.len() == 7 {
            break;
        }
        assert!(pages < 10, "pagination does not end: {keys:?}");
    }
    let expected: Vec<String> = (0..7).map(|i| format!("{prefix}{i:05}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn a_thrown_error_reaches_the_client_with_its_message() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let message = format!("the meter {} is not registered", unique("m"));

    let err = contract
        .submit("fail", [message.as_str()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Endorse(_)), "{err:?}");
    let rejection = err.chaincode_error().expect("a chaincode rejection");
    assert_eq!(rejection.message, message);
    assert_eq!(rejection.status, Some(500));

    let err = contract
        .evaluate("get", ["no-such-key-anywhere"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Evaluate(_)), "{err:?}");
    assert_eq!(
        err.chaincode_error().expect("a rejection").message,
        "key no-such-key-anywhere not found"
    );
}

#[tokio::test]
async fn transient_data_reaches_the_chaincode_and_stays_out_of_the_transaction() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let secret = unique("secret");
    let committed = contract
        .proposal("transient")
        .arg("price")
        .transient("price", secret.as_bytes())
        .submit()
        .await
        .unwrap();
    assert_eq!(committed.result, secret.as_bytes());

    // The block holds the result (the endorsed response) but not the transient map: the
    // secret appears once in the transaction, as the chaincode's answer, never as an input.
    let network = contract_network(&env).await;
    let mut blocks = network
        .block_events(StartAt::Block(committed.block_number), None)
        .unwrap();
    let block = tokio::time::timeout(Duration::from_secs(60), blocks.next())
        .await
        .expect("the block within 60 s")
        .expect("a block")
        .expect("block event");
    let tx = block
        .transactions
        .iter()
        .find(|t| t.transaction_id == committed.transaction_id)
        .expect("the transaction is in its block");
    let occurrences = tx
        .envelope
        .windows(secret.len())
        .filter(|w| *w == secret.as_bytes())
        .count();
    assert_eq!(occurrences, 1, "transient data leaked into the transaction");
}

async fn contract_network(env: &NetworkEnv) -> fabric_gateway_client::Network {
    env.utility_channel(User::Client1).await
}

#[tokio::test]
async fn the_chaincode_sees_the_callers_identity() {
    let env = network();
    for (org, msp) in [(&env.utility, "UtilityMSP"), (&env.operator, "OperatorMSP")] {
        let contract = org
            .gateway(User::Client2)
            .await
            .unwrap()
            .network(env.channel.clone())
            .contract(CHAINCODE);
        let seen = json(
            &contract
                .evaluate("creator", Vec::<Vec<u8>>::new())
                .await
                .unwrap(),
        );
        assert_eq!(seen["msp_id"], msp);
        assert_eq!(seen["creator_msp"], msp);
        let id = seen["id"].as_str().unwrap();
        // fabric-shim's ClientIdentity id: x509::<subject>::<issuer>.
        assert!(id.starts_with("x509::"), "{id}");
        assert!(id.contains("CN=User2@"), "{id}");
    }
}

#[tokio::test]
async fn chaincode_events_from_the_node_shim_arrive_in_our_stream() {
    let env = network();
    let contract = contract(&env, User::Client1).await;
    let network = contract_network(&env).await;
    let name = unique("event");
    let mut events = network
        .chaincode_events(CHAINCODE, StartAt::NextCommit, None)
        .unwrap();
    let committed = contract
        .submit("event", [name.as_str(), "payload-1"])
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(120), events.next())
            .await
            .expect("the event within 120 s")
            .expect("the stream ended")
            .expect("event stream error");
        if event.event_name == name {
            assert_eq!(event.transaction_id, committed.transaction_id);
            assert_eq!(event.chaincode_name, CHAINCODE);
            assert_eq!(event.payload, b"payload-1");
            assert_eq!(event.block_number, committed.block_number);
            break;
        }
    }
}
