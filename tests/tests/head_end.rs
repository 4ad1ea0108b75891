//! Meter ↔ head-end sessions against the live network (run by `scripts/test.sh` after
//! `network.sh deploy`): the head-end's key registered on the ledger and read from it by the
//! meters, the meters' keys and statuses read from the ledger by the head-end, sessions over
//! TCP on 127.0.0.1, and the ledger's changes picked up: a revoked meter, a meter the ledger
//! does not know and a rotated-away meter key are refused; after the administrator rotates the
//! head-end's key, meters that read the ledger again refuse the head-end still signing with the
//! old key and accept the one with the new key.
//!
//! The network has one head-end: its key is kept beside the MDMS's (`<run dir>/mdms`,
//! `headend.json`, as `meter-sim headend` keeps it), so reruns on one network rotate it on.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bcami_client::{Caller, Client, Fabric, LedgerDirectory, Settings};
use bcami_e2e::NetworkEnv;
use bcami_headend::ConnectionError;
use bcami_headend::net::{ClientError, Clock, MeterClient, ServerEvent, SystemClock, serve};
use bcami_sdk::session::{HeadEnd, HeadEndIdentity, HeadEndPolicy};
use bcami_sdk::{HandshakeError, HeadEndSecretKey, Hid, KeyRotationRequest, MeterSecretKey};
use meter_sim::headend::{HeadEndConfig, HeadEndKeys, prepare_head_end, prepare_meters};
use meter_sim::state::StateDir;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn settings(env: &NetworkEnv) -> Settings {
    Settings {
        mdms_state: env.run_dir.join("mdms"),
        network: env.network.clone(),
        chaincode: "bcami".to_owned(),
    }
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A fresh meter key from unique entropy.
fn fresh_meter_key(n: u8) -> MeterSecretKey {
    let mut entropy = [n; 32];
    entropy[..16].copy_from_slice(&nanos().to_be_bytes());
    MeterSecretKey::from_entropy(&entropy).unwrap()
}

/// A head-end serving on 127.0.0.1 with `key`, answering every reading with `ack:` + reading;
/// its refusals arrive on the returned channel.
struct Server {
    address: SocketAddr,
    refusals: mpsc::Receiver<ConnectionError>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(hid: Hid, key: HeadEndSecretKey, directory: Arc<LedgerDirectory>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let head_end = HeadEnd::new(hid, key, HeadEndPolicy::default());
    let (commands, mut events, task) = serve(listener, head_end, directory, Arc::new(SystemClock));
    let (refused, refusals) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                ServerEvent::Message { meter, payload } => {
                    let ack = [b"ack:".as_slice(), &payload].concat();
                    commands.send(meter, ack).await.unwrap();
                }
                ServerEvent::Refused { reason, .. } if refused.send(reason).await.is_err() => {
                    break;
                }
                _ => {}
            }
        }
    });
    Server {
        address,
        refusals,
        task,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A session: handshake, two readings up, two commands down.
async fn session(
    server: &Server,
    key: &MeterSecretKey,
    hid: Hid,
    head_end: HeadEndIdentity,
) -> Result<(), ClientError> {
    let mut meter = MeterClient::connect(
        server.address,
        key.clone(),
        hid,
        head_end,
        SystemClock.now(),
    )
    .await?;
    for n in 0..2 {
        let reading = format!("reading {n}");
        meter.send(reading.as_bytes()).await?;
        assert_eq!(
            meter.receive().await?,
            format!("ack:reading {n}").into_bytes()
        );
    }
    Ok(())
}

/// A session the head-end must refuse, for `expected`.
async fn refused(
    server: &mut Server,
    key: &MeterSecretKey,
    hid: Hid,
    head_end: HeadEndIdentity,
    expected: HandshakeError,
) {
    let outcome = session(server, key, hid, head_end).await;
    assert!(
        matches!(outcome, Err(ClientError::Io(_))),
        "the head-end did not close the connection: {outcome:?}"
    );
    let reason = server.refusals.recv().await.unwrap();
    assert_eq!(reason, ConnectionError::Handshake(expected), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_follow_the_ledger_registrations_revocations_and_rotations() {
    let env = NetworkEnv::require();
    let settings = settings(&env);
    let fabric = Fabric::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the network: {e:#}"));
    let client = Client::new(&fabric);
    let service_state = StateDir::open(&settings.mdms_state).unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(state_dir.path()).unwrap();

    // The head-end's key on the ledger (provisioned and registered on the first run).
    let mut keys = HeadEndKeys::load_or_create(&service_state, &"AHE-1".parse().unwrap()).unwrap();
    let version = prepare_head_end(&client, &mut keys, false).await.unwrap();
    let (identity, on_ledger) = client
        .head_end_identity(Caller::Concentrator(0))
        .await
        .unwrap()
        .expect("no head-end key on the ledger");
    assert_eq!(on_ledger, version);
    assert_eq!(identity.public_key, keys.current().public_key());

    // Four meters registered on the ledger; the first is then revoked.
    let config = HeadEndConfig {
        head_end_id: "AHE-1".parse().unwrap(),
        meters: 4,
        meter_prefix: format!("SES-E2E-{}", nanos()),
        messages: 2,
        revoke: 1,
        unknown: 0,
        rotate_key: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        fresh_ledger: false,
    };
    let meters = prepare_meters(&client, &state, &config).await.unwrap();
    client
        .revoke_meter(Caller::Administrator, meters[0].hid)
        .await
        .unwrap();

    let directory = Arc::new(LedgerDirectory::new());
    assert!(directory.sync(&client, Caller::Mdms).await.unwrap() >= 4);
    let mut server = start(keys.hid(), keys.current().clone(), directory.clone()).await;
    for m in &meters[1..] {
        session(&server, &m.key, m.hid, identity)
            .await
            .unwrap_or_else(|e| panic!("meter {}: {e}", m.id));
    }
    refused(
        &mut server,
        &meters[0].key,
        meters[0].hid,
        identity,
        HandshakeError::MeterRevoked,
    )
    .await;
    let stranger = fresh_meter_key(9);
    refused(
        &mut server,
        &stranger,
        Hid::from_meter_id(format!("{}-stranger", config.meter_prefix)),
        identity,
        HandshakeError::UnknownMeter,
    )
    .await;

    // Meter 1 rotates its key on the ledger: once the head-end has read it, the old key is
    // refused and the new one accepted.
    let rotated = fresh_meter_key(1);
    let request =
        KeyRotationRequest::build(&meters[1].key, &rotated, meters[1].hid, SystemClock.now())
            .unwrap();
    client
        .rotate_meter_key(Caller::Concentrator(0), &request.encode())
        .await
        .unwrap();
    let record = directory
        .sync_meter(&client, Caller::Mdms, meters[1].hid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.key_version, 2);
    refused(
        &mut server,
        &meters[1].key,
        meters[1].hid,
        identity,
        HandshakeError::Authentication,
    )
    .await;
    session(&server, &rotated, meters[1].hid, identity)
        .await
        .unwrap();

    // The administrator rotates the head-end's key. Meters that read the ledger again refuse
    // the head-end still signing with the old key, and accept it with the new one; a meter
    // that kept the old identity refuses the new head-end.
    let new_version = prepare_head_end(&client, &mut keys, true).await.unwrap();
    assert_eq!(new_version, version + 1);
    let (fresh, _) = client
        .head_end_identity(Caller::Concentrator(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.id, identity.id);
    assert_ne!(fresh.public_key, identity.public_key);
    assert_eq!(fresh.public_key, keys.current().public_key());
    let meter = &meters[2];
    let stale = session(&server, &meter.key, meter.hid, fresh).await;
    assert!(
        matches!(
            stale,
            Err(ClientError::Protocol(ConnectionError::Handshake(
                HandshakeError::Authentication
            )))
        ),
        "a meter accepted the head-end's old key after the rotation: {stale:?}"
    );
    drop(server);
    let server = start(keys.hid(), keys.current().clone(), directory.clone()).await;
    session(&server, &meter.key, meter.hid, fresh)
        .await
        .unwrap();
    let outdated = session(&server, &meters[3].key, meters[3].hid, identity).await;
    assert!(
        matches!(
            outdated,
            Err(ClientError::Protocol(ConnectionError::Handshake(
                HandshakeError::Authentication
            )))
        ),
        "a meter with the head-end's old key accepted the new one: {outdated:?}"
    );
}
