//! The tokio shell: accepts TCP connections, moves frames between the socket and a
//! [`HeadEndConnection`], and connects the head-end's application to the meters. No protocol
//! logic lives here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bcami_sdk::session::{HeadEnd, HeadEndIdentity, MeterDirectory};
use bcami_sdk::{Hid, MeterSecretKey, Timestamp};
use rand_core::OsRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::connection::{
    ConnectionError, HeadEndConnection, HeadEndEvent, MeterConnection, MeterEvent,
};
use crate::frame;

/// The head-end's clock (Unix milliseconds), supplied by the caller.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp::from_unix_millis(millis)
    }
}

/// What happened on the server, for the head-end's application and its logs.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A meter authenticated; commands can now be sent to it.
    Established {
        /// The meter.
        meter: Hid,
        /// Its registered key version.
        key_version: u64,
        /// Its address.
        peer: SocketAddr,
    },
    /// A meter sent a message.
    Message {
        /// The meter.
        meter: Hid,
        /// The opened message.
        payload: Vec<u8>,
    },
    /// A connection was refused or ended on an error (the connection is closed).
    Refused {
        /// The address.
        peer: SocketAddr,
        /// The meter, if it had authenticated.
        meter: Option<Hid>,
        /// Why.
        reason: ConnectionError,
    },
    /// An authenticated meter's connection ended.
    Closed {
        /// The meter.
        meter: Hid,
    },
    /// A connection was closed at once: [`Limits::max_pending_handshakes`] handshakes were
    /// already in progress.
    Busy {
        /// The address.
        peer: SocketAddr,
    },
    /// A connection was closed because its handshake did not complete within
    /// [`Limits::handshake_timeout`].
    TimedOut {
        /// The address.
        peer: SocketAddr,
    },
}

/// What the server allows connections that have not authenticated yet. Each handshake costs the
/// head-end an ECDH and a signature and holds its state until the meter confirms; TCP's own
/// handshake already proves the peer's address (so a return-routability cookie would add
/// nothing), but a peer can still open connections and never finish. These bounds keep such
/// connections from piling up; an established session is bound by neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A connection that has not completed its handshake by then is closed.
    pub handshake_timeout: Duration,
    /// At most this many connections may be in their handshake at once; a connection beyond
    /// them is closed as soon as it is accepted.
    pub max_pending_handshakes: usize,
}

impl Default for Limits {
    /// 10 s (a meter on a slow link needs two round trips), 1,024 handshakes in progress (a few
    /// milliseconds of head-end CPU time each).
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            max_pending_handshakes: 1024,
        }
    }
}

/// A command could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The meter has no established session.
    #[error("meter {0} is not connected")]
    NotConnected(Hid),
}

type Routes = Arc<Mutex<HashMap<Hid, mpsc::Sender<Vec<u8>>>>>;

/// Sends commands to connected meters (cheap to clone).
#[derive(Clone, Debug)]
pub struct Commands {
    routes: Routes,
}

impl Commands {
    /// Queues `payload` for `meter`; it is sealed on the meter's connection task.
    pub async fn send(&self, meter: Hid, payload: Vec<u8>) -> Result<(), CommandError> {
        let route = lock(&self.routes).get(&meter).cloned();
        match route {
            Some(route) => route
                .send(payload)
                .await
                .map_err(|_| CommandError::NotConnected(meter)),
            None => Err(CommandError::NotConnected(meter)),
        }
    }

    /// The meters with an established session.
    pub fn connected(&self) -> Vec<Hid> {
        let mut meters: Vec<Hid> = lock(&self.routes).keys().copied().collect();
        meters.sort();
        meters
    }
}

fn lock(routes: &Routes) -> std::sync::MutexGuard<'_, HashMap<Hid, mpsc::Sender<Vec<u8>>>> {
    // Map operations are atomic, so a panic elsewhere left a consistent map.
    routes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Everything a connection task needs.
