//! Group keys (issue 13) in the simulator: a neighbourhood's meters and the head-end in one MLS
//! group whose Delivery Service is the ledger (embedded or Fabric). The head-end creates the group,
//! adds, removes and updates members and multicasts demand-response commands; every member learns
//! each commit from the ledger (`GetGroupCommits`) and decrypts the commands, and a removed member,
//! which keeps its whole state, decrypts none.
//!
//! The MLS state lives in memory for one `meter-sim group` run (mls-rs keeps it there), so one run
//! is one script of steps; the group authority's secret is kept in a file so that later runs
//! against the same ledger can issue credentials.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bcami_api::{ErrorCode, GroupId, ProvisionEntry};
use bcami_client::{Caller, Client, Ledger};
use bcami_group::{
    CommitOut, GroupAuthority, GroupMember, HidCredential, MemberKeys, Processed, Timestamp,
};
use bcami_sdk::{GroupCredentialRequest, Hid, MeterSecretKey, RegistrationRequest};

/// Who relays the meters' calls.
const METERS: Caller = Caller::Concentrator(0);
/// The head-end is a Utility client (the MDMS role).
const HEAD_END: Caller = Caller::Mdms;
/// Commits retried after losing the epoch.
const ATTEMPTS: usize = 5;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn now_secs() -> Timestamp {
    now_ms() / 1000
}

/// Loads the group authority's secret from `path`, or makes one and stores it there.
pub fn load_or_make_authority(path: &Path) -> Result<GroupAuthority> {
    if let Ok(bytes) = std::fs::read(path) {
        return GroupAuthority::from_secret_bytes(&bytes)
            .map_err(|e| anyhow!("{}: not a group authority key: {e}", path.display()));
    }
    let authority = GroupAuthority::generate()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, authority.to_secret_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(authority)
}

/// What one multicast reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Members that decrypted it, with the sender they saw.
    pub decrypted: Vec<(Hid, Hid)>,
    /// Members (current or removed) that could not decrypt it.
    pub refused: Vec<Hid>,
}

/// A multicast, and whether it reached exactly the group's current members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multicast {
    /// The message the head-end sent.
    pub ciphertext: Vec<u8>,
    /// Who decrypted it and who could not.
    pub delivery: Delivery,
    /// The meters that decrypted it, sorted.
    pub decrypted: Vec<Hid>,
    /// The group's members on the ledger when it was sent (the head-end aside), sorted.
    pub members: Vec<Hid>,
    /// Every meter that decrypted it saw the head-end as its sender.
    pub from_head_end: bool,
}

impl Multicast {
    /// Exactly the current members decrypted it, each from the head-end.
    pub fn reached_exactly_the_members(&self) -> bool {
        self.decrypted == self.members && self.from_head_end
    }
}

/// A meter of the simulation: its BC-AMI key and its group member.
pub struct SimMeter {
    /// Its BC-AMI key.
    pub key: MeterSecretKey,
    /// Its group member (state kept after a removal).
    pub member: GroupMember,
}

/// The head-end and the meters of one group on a ledger.
pub struct GroupSim<'a, L: ?Sized> {
    client: Client<'a, L>,
    authority: GroupAuthority,
    /// The group.
    pub group_id: GroupId,
    /// The head-end's HID.
    pub head_end_hid: Hid,
    /// The head-end's member.
    pub head_end: GroupMember,
    /// Meters by HID (members, removed ones and ones never added).
    pub meters: BTreeMap<Hid, SimMeter>,
    /// Latency of each accepted commit on the ledger (submit to committed), seconds.
    pub commit_latencies: Vec<f64>,
}

