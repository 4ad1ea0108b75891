//! The async shell around [`Session`]: one task per stream reads the peer's messages, feeds the
//! state machine, starts a blocking worker per transaction, and serializes all sends.

use std::collections::HashMap;
use std::sync::Arc;

use fabric_protos::protos::ChaincodeMessage;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::{Stream, StreamExt};

use crate::contract::Contract;
use crate::error::StubError;
use crate::peer::{Command, Link, run_transaction};
use crate::protocol::{Action, Capabilities, ProtocolError, Reply, Session, TxKey};

/// Why a stream ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The protocol was violated (by the peer, or the peer refused us).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The transport failed.
    #[error("stream failed: {0}")]
    Transport(#[from] tonic::Status),
    /// The peer stopped reading our messages.
    #[error("the peer stopped receiving")]
    PeerGone,
}

/// Messages to the peer; `Err` ends the gRPC stream with that status.
pub type Outbound = mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>;

/// Serve one peer stream until it closes: register as `chaincode_id`, then run every transaction
/// the peer sends through `contract`. Returns `Ok` when the peer closes the stream cleanly, or
/// once `shutdown` turns `true` and no transaction is running any more (draining).
pub async fn serve_stream<S>(
    chaincode_id: &str,
    contract: Arc<dyn Contract>,
    mut inbound: S,
    outbound: Outbound,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), StreamError>
where
    S: Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Unpin,
{
    let (mut session, register) = Session::new(chaincode_id);
    send(&outbound, register).await?;
    let (commands_tx, mut commands) = mpsc::unbounded_channel::<Command>();
    let mut waiters: HashMap<TxKey, oneshot::Sender<Result<Reply, StubError>>> = HashMap::new();
    let mut caps = Capabilities::default();
    let mut draining = *shutdown.borrow();
    loop {
        if draining && session.active_transactions() == 0 {
            tracing::info!("shutting down: no transaction running; closing the stream");
            return Ok(());
        }
        tokio::select! {
            changed = shutdown.changed(), if !draining => {
                // A dropped sender also means "stop".
                draining = changed.is_err() || *shutdown.borrow();
            }
            incoming = inbound.next() => {
                let msg = match incoming {
                    None => return Ok(()),
                    Some(Err(status)) => return Err(status.into()),
                    Some(Ok(msg)) => msg,
                };
                let actions = match session.receive(msg) {
                    Ok(actions) => actions,
                    Err(error) => {
                        tracing::error!(%error, "fatal protocol error; closing the stream");
                        // Best effort: the stream is being torn down anyway.
                        let _ = outbound.send(Ok(Session::fatal_message(&error))).await;
                        return Err(error.into());
                    }
                };
                for action in actions {
                    match action {
                        Action::Send(m) => send(&outbound, m).await?,
                        Action::Ready(c) => {
                            caps = c;
                            tracing::info!(write_batch = ?c.write_batch, get_multiple = ?c.get_multiple, "registered with the peer; ready");
                        }
                        Action::Start(invocation) => {
                            let contract = Arc::clone(&contract);
                            let link = Link::new(invocation.key.clone(), commands_tx.clone());
                            tokio::task::spawn_blocking(move || run_transaction(&contract, invocation, caps, link));
                        }
                        Action::Deliver { key, reply } => {
                            if let Some(waiter) = waiters.remove(&key) {
                                // The worker may have been dropped; nothing else to do then.
                                let _ = waiter.send(Ok(reply));
                            }
                        }
                        Action::Stray { key, message } => {
                            tracing::warn!(tx = %key, message, "reply for no outstanding request; ignored");
                        }
                    }
                }
            }
            Some(command) = commands.recv() => match command {
                Command::Request { key, request, reply } => {
                    match session.request(&key, request) {
                        Ok(m) => {
                            waiters.insert(key, reply);
                            send(&outbound, m).await?;
                        }
                        Err(e) => {
                            let error = match e {
                                ProtocolError::RequestOutstanding(_) => StubError::RequestOutstanding,
                                ProtocolError::UnknownTransaction(_) | ProtocolError::NotReady => StubError::Disconnected,
                                other => StubError::Peer { request: "request", message: other.to_string() },
                            };
                            let _ = reply.send(Err(error));
                        }
                    }
                }
                Command::Complete { key, completion } => {
                    waiters.remove(&key);
                    match session.complete(&key, completion) {
                        Ok(m) => send(&outbound, m).await?,
                        Err(error) => tracing::warn!(tx = %key, %error, "completion dropped"),
                    }
                }
            },
        }
    }
}

async fn send(outbound: &Outbound, msg: ChaincodeMessage) -> Result<(), StreamError> {
    outbound
        .send(Ok(msg))
        .await
        .map_err(|_| StreamError::PeerGone)
}
