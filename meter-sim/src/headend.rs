//! `meter-sim headend`: the AMI head-end and meters that open authenticated sessions with it.
//!
//! The head-end makes (or loads) its session-signing key, provisions and registers it on the
//! ledger (or rotates it), copies the ledger's meter registry ([`LedgerDirectory`]) and serves
//! sessions over TCP (`bcami_headend::net`). Simulated meters, provisioned and registered on the
//! ledger like `meter-sim run` does it (and sharing its state folder), read the head-end's key
//! from the ledger, open sessions, send sealed readings and receive a sealed command back for
//! each. Meters revoked on the ledger, and meters whose key the ledger never saw, are refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bcami_api::ErrorCode;
use bcami_client::{Caller, Client, Ledger, LedgerDirectory};
use bcami_headend::ConnectionError;
use bcami_headend::net::{Clock, Commands, MeterClient, ServerEvent, SystemClock, serve};
use bcami_sdk::session::{HeadEnd, HeadEndIdentity, HeadEndPolicy};
use bcami_sdk::{
    HandshakeError, HeadEndRegistrationRequest, HeadEndSecretKey, Hid, MeterSecretKey,
    RegistrationRequest, Timestamp,
};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::state::{DeviceId, Meter, StateDir};
use crate::stats::Latency;

/// A validated `meter-sim headend`.
#[derive(Clone, Debug)]
pub struct HeadEndConfig {
    /// The head-end's ID (its HID is SHA-256 of it).
    pub head_end_id: DeviceId,
    /// Simulated meters `<prefix>-000001…`.
    pub meters: usize,
    /// Their ID prefix.
    pub meter_prefix: String,
    /// Sealed readings each meter sends (each answered by a sealed command).
    pub messages: usize,
    /// Revoke the first this many meters on the ledger before they connect.
    pub revoke: usize,
    /// Extra meters the ledger does not know (HIDs never provisioned, keys never registered).
    pub unknown: usize,
    /// Rotate the head-end's key on the ledger (as the administrator) before serving.
    pub rotate_key: bool,
    /// Where the head-end listens.
    pub listen: SocketAddr,
    /// The ledger starts empty (embedded): forget what the state folders say was registered.
    pub fresh_ledger: bool,
}

/// What `meter-sim headend` reports (the `--json` output).
#[derive(Clone, Debug, Default, Serialize)]
pub struct HeadEndReport {
    /// `embedded` or `fabric`.
    pub mode: String,
    /// The head-end's HID.
    pub head_end: String,
    /// The version of the head-end key on the ledger that signed this run's handshakes.
    pub head_end_key_version: u32,
    /// Where it listened.
    pub listen: String,
    /// Meters that tried to open a session (registered, revoked and unknown).
    pub meters: usize,
    /// Meters the ledger lists with a key (the head-end's directory), when it started serving.
    pub directory: usize,
    /// Sessions established.
    pub established: usize,
    /// Refused handshakes by reason, as the head-end saw them.
    pub refused: BTreeMap<String, usize>,
    /// Meters without a session that this run revoked or that are impostors (expected).
    pub refused_expected: usize,
    /// Sealed readings sent by meters.
    pub messages: usize,
    /// Sealed commands the meters received back and opened.
    pub commands: usize,
    /// Handshake time seen by the meters (connect to established).
    pub handshake: Latency,
    /// Wall time of the session phase, s.
    pub elapsed_s: f64,
    /// Sessions established per second in the session phase.
    pub sessions_per_s: f64,
}

impl HeadEndReport {
    /// The human table.
    pub fn table(&self) -> String {
        let refused = if self.refused.is_empty() {
            "none".to_owned()
        } else {
            self.refused
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "mode                 {}\n\
             head-end             {} (key version {}, {})\n\
             meters               {} ({} in the ledger's directory)\n\
             sessions             {} established\n\
             refused              {refused} ({} expected)\n\
             readings / commands  {} / {}\n\
             handshake ms         p50 {:.2}  p95 {:.2}  max {:.2}\n\
             elapsed              {:.2} s ({:.0} sessions/s)\n",
            self.mode,
            self.head_end,
            self.head_end_key_version,
            self.listen,
            self.meters,
            self.directory,
            self.established,
            self.refused_expected,
            self.messages,
            self.commands,
            self.handshake.p50_ms,
            self.handshake.p95_ms,
            self.handshake.max_ms,
            self.elapsed_s,
            self.sessions_per_s,
        )
    }