impl<'a, L: Ledger + ?Sized> GroupSim<'a, L> {
    /// Sets the group authority on the ledger (or checks it is ours), makes sure the head-end of
    /// `head_end_keys` is registered (as `meter-sim headend` does), and gives it a group
    /// credential.
    pub async fn new(
        ledger: &'a L,
        authority: GroupAuthority,
        group_id: &[u8],
        head_end_keys: &mut crate::headend::HeadEndKeys,
    ) -> Result<Self> {
        let client = Client::new(ledger);
        let ours = authority.public_key();
        match client.group_authority(Caller::Administrator).await {
            Ok(record) => {
                use base64::Engine as _;
                let have = base64::engine::general_purpose::STANDARD
                    .decode(&record.authority_key)
                    .unwrap_or_default();
                if have != ours.as_bytes() {
                    bail!("the ledger's group authority is another key than ours");
                }
            }
            Err(e) if e.code() == Some(ErrorCode::NoGroupAuthority) => {
                client
                    .set_group_authority(Caller::Administrator, ours.as_bytes())
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        // The network's one head-end (`meter-sim headend`'s keys, provisioned and registered
        // here on a fresh ledger).
        crate::headend::prepare_head_end(&client, head_end_keys, false).await?;
        let head_end_hid = client.head_end(Caller::Administrator).await?.record.hid;
        let keys = MemberKeys::generate()?;
        let credential = authority.issue_for_key(head_end_hid, keys.public_bytes())?;
        client
            .issue_group_credential(
                Caller::Administrator,
                head_end_hid,
                keys.public_bytes(),
                &credential.to_bytes(),
            )
            .await?;
        let head_end = GroupMember::new(keys, &credential, ours)?;
        let group_id =
            GroupId::new(group_id).ok_or_else(|| anyhow!("a group id is 1 to 32 bytes"))?;
        Ok(Self {
            client,
            authority,
            group_id,
            head_end_hid,
            head_end,
            meters: BTreeMap::new(),
            commit_latencies: Vec::new(),
        })
    }

    /// The client.
    pub fn client(&self) -> Client<'a, L> {
        self.client
    }

    /// Provisions and registers `n` fresh meters, each requesting a group credential (signed with
    /// its BC-AMI key), the authority issuing it, and one key package published. Their HIDs.
    pub async fn enroll_meters(&mut self, prefix: &str, n: usize) -> Result<Vec<Hid>> {
        let stamp = now_ms();
        let mut fresh = Vec::with_capacity(n);
        for i in 0..n {
            let hid = Hid::from_meter_id(format!("{prefix}-{stamp}-{i}"));
            fresh.push((hid, MeterSecretKey::generate(&mut rand_core::OsRng)?));
        }
        let entries: Vec<ProvisionEntry> = fresh
            .iter()
            .map(|(h, _)| ProvisionEntry::Unbound(*h))
            .collect();
        self.client
            .provision_meters(Caller::Administrator, &entries)
            .await?;
        let mut hids = Vec::with_capacity(n);
        for (hid, key) in fresh {
            let ts = bcami_sdk::Timestamp::from_unix_millis(now_ms());
            let reg = RegistrationRequest::build(&key, hid, ts)?;
            self.client.register_meter(METERS, &reg.encode()).await?;
            let member = self.credential(hid, &key).await?;
            self.meters.insert(hid, SimMeter { key, member });
            self.publish_key_package(hid).await?;
            hids.push(hid);
        }
        Ok(hids)
    }

    async fn credential(&self, hid: Hid, key: &MeterSecretKey) -> Result<GroupMember> {
        let keys = MemberKeys::generate()?;
        let public: [u8; 32] = keys
            .public_bytes()
            .try_into()
            .map_err(|_| anyhow!("an MLS signature key is 32 bytes"))?;
        let ts = bcami_sdk::Timestamp::from_unix_millis(now_ms().saturating_add(1));
        let req = GroupCredentialRequest::build(key, hid, ts, &public)?;
        self.client
            .request_group_credential(METERS, &req.encode())
            .await?;
        // The Utility's authority service: certifies the key the ledger recorded.
        let record = self
            .client
            .group_credential(Caller::Administrator, hid)
            .await?;
        use base64::Engine as _;
        let recorded = base64::engine::general_purpose::STANDARD
            .decode(&record.credential.signature_key)
            .map_err(|_| anyhow!("signatureKey is not base64"))?;
        let credential = self.authority.issue_for_key(hid, &recorded)?;
        self.client
            .issue_group_credential(
                Caller::Administrator,
                hid,
                &recorded,
                &credential.to_bytes(),
            )
            .await?;
        // The meter fetches its credential and checks it.
        let issued = self.client.group_credential(METERS, hid).await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(issued.credential.credential.as_deref().unwrap_or_default())
            .map_err(|_| anyhow!("credential is not base64"))?;
        let cred = HidCredential::from_bytes(&bytes)?;
        Ok(GroupMember::new(keys, &cred, self.authority.public_key())?)
    }

    /// Publishes one fresh key package of the meter.
    pub async fn publish_key_package(&self, hid: Hid) -> Result<Vec<u8>> {
        let meter = self
            .meters
            .get(&hid)
            .ok_or_else(|| anyhow!("no meter {hid}"))?;
        let kp = meter.member.key_package(now_secs())?;
        self.client
            .publish_key_packages(METERS, std::slice::from_ref(&kp))
            .await?;
        Ok(kp)
    }

    /// The head-end creates the group on the ledger.
    pub async fn create(&mut self) -> Result<()> {
        let info = self
            .head_end
            .create_group(self.group_id.as_bytes(), now_secs())?;
        self.client.create_group(HEAD_END, &info).await?;
        Ok(())
    }

    async fn head_end_commit<F>(&mut self, make: F) -> Result<bcami_api::GroupCommitResponse>
    where
        F: FnMut(&mut GroupMember) -> Result<CommitOut, bcami_group::GroupError> + Send,
    {
        let start = Instant::now();
        let response = self
            .client
            .commit_group(
                HEAD_END,
                &self.group_id,
                &mut self.head_end,
                now_secs(),
                ATTEMPTS,
                make,
            )
            .await?;
        self.commit_latencies.push(start.elapsed().as_secs_f64());
        Ok(response)
    }

    /// The head-end adds these meters (one commit, their published key packages); each joins
    /// from the ledger's Welcome, and the other members process the commit from the ledger.
    pub async fn add(&mut self, hids: &[Hid]) -> Result<u64> {
        let mut kps = Vec::with_capacity(hids.len());
        for hid in hids {
            kps.push(self.client.key_package(HEAD_END, *hid).await?);
        }
        let response = self
            .head_end_commit(|m| m.commit_add(&kps, now_secs()))
            .await?;
        for hid in hids {
            let meter = self
                .meters
                .get_mut(hid)
                .ok_or_else(|| anyhow!("no meter {hid}"))?;
            self.client
                .join_group(METERS, &self.group_id, &mut meter.member, now_secs())
                .await?;
        }
        self.sync_members().await?;
        Ok(response.epoch)
    }

    /// The head-end removes these members (each revoked in BC-AMI, or approved for removal by
    /// the administrator first); the rest process the commit from the ledger.
    pub async fn remove(&mut self, hids: &[Hid]) -> Result<u64> {
        let list = hids.to_vec();
        let response = self
            .head_end_commit(|m| m.commit_remove(&list, now_secs()))
            .await?;
        self.sync_members().await?;
        Ok(response.epoch)
    }

    /// The administrator approves removing `hid` (`ProposeGroupRemoval`).
    pub async fn approve_removal(&self, hid: Hid) -> Result<()> {
        self.client
            .propose_group_removal(Caller::Administrator, &self.group_id, hid)
            .await?;
        Ok(())
    }

    /// Member `hid` (or the head-end) commits an update (fresh path secrets); the others process
    /// the commit from the ledger.
    pub async fn update(&mut self, hid: Option<Hid>) -> Result<u64> {
        let epoch = match hid {
            None => {
                self.head_end_commit(|m| m.commit_update(now_secs()))
                    .await?
                    .epoch
            }
            Some(hid) => {
                let meter = self
                    .meters
                    .get_mut(&hid)
                    .ok_or_else(|| anyhow!("no meter {hid}"))?;
                let start = Instant::now();
                let r = self
                    .client
                    .commit_group(
                        METERS,
                        &self.group_id,
                        &mut meter.member,
                        now_secs(),
                        ATTEMPTS,
                        |m| m.commit_update(now_secs()),
                    )
                    .await?;
                self.commit_latencies.push(start.elapsed().as_secs_f64());
                r.epoch
            }
        };
        self.sync_members().await?;
        Ok(epoch)
    }

    /// The current members of the group on the ledger.
    pub async fn ledger_members(&self) -> Result<Vec<Hid>> {
        Ok(self
            .client
            .group(Caller::Administrator, &self.group_id)
            .await?
            .members)
    }

    /// Every current member (and the head-end) catches up with the ledger; then all must agree
    /// on the epoch authenticator.
    pub async fn sync_members(&mut self) -> Result<()> {
        let members = self.ledger_members().await?;
        self.client
            .catch_up(HEAD_END, &self.group_id, &mut self.head_end, now_secs())
            .await?;
        let expected = self.head_end.epoch_authenticator()?;
        for hid in members.iter().filter(|h| **h != self.head_end_hid) {
            let meter = self
                .meters
                .get_mut(hid)
                .ok_or_else(|| anyhow!("member {hid} is not one of ours"))?;
            self.client
                .catch_up(METERS, &self.group_id, &mut meter.member, now_secs())
                .await?;
            if meter.member.epoch_authenticator()? != expected {
                bail!("member {hid} disagrees on the epoch authenticator");
            }
        }
        Ok(())
    }

    /// The head-end multicasts `command`; every meter of the simulation (members, removed
    /// members with their old state, meters never added) tries to decrypt it.
    pub fn multicast(&mut self, command: &[u8]) -> Result<(Vec<u8>, Delivery)> {
        let ciphertext = self.head_end.send(command)?;
        let mut delivery = Delivery {
            decrypted: Vec::new(),
            refused: Vec::new(),
        };
        for (hid, meter) in &mut self.meters {
            // A meter that was never in a group has no state to try with.
            let result = meter.member.process(&ciphertext, now_secs());
            match result {
                Ok(Processed::Application { sender, data }) if data == command => {
                    delivery.decrypted.push((*hid, sender));
                }
                _ => delivery.refused.push(*hid),
            }
        }
        Ok((ciphertext, delivery))
    }

    /// [`GroupSim::multicast`], compared with the group's members on the ledger.
    pub async fn multicast_to_members(&mut self, command: &[u8]) -> Result<Multicast> {
        let (ciphertext, delivery) = self.multicast(command)?;
        let mut members = self.ledger_members().await?;
        members.retain(|h| *h != self.head_end_hid);
        members.sort();
        let mut decrypted: Vec<Hid> = delivery.decrypted.iter().map(|(h, _)| *h).collect();
        decrypted.sort();
        let from_head_end = delivery
            .decrypted
            .iter()
            .all(|(_, s)| *s == self.head_end_hid);
        Ok(Multicast {
            ciphertext,
            delivery,
            decrypted,
            members,
            from_head_end,
        })
    }
}

/// One step of a `meter-sim group` script. Meters are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `create`: the head-end creates the group.
    Create,
    /// `add` (every meter not in the group) or `add:1,2`.
    Add(Option<Vec<usize>>),
    /// `remove:1,2`: the administrator approves, the head-end removes.
    Remove(Vec<usize>),
    /// `revoke:1`: the meter is revoked in BC-AMI; the head-end's next commit removes it.
    Revoke(Vec<usize>),
    /// `update` (the head-end) or `update:1` (a meter).
    Update(Option<usize>),
    /// `send:TEXT`: the head-end multicasts a demand-response command.
    Send(String),
}

