//! Protocol tests against the in-memory peer: handshake, keepalive, out-of-order and unknown
//! messages, peer ERROR replies, concurrency, batching advertised or not, panics, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use fabric_protos::protos::chaincode_message::Type;
use fabric_protos::protos::{self, ChaincodeAdditionalParams, ChaincodeMessage};
use fabric_shim::protocol::{Phase, ProtocolError, Request, Session, TxKey};
use fabric_shim::testing::{InMemoryPeer, TxResult, TxSpec};
use fabric_shim::{ContractError, KeyRange, Router, StreamError, composite_key};
use prost::Message;

fn msg(t: Type) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: t as i32,
        ..Default::default()
    }
}

fn fixture() -> Arc<Router> {
    Arc::new(
        Router::new()
            .route("put", |s, a| {
                s.put_state(a.str(0)?, a.bytes(1)?)?;
                Ok(s.tx().tx_id().as_bytes().to_vec())
            })
            .route("get", |s, a| Ok(s.state(a.str(0)?)?.unwrap_or_default()))
            .route("read_then_write", |s, a| {
                let old = s.state(a.str(0)?)?.unwrap_or_default();
                s.put_state(a.str(0)?, a.bytes(1)?)?;
                Ok(old)
            })
            .route("putmany", |s, a| {
                let n: u32 = a.parse(0)?;
                for i in 0..n {
                    s.put_state(&format!("k{i:04}"), b"v")?;
                }
                Ok(Vec::new())
            })
            .route("getmany", |s, a| {
                let keys: Vec<String> = (0..a.parse::<u32>(0)?)
                    .map(|i| format!("k{i:04}"))
                    .collect();
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let found = s.states(&refs)?.iter().filter(|v| v.is_some()).count();
                Ok(found.to_string().into_bytes())
            })
            .route("count", |s, _| {
                let n = s
                    .range(&KeyRange::all())?
                    .collect::<Result<Vec<_>, _>>()?
                    .len();
                Ok(n.to_string().into_bytes())
            })
            .route("page", |s, a| {
                let p = s.range_page(&KeyRange::all(), a.parse(0)?, a.str(1)?)?;
                Ok(format!("{}|{}", p.records.len(), p.bookmark).into_bytes())
            })
            .route("first_then_close", |s, _| {
                let mut it = s.range(&KeyRange::all())?;
                let first = it.next().transpose()?.map(|kv| kv.key).unwrap_or_default();
                it.close()?;
                Ok(first.into_bytes())
            })
            .route("history", |s, a| {
                let h: Vec<String> = s
                    .history(a.str(0)?)?
                    .map(|m| m.map(|m| m.tx_id))
                    .collect::<Result<_, _>>()?;
                Ok(h.join(",").into_bytes())
            })
            .route("comp", |s, a| {
                s.put_state(&composite_key("t", &[a.str(0)?])?, b"x")?;
                Ok(Vec::new())
            })
            .route("event", |s, a| {
                s.set_event(a.str(0)?, b"payload")?;
                Ok(Vec::new())
            })
            .route("creator", |s, _| {
                let c = s.creator();
                let x = c
                    .x509()
                    .ok_or_else(|| ContractError::bad_request("not x509"))?;
                Ok(format!(
                    "{}|{:?}|{}|{}",
                    c.msp_id(),
                    c.role(),
                    x.subject(),
                    x.issuer()
                )
                .into_bytes())
            })
            .route("transient", |s, a| {
                Ok(s.tx()
                    .transient()
                    .get(a.str(0)?)
                    .cloned()
                    .unwrap_or_default())
            })
            .route("fail", |_, a| Err(ContractError::forbidden(a.str(0)?)))
            .route("panic", |_, _| panic!("boom")),
    )
}

fn ok(payload: &[u8]) -> TxResult {
    TxResult::Completed {
        status: 200,
        message: String::new(),
        payload: payload.to_vec(),
        event: None,
    }
}

fn caps(max: u32) -> Option<ChaincodeAdditionalParams> {
    Some(ChaincodeAdditionalParams {
        use_write_batch: true,
        max_size_write_batch: max,
        use_get_multiple_keys: true,
        max_size_get_multiple_keys: max,
    })
}