    /// Whether everything went as expected: every registered, unrevoked meter got a session and
    /// every command back, and every refusal was one this run asked for.
    pub fn as_expected(&self, cfg: &HeadEndConfig) -> bool {
        let revoked = cfg.revoke.min(cfg.meters);
        let count = |reason: &str| self.refused.get(reason).copied().unwrap_or(0);
        let refused: usize = self.refused.values().sum();
        self.established + revoked == cfg.meters
            && count("revoked") == revoked
            && count("unknown_meter") == cfg.unknown
            && refused == revoked + cfg.unknown
            && self.refused_expected == refused
            && self.commands == self.established * cfg.messages
    }
}

/// The head-end's key file (`headend.json` in the service folder, beside the MDMS's).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadEndFile {
    version: u32,
    head_end_id: String,
    secret_key: String,
    /// A rotation's new key, saved before the ledger hears of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_secret_key: Option<String>,
}

/// The head-end's signing keys as kept in its folder: the current one, and a rotation's new key
/// until the ledger has it.
pub struct HeadEndKeys {
    path: PathBuf,
    id: DeviceId,
    current: HeadEndSecretKey,
    pending: Option<HeadEndSecretKey>,
}

fn parse_key(text: &str) -> Result<HeadEndSecretKey> {
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("a secret key is 64 hex digits"))?;
    HeadEndSecretKey::from_bytes(&bytes).map_err(|e| anyhow!("{e}"))
}