fn indices(list: &str) -> Result<Vec<usize>> {
    list.split(',')
        .map(|t| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|i| *i >= 1)
                .ok_or_else(|| anyhow!("{t:?} is not a meter number (1, 2, ...)"))
        })
        .collect()
}

impl std::str::FromStr for Step {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (verb, arg) = match s.split_once(':') {
            Some((v, a)) => (v, Some(a)),
            None => (s, None),
        };
        Ok(match (verb, arg) {
            ("create", None) => Step::Create,
            ("add", None) => Step::Add(None),
            ("add", Some(a)) => Step::Add(Some(indices(a)?)),
            ("remove", Some(a)) => Step::Remove(indices(a)?),
            ("revoke", Some(a)) => Step::Revoke(indices(a)?),
            ("update", None) => Step::Update(None),
            ("update", Some(a)) => Step::Update(Some(
                *indices(a)?
                    .first()
                    .ok_or_else(|| anyhow!("update: one meter"))?,
            )),
            ("send", Some(text)) if !text.is_empty() => Step::Send(text.to_owned()),
            _ => bail!(
                "{s:?} is not a step: create, add, add:1,2, remove:1, revoke:1, update, update:1, send:TEXT"
            ),
        })
    }
}

/// Runs a script of steps on `ledger` with `meters` fresh meters; prints what each step did.
/// Returns whether every multicast reached exactly the group's current members.
pub async fn script<L: Ledger + ?Sized>(
    ledger: &L,
    authority: GroupAuthority,
    group_id: &[u8],
    head_end_keys: &mut crate::headend::HeadEndKeys,
    meters: usize,
    steps: &[Step],
) -> Result<bool> {
    let mut sim = GroupSim::new(ledger, authority, group_id, head_end_keys).await?;
    let hids = sim.enroll_meters("SM-GRP", meters).await?;
    println!(
        "group {}: head-end {}, {} meters enrolled (credential requested, issued, key package published)",
        sim.group_id,
        sim.head_end_hid,
        hids.len()
    );
    let mut ok = true;
    for step in steps {
        ok &= run_step(&mut sim, &hids, step).await?;
    }
    if !sim.commit_latencies.is_empty() {
        let mut l = sim.commit_latencies.clone();
        l.sort_by(f64::total_cmp);
        println!(
            "commits: {}, latency on the ledger (make, submit, committed) median {:.3} s, max {:.3} s",
            l.len(),
            l[l.len() / 2],
            l[l.len() - 1]
        );
    }
    Ok(ok)
}