#[tokio::test]
async fn handshake_registers_package_id_and_echoes_keepalive_in_every_phase() {
    let mut peer = InMemoryPeer::start_raw("mycc:abcd", fixture());
    let register = peer.recv().await.unwrap();
    assert_eq!(register.r#type, Type::Register as i32);
    assert_eq!(
        protos::ChaincodeId::decode(register.payload.as_slice())
            .unwrap()
            .name,
        "mycc:abcd"
    );
    assert!(register.txid.is_empty() && register.channel_id.is_empty());
    for next in [Some(Type::Registered), Some(Type::Ready), None] {
        let mut ka = msg(Type::Keepalive);
        ka.payload = b"ka".to_vec();
        peer.send(ka.clone()).await.unwrap();
        assert_eq!(peer.recv().await.unwrap(), ka, "keepalive echoed unchanged");
        if let Some(t) = next {
            peer.send(msg(t)).await.unwrap();
        }
    }
    let result = peer
        .invoke(TxSpec::new("t1", "put", &["a", "1"]))
        .await
        .unwrap();
    assert_eq!(result, ok(b"t1"));
    assert_eq!(peer.state.get("a"), Some(&b"1".to_vec()));
}

async fn expect_fatal(
    messages: Vec<ChaincodeMessage>,
) -> (ChaincodeMessage, Result<(), StreamError>) {
    let mut peer = InMemoryPeer::start_raw("cc:1", fixture());
    peer.recv().await.unwrap();
    for m in messages {
        peer.send(m).await.unwrap();
    }
    let error = peer.recv().await.expect("an ERROR before closing");
    assert!(
        peer.recv().await.is_none(),
        "stream closed after the fatal error"
    );
    (error, peer.hang_up().await)
}

#[tokio::test]
async fn ready_before_registered_is_fatal() {
    let (error, result) = expect_fatal(vec![msg(Type::Ready)]).await;
    assert_eq!(error.r#type, Type::Error as i32);
    assert!(String::from_utf8_lossy(&error.payload).contains("unexpected READY"));
    assert!(matches!(
        result,
        Err(StreamError::Protocol(ProtocolError::Unexpected {
            phase: Phase::Registering,
            ..
        }))
    ));
}

#[tokio::test]
async fn transaction_before_ready_is_fatal() {
    let (_, result) = expect_fatal(vec![
        msg(Type::Registered),
        TxSpec::new("t", "put", &["a", "b"]).message(),
    ])
    .await;
    assert!(matches!(
        result,
        Err(StreamError::Protocol(ProtocolError::Unexpected {
            phase: Phase::Established,
            ..
        }))
    ));
}

#[tokio::test]
async fn unknown_message_type_is_fatal() {
    let mut unknown = msg(Type::Undefined);
    unknown.r#type = 99;
    let (error, result) =
        expect_fatal(vec![msg(Type::Registered), msg(Type::Ready), unknown]).await;
    assert!(String::from_utf8_lossy(&error.payload).contains("unknown message type 99"));
    assert!(matches!(
        result,
        Err(StreamError::Protocol(ProtocolError::UnknownType(99)))
    ));
}

#[tokio::test]
async fn second_registered_while_ready_is_fatal() {
    let (_, result) = expect_fatal(vec![
        msg(Type::Registered),
        msg(Type::Ready),
        msg(Type::Registered),
    ])
    .await;
    assert!(matches!(
        result,
        Err(StreamError::Protocol(ProtocolError::Unexpected {
            phase: Phase::Ready(_),
            ..
        }))
    ));
}

#[tokio::test]
async fn peer_refusing_registration_ends_the_stream() {
    let mut e = msg(Type::Error);
    e.payload = b"peer will not accept external chaincode connection".to_vec();
    let (_, result) = expect_fatal(vec![e]).await;
    match result {
        Err(StreamError::Protocol(ProtocolError::Rejected(text))) => {
            assert!(text.contains("will not accept"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn malformed_ready_payload_is_fatal() {
    let mut ready = msg(Type::Ready);
    ready.payload = vec![0xFF, 0xFF, 0xFF];
    let (_, result) = expect_fatal(vec![msg(Type::Registered), ready]).await;
    assert!(matches!(
        result,
        Err(StreamError::Protocol(ProtocolError::Malformed { .. }))
    ));
}

#[tokio::test]
async fn peer_error_reply_fails_the_call_with_the_peer_text() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    peer.send(TxSpec::new("t1", "get", &["a"]).message())
        .await
        .unwrap();
    let request = peer.recv().await.unwrap();
    assert_eq!(request.r#type, Type::GetState as i32);
    assert_eq!(
        (request.channel_id.as_str(), request.txid.as_str()),
        ("ch", "t1")
    );
    let mut error = msg(Type::Error);
    error.txid = "t1".into();
    error.channel_id = "ch".into();
    error.payload = b"GET_STATE failed: transaction ID: t1: ledger closed".to_vec();
    peer.send(error).await.unwrap();
    let done = peer.recv().await.unwrap();
    assert_eq!(done.r#type, Type::Completed as i32);
    let response = protos::Response::decode(done.payload.as_slice()).unwrap();
    assert_eq!(response.status, 500);
    assert!(
        response.message.contains("GET_STATE failed at the peer"),
        "{}",
        response.message
    );
    assert!(response.message.contains("ledger closed"));
}

#[tokio::test]
async fn stray_replies_are_ignored_and_the_stream_keeps_working() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let mut stray = msg(Type::Response);
    stray.txid = "nobody".into();
    stray.channel_id = "ch".into();
    peer.send(stray).await.unwrap();
    assert_eq!(
        peer.invoke(TxSpec::new("t1", "put", &["a", "1"]))
            .await
            .unwrap(),
        ok(b"t1")
    );
}

#[tokio::test]
async fn many_concurrent_transactions_one_outstanding_request_each() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let txs: Vec<TxSpec> = (0..200)
        .map(|i| {
            TxSpec::new(
                &format!("t{i}"),
                "read_then_write",
                &[&format!("k{i}"), "v"],
            )
        })
        .collect();
    let results = peer.invoke_all(txs).await.unwrap();
    assert_eq!(results.len(), 200);
    assert!(
        results
            .iter()
            .all(|(_, r)| matches!(r, TxResult::Completed { status: 200, .. }))
    );
    assert!(peer.violations.is_empty(), "{:?}", peer.violations);
    assert_eq!(peer.state.len(), 200);
    assert_eq!(peer.counts.get("GET_STATE"), Some(&200));
    assert_eq!(peer.counts.get("PUT_STATE"), Some(&200));
}

#[tokio::test]
async fn same_txid_on_two_channels_are_distinct_transactions() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let mut a = TxSpec::new("same", "put", &["x", "1"]);
    a.channel = "c1".into();
    let mut b = TxSpec::new("same", "put", &["y", "2"]);
    b.channel = "c2".into();
    let results = peer.invoke_all(vec![a, b]).await.unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(peer.state.len(), 2);
}

#[tokio::test]
async fn duplicate_transaction_while_running_gets_error_and_first_completes() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let tx = TxSpec::new("dup", "get", &["a"]);
    peer.send(tx.message()).await.unwrap();
    let request = peer.recv().await.unwrap();
    assert_eq!(request.r#type, Type::GetState as i32);
    peer.send(tx.message()).await.unwrap();
    let error = peer.recv().await.unwrap();
    assert_eq!(error.r#type, Type::Error as i32);
    assert!(String::from_utf8_lossy(&error.payload).contains("duplicate transaction"));
    let mut reply = msg(Type::Response);
    reply.txid = "dup".into();
    reply.channel_id = "ch".into();
    reply.payload = b"val".to_vec();
    peer.send(reply).await.unwrap();
    let done = peer.recv().await.unwrap();
    assert_eq!(done.r#type, Type::Completed as i32);
    assert_eq!(
        protos::Response::decode(done.payload.as_slice())
            .unwrap()
            .payload,
        b"val"
    );
}

#[tokio::test]
async fn write_batching_and_get_multiple_when_advertised() {
    let mut peer = InMemoryPeer::connect(fixture(), caps(10)).await.unwrap();
    // The shim raises advertised maxima below 100 to 100, like the Go shim: 250 writes → 3 batches.
    assert_eq!(
        peer.invoke(TxSpec::new("t1", "putmany", &["250"]))
            .await
            .unwrap(),
        ok(b"")
    );
    assert_eq!(peer.state.len(), 250);
    assert_eq!(peer.counts.get("WRITE_BATCH_STATE"), Some(&3));
    assert_eq!(peer.counts.get("PUT_STATE"), None);
    assert_eq!(
        peer.invoke(TxSpec::new("t2", "getmany", &["250"]))
            .await
            .unwrap(),
        ok(b"250")
    );
    assert_eq!(peer.counts.get("GET_STATE_MULTIPLE"), Some(&3));
    assert_eq!(peer.counts.get("GET_STATE"), None);
    // Batched writes are still invisible to the writer and deduplicated (last write wins).
    assert_eq!(
        peer.invoke(TxSpec::new("t3", "read_then_write", &["k0000", "new"]))
            .await
            .unwrap(),
        ok(b"v")
    );
    assert_eq!(peer.state.get("k0000"), Some(&b"new".to_vec()));
}

#[tokio::test]
async fn no_batching_or_get_multiple_when_ready_is_empty() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    peer.invoke(TxSpec::new("t1", "putmany", &["150"]))
        .await
        .unwrap();
    assert_eq!(peer.counts.get("PUT_STATE"), Some(&150));
    assert_eq!(peer.counts.get("WRITE_BATCH_STATE"), None);
    assert_eq!(
        peer.invoke(TxSpec::new("t2", "getmany", &["150"]))
            .await
            .unwrap(),
        ok(b"150")
    );
    assert_eq!(peer.counts.get("GET_STATE"), Some(&150));
    assert_eq!(peer.counts.get("GET_STATE_MULTIPLE"), None);
}

#[tokio::test]
async fn range_iterates_batches_and_pages_use_bookmarks() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    peer.invoke(TxSpec::new("t1", "putmany", &["250"]))
        .await
        .unwrap();
    peer.invoke(TxSpec::new("t1c", "comp", &["x"]))
        .await
        .unwrap();
    assert_eq!(
        peer.invoke(TxSpec::new("t2", "count", &[])).await.unwrap(),
        ok(b"250")
    );
    assert_eq!(peer.counts.get("QUERY_STATE_NEXT"), Some(&2));
    assert_eq!(
        peer.invoke(TxSpec::new("t3", "page", &["100", ""]))
            .await
            .unwrap(),
        ok(b"100|k0100")
    );
    assert_eq!(
        peer.invoke(TxSpec::new("t4", "page", &["100", "k0200"]))
            .await
            .unwrap(),
        ok(b"50|")
    );
    assert_eq!(
        peer.invoke(TxSpec::new("t5", "first_then_close", &[]))
            .await
            .unwrap(),
        ok(b"k0000")
    );
    assert_eq!(peer.counts.get("QUERY_STATE_CLOSE"), Some(&1));
}

#[tokio::test]
async fn history_lists_committed_versions_newest_first() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    for (tx, v) in [("h1", "a"), ("h2", "b"), ("h3", "c")] {
        peer.invoke(TxSpec::new(tx, "put", &["k", v]))
            .await
            .unwrap();
    }
    assert_eq!(
        peer.invoke(TxSpec::new("q", "history", &["k"]))
            .await
            .unwrap(),
        ok(b"h3,h2,h1")
    );
}

#[tokio::test]
async fn contract_error_is_completed_with_status_and_message() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let r = peer
        .invoke(TxSpec::new("t", "fail", &["not yours"]))
        .await
        .unwrap();
    assert_eq!(
        r,
        TxResult::Completed {
            status: 403,
            message: "not yours".into(),
            payload: vec![],
            event: None
        }
    );
    let unknown = peer.invoke(TxSpec::new("t2", "nope", &[])).await.unwrap();
    assert!(
        matches!(unknown, TxResult::Completed { status: 400, ref message, .. } if message.contains("unknown function"))
    );
}

#[tokio::test]
async fn panic_fails_only_its_transaction() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let results = peer
        .invoke_all(vec![
            TxSpec::new("a", "put", &["a", "1"]),
            TxSpec::new("p", "panic", &[]),
            TxSpec::new("b", "put", &["b", "2"]),
        ])
        .await
        .unwrap();
    for (txid, r) in results {
        match (txid.as_str(), r) {
            (
                "p",
                TxResult::Completed {
                    status, message, ..
                },
            ) => {
                assert_eq!(status, 500);
                assert!(message.contains("chaincode panicked: boom"));
            }
            (_, r) => assert!(matches!(r, TxResult::Completed { status: 200, .. })),
        }
    }
    assert_eq!(
        peer.invoke(TxSpec::new("after", "put", &["c", "3"]))
            .await
            .unwrap(),
        ok(b"after")
    );
}

#[tokio::test]
async fn event_is_attached_to_completed() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let r = peer
        .invoke(TxSpec::new("t", "event", &["meter.registered"]))
        .await
        .unwrap();
    assert_eq!(
        r,
        TxResult::Completed {
            status: 200,
            message: String::new(),
            payload: vec![],
            event: Some(("meter.registered".into(), b"payload".to_vec()))
        }
    );
}

#[tokio::test]
async fn malformed_transaction_gets_error_and_stream_survives() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let mut bad = TxSpec::new("bad", "put", &["a", "1"]).message();
    bad.proposal = None;
    let r = peer.invoke_all(vec![]).await.unwrap();
    assert!(r.is_empty());
    peer.send(bad).await.unwrap();
    let error = peer.recv().await.unwrap();
    assert_eq!(error.r#type, Type::Error as i32);
    assert_eq!(error.txid, "bad");
    assert!(String::from_utf8_lossy(&error.payload).contains("signed proposal"));
    assert_eq!(
        peer.invoke(TxSpec::new("good", "put", &["a", "1"]))
            .await
            .unwrap(),
        ok(b"good")
    );
}

#[tokio::test]
async fn creator_from_a_real_fabric_certificate_and_transient_data() {
    let mut peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    let mut tx = TxSpec::new("t", "creator", &[]);
    tx.msp_id = "OperatorMSP".into();
    tx.id_bytes = include_bytes!("data/user1-operator-cert.pem").to_vec();
    let r = peer.invoke(tx).await.unwrap();
    let TxResult::Completed {
        status: 200,
        payload,
        ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        "OperatorMSP|Some(Client)|CN=User1@operator.bcami.local,OU=client,L=San Francisco,ST=California,C=US|\
         CN=ca.operator.bcami.local,O=operator.bcami.local,L=San Francisco,ST=California,C=US"
    );
    let mut tx = TxSpec::new("t2", "transient", &["secret"]);
    tx.transient.insert("secret".into(), b"s3cr3t".to_vec());
    assert_eq!(peer.invoke(tx).await.unwrap(), ok(b"s3cr3t"));
}

#[tokio::test]
async fn shutdown_drains_then_closes() {
    let peer = InMemoryPeer::connect(fixture(), None).await.unwrap();
    assert!(peer.shut_down().await.is_ok());
}

#[test]
fn session_enforces_one_outstanding_request_and_capabilities() {
    let (mut s, _) = Session::new("cc:1");
    let key = TxKey {
        channel: "c".into(),
        txid: "t".into(),
    };
    assert_eq!(
        s.request(&key, Request::GetState { key: "a".into() }),
        Err(ProtocolError::NotReady)
    );
    s.receive(msg(Type::Registered)).unwrap();
    s.receive(msg(Type::Ready)).unwrap();
    assert_eq!(
        s.request(&key, Request::GetState { key: "a".into() }),
        Err(ProtocolError::UnknownTransaction(key.clone()))
    );
    s.receive(
        TxSpec {
            channel: "c".into(),
            ..TxSpec::new("t", "f", &[])
        }
        .message(),
    )
    .unwrap();
    assert!(
        s.request(&key, Request::GetState { key: "a".into() })
            .is_ok()
    );
    assert_eq!(
        s.request(&key, Request::GetState { key: "b".into() }),
        Err(ProtocolError::RequestOutstanding(key.clone()))
    );
    assert_eq!(
        s.request(&key, Request::WriteBatch { records: vec![] }),
        Err(ProtocolError::NotAdvertised("WRITE_BATCH_STATE"))
    );
}