impl HeadEndKeys {
    /// Loads head-end `id`'s keys from `folder` (`headend.json`), or makes a key there.
    pub fn load_or_create(folder: &StateDir, id: &DeviceId) -> Result<HeadEndKeys> {
        let path = folder.root().join("headend.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: HeadEndFile = serde_json::from_str(&text)
                    .with_context(|| format!("corrupt head-end file {}", path.display()))?;
                if file.head_end_id != id.to_string() {
                    bail!(
                        "{} holds the key of head-end {}, not {id}; the contract accepts one head-end per network",
                        path.display(),
                        file.head_end_id
                    );
                }
                Ok(HeadEndKeys {
                    current: parse_key(&file.secret_key)
                        .with_context(|| format!("in {}", path.display()))?,
                    pending: file
                        .pending_secret_key
                        .as_deref()
                        .map(parse_key)
                        .transpose()
                        .with_context(|| format!("in {}", path.display()))?,
                    path,
                    id: id.clone(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = HeadEndKeys {
                    path,
                    id: id.clone(),
                    current: HeadEndSecretKey::generate(&mut OsRng).map_err(|e| anyhow!("{e}"))?,
                    pending: None,
                };
                keys.save()?;
                Ok(keys)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The key the head-end signs with.
    pub fn current(&self) -> &HeadEndSecretKey {
        &self.current
    }

    /// The head-end's HID.
    pub fn hid(&self) -> Hid {
        self.id.hid()
    }

    fn save(&self) -> Result<()> {
        let file = HeadEndFile {
            version: 1,
            head_end_id: self.id.to_string(),
            secret_key: hex::encode(self.current.to_bytes()),
            pending_secret_key: self.pending.as_ref().map(|k| hex::encode(k.to_bytes())),
        };
        crate::state::write_private(&self.path, &serde_json::to_string_pretty(&file)?)
    }

    fn promote(&mut self) -> Result<()> {
        if let Some(pending) = self.pending.take() {
            self.current = pending;
        }
        self.save()
    }
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// Provisions and registers the head-end's key if the ledger does not hold it, completes a
/// rotation found pending, rotates if asked; returns the key and its version on the ledger.
pub async fn prepare_head_end<L: Ledger + ?Sized>(
    client: &Client<'_, L>,
    keys: &mut HeadEndKeys,
    rotate: bool,
) -> Result<u32> {
    let hid = keys.id.hid();
    let register = |key: &HeadEndSecretKey| {
        HeadEndRegistrationRequest::build(key, hid, now())
            .map(|r| r.encode())
            .map_err(|e| anyhow!("{e}"))
    };
    let mut version = match client.head_end(Caller::Mdms).await {
        Ok(view) => {
            if view.record.hid != hid {
                bail!(
                    "the ledger's head-end is {}, not {} ({hid}); the contract accepts one head-end per network",
                    view.record.hid,
                    keys.id
                );
            }
            let on_ledger = view.record.public_key;
            if on_ledger == keys.pending.as_ref().map(HeadEndSecretKey::public_key) {
                eprintln!("completing the head-end key rotation found pending");
                keys.promote()?;
            } else if on_ledger != Some(keys.current.public_key()) {
                bail!(
                    "the ledger holds another key for head-end {}; its secret key is not in {}",
                    keys.id,
                    keys.path.display()
                );
            }
            view.record.current_key_version()
        }
        Err(e) if e.code() == Some(ErrorCode::UnknownHeadEnd) => {
            eprintln!("provisioning head-end {} as the administrator", keys.id);
            client
                .provision_bound_head_end(hid, &keys.current.public_key())
                .await?;
            let record = client
                .register_head_end_key(Caller::Mdms, &register(&keys.current)?)
                .await?;
            record.current_key_version()
        }
        Err(e) if e.code() == Some(ErrorCode::HeadEndNotRegistered) => {
            let record = client
                .register_head_end_key(Caller::Mdms, &register(&keys.current)?)
                .await?;
            record.current_key_version()
        }
        Err(e) => return Err(e.into()),
    };
    if rotate {
        let next = HeadEndSecretKey::generate(&mut OsRng).map_err(|e| anyhow!("{e}"))?;
        let request = register(&next)?;
        // Saved before the ledger hears of it: a lost commit status never leaves the ledger
        // naming a key nobody holds.
        keys.pending = Some(next);
        keys.save()?;
        let record = client
            .rotate_head_end_key(Caller::Administrator, &request)
            .await?;
        keys.promote()?;
        version = record.current_key_version();
        eprintln!("rotated the head-end key to version {version}");
    }
    Ok(version)
}

/// Loads or makes the meters, provisions (bound to their keys) and registers those the ledger
/// does not know yet, like `meter-sim run`.
pub async fn prepare_meters<L: Ledger + ?Sized>(
    client: &Client<'_, L>,
    state: &StateDir,
    cfg: &HeadEndConfig,
) -> Result<Vec<Meter>> {
    let ids = crate::run::meter_ids(&cfg.meter_prefix, cfg.meters)?;
    let mut meters = crate::run::load_meters(
        state,
        &ids,
        cfg.fresh_ledger,
        &crate::runtime::MeterRuntime::native(),
        &mut OsRng,
    )?;
    let messages = crate::observe::Terminal::new(false);
    crate::run::provision_new_meters(client, &mut meters, &messages).await?;
    for m in &meters {
        state.save_meter(m)?;
    }
    let identities = client.ledger().concentrator_identities().max(1);
    let mut registered = 0;
    for (i, m) in meters.iter_mut().enumerate() {
        if m.registered {
            continue;
        }
        let timestamp = m.next_timestamp(now());
        let request = RegistrationRequest::build(&m.key, m.hid, timestamp)
            .map_err(|e| anyhow!("{e}"))?
            .encode();
        match client
            .register_meter(Caller::Concentrator(i % identities), &request)
            .await
        {
            Ok(_) => {}
            // Revoked by an earlier run: it stays on the ledger, revoked, with its key.
            Err(e) if e.code() == Some(ErrorCode::Revoked) => {}
            Err(e) => return Err(e).with_context(|| format!("registering meter {}", m.id)),
        }
        m.registered = true;
        registered += 1;
        state.save_meter(m)?;
    }
    if registered > 0 {
        eprintln!("registered {registered} meters through concentrators");
    }
    Ok(meters)
}

/// A short name for why the head-end refused a connection (the report's keys).
pub fn refusal_reason(reason: &ConnectionError) -> &'static str {
    match reason {
        ConnectionError::Handshake(HandshakeError::UnknownMeter) => "unknown_meter",
        ConnectionError::Handshake(HandshakeError::MeterRevoked) => "revoked",
        ConnectionError::Handshake(HandshakeError::MeterKeyChanged { .. }) => "key_changed",
        ConnectionError::Handshake(HandshakeError::ClockSkew { .. }) => "clock_skew",
        ConnectionError::Handshake(HandshakeError::Authentication) => "authentication",
        ConnectionError::KeyNoLongerValid => "key_no_longer_valid",
        _ => "other",
    }
}

/// One simulated meter's session: handshake, then `messages` readings each answered by a
/// command. Returns the handshake time and the commands received.
async fn meter_session(
    address: SocketAddr,
    key: MeterSecretKey,
    hid: Hid,
    head_end: HeadEndIdentity,
    messages: usize,
) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let mut client = MeterClient::connect(address, key, hid, head_end, now()).await?;
    let handshake = started.elapsed();
    let mut commands = 0;
    for n in 0..messages {
        let reading = format!("reading {n} of {hid}");
        client.send(reading.as_bytes()).await?;
        let command = client.receive().await?;
        if command != [b"ack:".as_slice(), reading.as_bytes()].concat() {
            bail!("meter {hid}: command {n} is not the answer to its reading");
        }
        commands += 1;
    }
    Ok((handshake, commands))
}

/// The administrator revokes the first `count` meters (their sessions must be refused).
async fn revoke_first<L: Ledger>(
    client: &Client<'_, L>,
    meters: &[Meter],
    count: usize,
) -> Result<Vec<Hid>> {
    let revoked: Vec<Hid> = meters.iter().take(count).map(|m| m.hid).collect();
    if !revoked.is_empty() {
        eprintln!("revoking {} meters as the administrator", revoked.len());
        for hid in &revoked {
            client.revoke_meter(Caller::Administrator, *hid).await?;
        }
    }
    Ok(revoked)
}

/// A meter's session: its HID, and its handshake time and commands received (or why it failed).
type SessionOutcome = (Hid, Result<(Duration, usize)>);

/// Every meter opens a session, and so do `cfg.unknown` meters the ledger does not know
/// (impostors, whose HIDs are returned).
fn spawn_sessions(
    address: SocketAddr,
    identity: HeadEndIdentity,
    meters: &[Meter],
    cfg: &HeadEndConfig,
) -> Result<(JoinSet<SessionOutcome>, Vec<Hid>)> {
    let messages = cfg.messages;
    let mut sessions = JoinSet::new();
    for m in meters {
        let (key, hid) = (m.key.clone(), m.hid);
        sessions.spawn(async move {
            (
                hid,
                meter_session(address, key, hid, identity, messages).await,
            )
        });
    }
    let mut impostors = Vec::new();
    for i in 0..cfg.unknown {
        let hid = Hid::from_meter_id(format!("{}-impostor-{i}", cfg.meter_prefix));
        impostors.push(hid);
        let key = MeterSecretKey::generate(&mut OsRng).map_err(|e| anyhow!("{e}"))?;
        sessions.spawn(async move {
            (
                hid,
                meter_session(address, key, hid, identity, messages).await,
            )
        });
    }
    Ok((sessions, impostors))
}

/// Waits for every session and counts them into `report`; returns the meters whose session
/// failed.
async fn collect_sessions(
    mut sessions: JoinSet<SessionOutcome>,
    report: &mut HeadEndReport,
    messages: usize,
    started: Instant,
) -> Result<Vec<(Hid, anyhow::Error)>> {
    let mut handshakes = Vec::new();
    let mut failed_meters = Vec::new();
    while let Some(joined) = sessions.join_next().await {
        let (hid, outcome) = joined.context("a meter task failed")?;
        match outcome {
            Ok((handshake, commands)) => {
                report.established += 1;
                report.messages += messages;
                report.commands += commands;
                handshakes.push(handshake);
            }
            Err(e) => failed_meters.push((hid, e)),
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.sessions_per_s = if report.elapsed_s > 0.0 {
        report.established as f64 / report.elapsed_s
    } else {
        0.0
    };
    report.handshake = Latency::from_samples(handshakes);
    Ok(failed_meters)
}

/// The head-end's application: answers every reading with a sealed command; counts refusals by
/// reason until the server stops.
async fn route(
    commands: Commands,
    mut events: tokio::sync::mpsc::Receiver<ServerEvent>,
) -> BTreeMap<String, usize> {
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(event) = events.recv().await {
        match event {
            ServerEvent::Message { meter, payload } => {
                let command = [b"ack:".as_slice(), &payload].concat();
                if let Err(e) = commands.send(meter, command).await {
                    eprintln!("head-end: {e}");
                }
            }
            // A refused handshake never authenticated its meter: the head-end knows why, not
            // (for sure) who.
            ServerEvent::Refused { reason, .. } => {
                *refused
                    .entry(refusal_reason(&reason).to_owned())
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    refused
}

/// Runs the head-end and the meters; returns the report.
pub async fn run<L: Ledger>(
    ledger: Arc<L>,
    state: &StateDir,
    service_state: &StateDir,
    cfg: &HeadEndConfig,
) -> Result<HeadEndReport> {
    let client = Client::new(&*ledger);
    let mut keys = HeadEndKeys::load_or_create(service_state, &cfg.head_end_id)?;
    if cfg.fresh_ledger {
        keys.pending = None;
    }
    let key_version = prepare_head_end(&client, &mut keys, cfg.rotate_key).await?;
    let meters = prepare_meters(&client, state, cfg).await?;
    let revoked = revoke_first(&client, &meters, cfg.revoke).await?;

    // The head-end: its copy of the ledger's registry, then the socket.
    let directory = Arc::new(LedgerDirectory::new());
    let listed = directory.sync(&client, Caller::Mdms).await?;
    let head_end = HeadEnd::new(
        keys.id.hid(),
        keys.current.clone(),
        HeadEndPolicy::default(),
    );
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let address = listener.local_addr()?;
    let (commands, events, server) =
        serve(listener, head_end, directory.clone(), Arc::new(SystemClock));
    let router = tokio::spawn(route(commands, events));

    // Every meter reads the head-end's key from the ledger through its concentrator.
    let (identity, _) = client
        .head_end_identity(Caller::Concentrator(0))
        .await?
        .ok_or_else(|| anyhow!("the ledger holds no head-end key"))?;
    eprintln!(
        "head-end {} (key version {key_version}) on {address}; {} meters open sessions",
        identity.id,
        meters.len() + cfg.unknown
    );
    let started = Instant::now();
    let (sessions, impostors) = spawn_sessions(address, identity, &meters, cfg)?;
    let mut report = HeadEndReport {
        mode: ledger.mode().to_owned(),
        head_end: identity.id.to_string(),
        head_end_key_version: key_version,
        listen: address.to_string(),
        meters: meters.len() + cfg.unknown,
        directory: listed,
        ..HeadEndReport::default()
    };
    let failed_meters = collect_sessions(sessions, &mut report, cfg.messages, started).await?;
    // Every connection has ended, so the head-end has reported every refusal; stop it.
    server.abort();
    report.refused = router.await.context("the head-end's router failed")?;
    for (hid, error) in &failed_meters {
        if revoked.contains(hid) || impostors.contains(hid) {
            report.refused_expected += 1;
        } else {
            eprintln!("meter {hid}: {error:#}");
        }
    }
    Ok(report)
}