struct Shared {
    head_end: HeadEnd,
    directory: Arc<dyn MeterDirectory + Send + Sync>,
    clock: Arc<dyn Clock>,
    routes: Routes,
    events: mpsc::Sender<ServerEvent>,
    limits: Limits,
}

/// Serves meters on `listener` with the default [`Limits`] until the returned task is aborted.
/// Returns the command handle, the event stream and the accept task. `directory` is the head-end's copy of the ledger's
/// meter registry: a [`crate::SharedDirectory`] kept in step by the caller, or any other
/// [`MeterDirectory`] (such as `bcami_client::LedgerDirectory`, synced from the ledger).
pub fn serve(
    listener: TcpListener,
    head_end: HeadEnd,
    directory: Arc<dyn MeterDirectory + Send + Sync>,
    clock: Arc<dyn Clock>,
) -> (Commands, mpsc::Receiver<ServerEvent>, JoinHandle<()>) {
    serve_with_limits(listener, head_end, directory, clock, Limits::default())
}

/// [`serve`] with the given [`Limits`].
pub fn serve_with_limits(
    listener: TcpListener,
    head_end: HeadEnd,
    directory: Arc<dyn MeterDirectory + Send + Sync>,
    clock: Arc<dyn Clock>,
    limits: Limits,
) -> (Commands, mpsc::Receiver<ServerEvent>, JoinHandle<()>) {
    let (events, receiver) = mpsc::channel(1024);
    let routes: Routes = Arc::default();
    let shared = Arc::new(Shared {
        head_end,
        directory,
        clock,
        routes: routes.clone(),
        events,
        limits,
    });
    let pending = Arc::new(Semaphore::new(limits.max_pending_handshakes));
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => match pending.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(connection(stream, peer, shared.clone(), permit));
                    }
                    Err(_) => {
                        drop(stream);
                        tracing::info!(%peer, "too many handshakes in progress: connection closed");
                        // Never wait here: a full event queue must not stop the accept loop.
                        let _ = shared.events.try_send(ServerEvent::Busy { peer });
                    }
                },
                Err(error) => tracing::warn!(%error, "accept failed"),
            }
        }
    });
    (Commands { routes }, receiver, task)
}

/// Reads one frame; `None` at a clean end of stream.
async fn read_frame(reader: &mut OwnedReadHalf) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let len = frame::check_len(usize::from(u16::from_be_bytes(len)))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(Some(body))
}

async fn write_frame(writer: &mut OwnedWriteHalf, message: &[u8]) -> std::io::Result<()> {
    let framed = frame::encode(message)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    writer.write_all(&framed).await
}

