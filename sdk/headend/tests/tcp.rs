//! The head-end over real TCP on 127.0.0.1: many meters at once, readings up and commands down,
//! and the ledger's refusals (unknown, revoked, rotated-away key, revoked while connected).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bcami_headend::net::{ClientError, Commands, MeterClient, ServerEvent, SystemClock, serve};
use bcami_headend::{ConnectionError, SharedDirectory};
use bcami_sdk::session::{HeadEndIdentity, MeterRecord, MeterStatus};
use bcami_sdk::{HandshakeError, Hid, MeterSecretKey, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const METERS: usize = 24;

mod common;

fn meter(i: usize) -> (Hid, MeterSecretKey) {
    common::meter("TCP", i)
}

fn now() -> Timestamp {
    use bcami_headend::net::Clock;
    SystemClock.now()
}

struct Harness {
    address: std::net::SocketAddr,
    identity: HeadEndIdentity,
    directory: Arc<SharedDirectory>,
    commands: Commands,
    /// Every server event, after the router has answered messages with "ack:" + message.
    events: mpsc::Receiver<ServerEvent>,
}

async fn start() -> Harness {
    let directory = common::active_directory("TCP", METERS);
    let head_end = common::head_end("TCP");
    let identity = head_end.identity();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (commands, mut server_events, _task) =
        serve(listener, head_end, directory.clone(), Arc::new(SystemClock));
    let (forward, events) = mpsc::channel(1024);
    let router = commands.clone();
    tokio::spawn(async move {
        while let Some(event) = server_events.recv().await {
            if let ServerEvent::Message { meter, payload } = &event {
                let mut ack = b"ack:".to_vec();
                ack.extend_from_slice(payload);
                router.send(*meter, ack).await.unwrap();
            }
            if forward.send(event).await.is_err() {
                break;
            }
        }
    });
    Harness {
        address,
        identity,
        directory,
        commands,
        events,
    }
}

/// The next event that matches, skipping others; the timeout only stops a hung test.
async fn next_event(
    events: &mut mpsc::Receiver<ServerEvent>,
    wanted: impl Fn(&ServerEvent) -> bool,
) -> ServerEvent {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let event = events.recv().await.expect("server alive");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event arrives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_meters_handshake_concurrently_and_exchange_sealed_messages() {
    let mut harness = start().await;
    let mut clients = Vec::new();
    for i in 0..METERS {
        let (hid, key) = meter(i);
        let (address, identity) = (harness.address, harness.identity);
        clients.push(tokio::spawn(async move {
            let mut client = MeterClient::connect(address, key, hid, identity, now())
                .await
                .unwrap();
            for n in 0..3 {
                let reading = format!("meter {i} reading {n}");
                client.send(reading.as_bytes()).await.unwrap();
                let ack = client.receive().await.unwrap();
                assert_eq!(ack, format!("ack:{reading}").into_bytes());
            }
            hid
        }));
    }
    let mut done = Vec::new();
    for client in clients {
        done.push(client.await.unwrap());
    }
    done.sort();
    let mut established = 0;
    while established < METERS {
        if let ServerEvent::Established { key_version, .. } = next_event(&mut harness.events, |e| {
            matches!(e, ServerEvent::Established { .. })
        })
        .await
        {
            assert_eq!(key_version, 1);
            established += 1;
        }
    }
    assert_eq!(done.len(), METERS);
    // Commands to a meter that never connected are refused by name.
    let stranger = Hid::from_meter_id("SM-NEVER");
    assert!(
        harness
            .commands
            .send(stranger, b"x".to_vec())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_refuses_unknown_revoked_rotated_and_impostor_meters() {
    let mut harness = start().await;
    let refused = |expected: ConnectionError| move |e: &ServerEvent| matches!(e, ServerEvent::Refused { reason, .. } if *reason == expected);

    // Unknown HID.
    let (_, key) = meter(0);
    let result = MeterClient::connect(
        harness.address,
        key,
        Hid::from_meter_id("SM-UNKNOWN"),
        harness.identity,
        now(),
    )
    .await;
    assert!(matches!(result, Err(ClientError::Io(_))), "{result:?}");
    next_event(
        &mut harness.events,
        refused(ConnectionError::Handshake(HandshakeError::UnknownMeter)),
    )
    .await;

    // Revoked before connecting.
    let (hid, key) = meter(1);
    assert!(harness.directory.revoke(&hid));
    let result = MeterClient::connect(harness.address, key, hid, harness.identity, now()).await;
    assert!(matches!(result, Err(ClientError::Io(_))), "{result:?}");
    next_event(
        &mut harness.events,
        refused(ConnectionError::Handshake(HandshakeError::MeterRevoked)),
    )
    .await;

    // Rotated away: the ledger has a new key (version 2); the meter uses the old one. The meter
    // finishes its half (the head-end is genuine) but the head-end refuses the confirmation.
    let (hid, old_key) = meter(2);
    let new_key = MeterSecretKey::from_entropy(&[0x99; 32]).unwrap();
    harness.directory.upsert(
        hid,
        MeterRecord {
            public_key: new_key.public_key(),
            key_version: 2,
            status: MeterStatus::Active,
        },
    );
    let mut client = MeterClient::connect(harness.address, old_key, hid, harness.identity, now())
        .await
        .unwrap();
    next_event(
        &mut harness.events,
        refused(ConnectionError::Handshake(HandshakeError::Authentication)),
    )
    .await;
    assert!(client.receive().await.is_err());
    // With the rotated key it works.
    let mut client = MeterClient::connect(harness.address, new_key, hid, harness.identity, now())
        .await
        .unwrap();
    client.send(b"hello").await.unwrap();
    assert_eq!(client.receive().await.unwrap(), b"ack:hello");

    // Revoked while connected: the next message closes the session.
    let (hid, key) = meter(3);
    let mut client = MeterClient::connect(harness.address, key, hid, harness.identity, now())
        .await
        .unwrap();
    client.send(b"before").await.unwrap();
    assert_eq!(client.receive().await.unwrap(), b"ack:before");
    assert!(harness.directory.revoke(&hid));
    client.send(b"after").await.unwrap();
    next_event(
        &mut harness.events,
        refused(ConnectionError::KeyNoLongerValid),
    )
    .await;
    assert!(client.receive().await.is_err());
    assert!(!harness.commands.connected().contains(&hid));
}