/// The meters a step names by their 1-based numbers.
fn pick(hids: &[Hid], list: &[usize]) -> Result<Vec<Hid>> {
    list.iter()
        .map(|i| {
            i.checked_sub(1)
                .and_then(|i| hids.get(i))
                .copied()
                .ok_or_else(|| anyhow!("there are {} meters, no meter {i}", hids.len()))
        })
        .collect()
}

/// One step of a script; false if it was a multicast that did not reach exactly the members.
async fn run_step<L: Ledger + ?Sized>(
    sim: &mut GroupSim<'_, L>,
    hids: &[Hid],
    step: &Step,
) -> Result<bool> {
    match step {
        Step::Create => {
            sim.create().await?;
            println!("create: group {} at epoch 0", sim.group_id);
        }
        Step::Add(list) => {
            let members = sim.ledger_members().await?;
            let chosen = match list {
                Some(l) => pick(hids, l)?,
                None => hids
                    .iter()
                    .copied()
                    .filter(|h| !members.contains(h) && sim.meters[h].member.epoch().is_err())
                    .collect(),
            };
            let epoch = sim.add(&chosen).await?;
            println!("add: {} meter(s), epoch {epoch}", chosen.len());
        }
        Step::Remove(list) => {
            let chosen = pick(hids, list)?;
            for h in &chosen {
                sim.approve_removal(*h).await?;
            }
            let epoch = sim.remove(&chosen).await?;
            println!("remove: {} meter(s), epoch {epoch}", chosen.len());
        }
        Step::Revoke(list) => {
            let chosen = pick(hids, list)?;
            for h in &chosen {
                sim.client().revoke_meter(Caller::Administrator, *h).await?;
            }
            let epoch = sim.remove(&chosen).await?;
            println!(
                "revoke: {} meter(s) revoked in BC-AMI and removed by the next commit, epoch {epoch}",
                chosen.len()
            );
        }
        Step::Update(who) => {
            let who = match who {
                Some(i) => Some(pick(hids, &[*i])?[0]),
                None => None,
            };
            let epoch = sim.update(who).await?;
            println!("update: epoch {epoch}");
        }
        Step::Send(text) => return send_step(sim, hids, text).await,
    }
    Ok(true)
}

/// The head-end multicasts `text`; prints who decrypted it and whether that is exactly the
/// group's current members (the head-end itself aside).
async fn send_step<L: Ledger + ?Sized>(
    sim: &mut GroupSim<'_, L>,
    hids: &[Hid],
    text: &str,
) -> Result<bool> {
    let multicast = sim.multicast_to_members(text.as_bytes()).await?;
    let right = multicast.reached_exactly_the_members();
    let got = &multicast.decrypted;
    println!(
        "send: {:?} ({} bytes) decrypted by {} of {} meters, refused by {}: {}",
        text,
        multicast.ciphertext.len(),
        got.len(),
        hids.len(),
        multicast.delivery.refused.len(),
        if right {
            "exactly the current members"
        } else {
            "NOT exactly the current members"
        }
    );
    for (i, h) in hids.iter().enumerate() {
        let status = if got.contains(h) {
            "decrypted"
        } else {
            "cannot decrypt"
        };
        println!("  meter {:>3} {h}: {status}", i + 1);
    }
    Ok(right)
}