/// One meter connection: a reader task turns the socket into frames (so that waiting for a
/// frame is cancel-safe), this task applies them and the queued commands in turn.
/// `permit` is the connection's place among the handshakes in progress, given up once the meter
/// is authenticated.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) {
    let mut permit = Some(permit);
    let deadline = tokio::time::sleep(shared.limits.handshake_timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    let (mut reader, mut writer) = stream.into_split();
    let (frames_tx, mut frames) = mpsc::channel::<Vec<u8>>(16);
    let reader_task = tokio::spawn(async move {
        while let Ok(Some(frame)) = read_frame(&mut reader).await {
            if frames_tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    let (commands_tx, mut commands) = mpsc::channel::<Vec<u8>>(64);
    let mut state = HeadEndConnection::new();
    // Kept here, not read from `state`: a failed connection's state forgets its meter.
    let mut authenticated = None;
    let mut failure = None;
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let event = state.receive(
                    &shared.head_end,
                    &frame,
                    &mut OsRng,
                    shared.directory.as_ref(),
                    shared.clock.now(),
                );
                match event {
                    Ok(HeadEndEvent::Respond(response)) => {
                        if write_frame(&mut writer, &response).await.is_err() {
                            break;
                        }
                    }
                    Ok(HeadEndEvent::Established { meter, key_version }) => {
                        authenticated = Some(meter);
                        permit = None;
                        lock(&shared.routes).insert(meter, commands_tx.clone());
                        let _ = shared.events.send(ServerEvent::Established { meter, key_version, peer }).await;
                    }
                    Ok(HeadEndEvent::Message(payload)) => {
                        if let Some(meter) = authenticated {
                            let _ = shared.events.send(ServerEvent::Message { meter, payload }).await;
                        }
                    }
                    Err(reason) => {
                        failure = Some(reason);
                        break;
                    }
                }
            }
            () = &mut deadline, if authenticated.is_none() => {
                timed_out = true;
                break;
            }
            Some(command) = commands.recv() => {
                match state.seal(&command, shared.directory.as_ref()) {
                    Ok(sealed) => {
                        if write_frame(&mut writer, &sealed).await.is_err() {
                            break;
                        }
                    }
                    Err(reason) => {
                        failure = Some(reason);
                        break;
                    }
                }
            }
        }
    }
    reader_task.abort();
    let meter = authenticated;
    if let Some(meter) = meter {
        let mut routes = lock(&shared.routes);
        // Only remove our own route: a newer connection of the same meter may have replaced it.
        if routes
            .get(&meter)
            .is_some_and(|route| route.same_channel(&commands_tx))
        {
            routes.remove(&meter);
        }
    }
    drop(permit);
    let event = match (failure, meter) {
        _ if timed_out => {
            tracing::info!(%peer, "handshake not completed in time: connection closed");
            ServerEvent::TimedOut { peer }
        }
        (Some(reason), meter) => {
            tracing::info!(%peer, ?meter, %reason, "meter connection refused");
            ServerEvent::Refused {
                peer,
                meter,
                reason,
            }
        }
        (None, Some(meter)) => ServerEvent::Closed { meter },
        (None, None) => return,
    };
    let _ = shared.events.send(event).await;
}

/// A meter's connection to the head-end (for simulated meters and tests).
#[derive(Debug)]
pub struct MeterClient {
    stream: TcpStream,
    state: MeterConnection,
    key: MeterSecretKey,
}

/// The meter's connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket failed, or the head-end closed the connection (a refused handshake).
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The head-end is not authentic, or a command was refused.
    #[error(transparent)]
    Protocol(#[from] ConnectionError),
    /// The head-end sent something else than expected.
    #[error("unexpected message from the head-end")]
    Unexpected,
}

impl MeterClient {
    /// Connects and completes the handshake as meter `hid` with its registered `key`.
    pub async fn connect(
        address: impl ToSocketAddrs,
        key: MeterSecretKey,
        hid: Hid,
        head_end: HeadEndIdentity,
        now: Timestamp,
    ) -> Result<MeterClient, ClientError> {
        let mut stream = TcpStream::connect(address).await?;
        let (mut state, init) = MeterConnection::start(&mut OsRng, hid, head_end, now)?;
        stream
            .write_all(&frame::encode(&init).map_err(|_| ClientError::Unexpected)?)
            .await?;
        let response = Self::read(&mut stream).await?;
        let MeterEvent::Confirm(confirm) = state.receive(&key, &response)? else {
            return Err(ClientError::Unexpected);
        };
        stream
            .write_all(&frame::encode(&confirm).map_err(|_| ClientError::Unexpected)?)
            .await?;
        Ok(MeterClient { stream, state, key })
    }

    async fn read(stream: &mut TcpStream) -> Result<Vec<u8>, ClientError> {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let len = frame::check_len(usize::from(u16::from_be_bytes(len)))
            .map_err(|_| ClientError::Unexpected)?;
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        Ok(body)
    }

    /// Seals and sends a message to the head-end.
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        let sealed = self.state.seal(payload)?;
        let framed = frame::encode(&sealed).map_err(|_| ClientError::Unexpected)?;
        Ok(self.stream.write_all(&framed).await?)
    }

    /// Waits for the next command from the head-end and opens it.
    pub async fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        let message = Self::read(&mut self.stream).await?;
        match self.state.receive(&self.key, &message)? {
            MeterEvent::Message(payload) => Ok(payload),
            MeterEvent::Confirm(_) => Err(ClientError::Unexpected),
        }
    }
}
