//! The server's bounds on connections that have not authenticated: a handshake that does not
//! complete in time is closed, and beyond the cap of handshakes in progress a connection is
//! closed at once, while established sessions hold no place among them.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bcami_headend::net::{Clock, Limits, MeterClient, ServerEvent, SystemClock, serve_with_limits};
use bcami_sdk::session::HeadEndIdentity;
use bcami_sdk::{Hid, MeterSecretKey};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

mod common;

fn meter(i: usize) -> (Hid, MeterSecretKey) {
    common::meter("LIMITS", i)
}

async fn start(
    limits: Limits,
) -> (
    SocketAddr,
    HeadEndIdentity,
    mpsc::Receiver<ServerEvent>,
    tokio::task::JoinHandle<()>,
) {
    let directory = common::active_directory("LIMITS", 4);
    let head_end = common::head_end("LIMITS");
    let identity = head_end.identity();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (_commands, events, task) =
        serve_with_limits(listener, head_end, directory, Arc::new(SystemClock), limits);
    (address, identity, events, task)
}

/// Stops a hung test (in paused time, it fires an hour in, long after any deadline under test).
const HUNG: Duration = Duration::from_secs(3600);

/// The next event that is not a session closing.
async fn next_event(events: &mut mpsc::Receiver<ServerEvent>) -> ServerEvent {
    tokio::time::timeout(HUNG, async {
        loop {
            match events.recv().await.expect("server alive") {
                ServerEvent::Closed { .. } => {}
                event => return event,
            }
        }
    })
    .await
    .expect("an event arrives")
}

/// Whether the server closed `stream` (end of stream, or reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(HUNG, stream.read(&mut byte))
        .await
        .expect("the server closes the connection");
    matches!(read, Ok(0) | Err(_))
}

// Paused time: the runtime jumps to the deadline as soon as everything waits, so the test takes
// no wall time and cannot race the clock.
#[tokio::test(start_paused = true)]
async fn a_handshake_not_completed_in_time_is_closed() {
    let limits = Limits {
        handshake_timeout: Duration::from_secs(10),
        max_pending_handshakes: 8,
    };
    let (address, _, mut events, _task) = start(limits).await;
    let mut silent = TcpStream::connect(address).await.unwrap();
    let local = silent.local_addr().unwrap();
    assert!(closed_by_server(&mut silent).await);
    match next_event(&mut events).await {
        ServerEvent::TimedOut { peer } => assert_eq!(peer, local),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

// Real time, with a deadline far beyond the test: only the cap is at work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_cap_of_pending_handshakes_connections_are_closed_at_once() {
    let limits = Limits {
        handshake_timeout: 2 * HUNG,
        max_pending_handshakes: 1,
    };
    let (address, identity, mut events, _task) = start(limits).await;
    // Established sessions give their place up: two in turn fit under a cap of one.
    let mut sessions = Vec::new();
    for i in 0..2 {
        let (hid, key) = meter(i);
        sessions.push(
            MeterClient::connect(address, key, hid, identity, SystemClock.now())
                .await
                .unwrap(),
        );
        match next_event(&mut events).await {
            ServerEvent::Established { meter, .. } => assert_eq!(meter, hid),
            other => panic!("expected meter {i} to be established, got {other:?}"),
        }
    }
    // A connection that never speaks holds the one place; the next meter is turned away.
    let _silent = TcpStream::connect(address).await.unwrap();
    let (hid, key) = meter(2);
    let turned_away = MeterClient::connect(address, key, hid, identity, SystemClock.now()).await;
    assert!(turned_away.is_err(), "a meter got in beyond the cap");
    assert!(matches!(
        next_event(&mut events).await,
        ServerEvent::Busy { .. }
    ));
    // The established sessions still work.
    for session in &mut sessions {
        session.send(b"still here").await.unwrap();
        match next_event(&mut events).await {
            ServerEvent::Message { payload, .. } => assert_eq!(payload, b"still here"),
            other => panic!("expected a message, got {other:?}"),
        }
    }
}
