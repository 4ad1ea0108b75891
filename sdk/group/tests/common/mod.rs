//! An in-memory model of the ledger (exactly one commit per epoch, stale epochs refused) and a
//! world of meters around it.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use bcami_group::{
    CommitOut, CommitReport, GroupAuthority, GroupError, GroupMember, Hid, MemberKeys,
    MembershipPolicy, Observer, Processed,
};

pub const T0: u64 = 1_780_000_000;

#[derive(Default)]
pub struct Registry {
    pub active: BTreeSet<Hid>,
    pub revoked: BTreeSet<Hid>,
    pub approved_removals: BTreeSet<Hid>,
    /// Published, unused key packages: KeyPackageRef -> HID.
    pub key_packages: BTreeMap<Vec<u8>, Hid>,
}

impl MembershipPolicy for Registry {
    fn is_active(&self, hid: &Hid) -> bool {
        self.active.contains(hid) && !self.revoked.contains(hid)
    }
    fn is_revoked(&self, hid: &Hid) -> bool {
        self.revoked.contains(hid)
    }
    fn key_package_published(&self, hid: &Hid, r: &[u8]) -> bool {
        self.key_packages.get(r) == Some(hid)
    }
    fn removal_approved(&self, hid: &Hid) -> bool {
        self.approved_removals.contains(hid)
    }
}

/// The ledger: the observer's stored state, the epoch, the commit log.
pub struct Ledger {
    pub observer: Observer,
    pub registry: Registry,
    pub state: Vec<u8>,
    pub epoch: u64,
    pub members: Vec<Hid>,
    /// commits[i] moved the group from epoch `first_epoch + i`.
    pub commits: Vec<Vec<u8>>,
    pub now: u64,
}

impl Ledger {
    /// A commit for `epoch`: refused if stale, else checked by the observer and stored.
    pub fn submit(&mut self, c: &CommitOut) -> Result<CommitReport, GroupError> {
        if c.epoch != self.epoch {
            return Err(GroupError::StaleEpoch {
                current: self.epoch,
                got: c.epoch,
            });
        }
        let tx_time = self.now + 1;
        let report =
            self.observer
                .validate_commit(&self.state, &c.commit, tx_time, &self.registry)?;
        self.now = tx_time;
        assert_eq!(report.epoch, self.epoch + 1, "one epoch per commit");
        for a in &report.added {
            self.registry.key_packages.remove(&a.key_package_ref);
        }
        for r in &report.removed {
            self.registry.approved_removals.remove(r);
        }
        self.state = report.state.clone();
        self.epoch = report.epoch;
        self.members = report.members.clone();
        self.commits.push(c.commit.clone());
        Ok(report)
    }

    pub fn publish(&mut self, kp: &[u8]) -> Result<Vec<u8>, GroupError> {
        let (hid, r) = self.observer.check_key_package(kp)?;
        self.registry.key_packages.insert(r.clone(), hid);
        Ok(r)
    }
}

/// The authority, the ledger, the current members and everyone who ever left (with their state).
pub struct World {
    pub authority: GroupAuthority,
    pub ledger: Ledger,
    pub members: BTreeMap<Hid, GroupMember>,
    pub former: Vec<(u64, GroupMember)>,
    pub head_end: Hid,
    next_meter: u64,
}

pub fn make_member(authority: &GroupAuthority, id: &str) -> GroupMember {
    let keys = MemberKeys::generate().unwrap();
    let cred = authority
        .issue(Hid::from_meter_id(id), &keys.public)
        .unwrap();
    GroupMember::new(keys, &cred, authority.public_key()).unwrap()
}

impl World {
    /// A group with the head-end alone, cap `cap`.
    pub fn new(cap: usize) -> Self {
        let authority = GroupAuthority::generate().unwrap();
        let mut head = make_member(&authority, "HEADEND-1");
        let head_end = head.hid();
        let mut registry = Registry::default();
        registry.active.insert(head_end);
        let observer = Observer::new(authority.public_key(), cap);
        let gi = head.create_group(b"NAN-7", T0).unwrap();
        let g = observer.create(&gi, T0, &registry).unwrap();
        assert_eq!(g.members, vec![head_end]);
        let ledger = Ledger {
            observer,
            registry,
            state: g.state,
            epoch: g.epoch,
            members: g.members,
            commits: Vec::new(),
            now: T0,
        };
        let mut members = BTreeMap::new();
        members.insert(head_end, head);
        Self {
            authority,
            ledger,
            members,
            former: Vec::new(),
            head_end,
            next_meter: 0,
        }
    }

    /// A new, provisioned meter (not in the group) with a published key package.
    pub fn new_meter(&mut self) -> (GroupMember, Vec<u8>) {
        self.next_meter += 1;
        let m = make_member(&self.authority, &format!("SM-{:04}", self.next_meter));
        self.ledger.registry.active.insert(m.hid());
        let kp = m.key_package(self.ledger.now).unwrap();
        self.ledger.publish(&kp).unwrap();
        (m, kp)
    }

    /// Every member except `except` processes the commit; a removed member moves to `former`.
    pub fn deliver(&mut self, commit: &[u8], except: Option<Hid>) {
        let now = self.ledger.now;
        let mut gone = Vec::new();
        for (hid, m) in self.members.iter_mut() {
            if Some(*hid) == except {
                continue;
            }
            match m.process(commit, now).unwrap() {
                Processed::Commit {
                    epoch,
                    removed_self,
                } => {
                    assert_eq!(epoch, self.ledger.epoch);
                    if removed_self {
                        gone.push(*hid);
                    }
                }
                other => panic!("expected a commit, got {other:?}"),
            }
        }
        for hid in gone {
            let m = self.members.remove(&hid).unwrap();
            self.former.push((self.ledger.epoch, m));
        }
    }

    /// `committer` commits `c`; the ledger takes it; everyone applies it.
    pub fn land(&mut self, committer: Hid, c: &CommitOut) -> Result<CommitReport, GroupError> {
        let report = self.ledger.submit(c)?;
        self.members
            .get_mut(&committer)
            .unwrap()
            .apply_pending_commit()
            .unwrap();
        self.deliver(&c.commit, Some(committer));
        Ok(report)
    }

    /// Adds a fresh meter, committed by `committer`; returns its HID.
    pub fn add(&mut self, committer: Hid) -> Hid {
        let (mut m, kp) = self.new_meter();
        let now = self.ledger.now;
        let c = self
            .members
            .get_mut(&committer)
            .unwrap()
            .commit_add(&[kp], now)
            .unwrap();
        let report = self.land(committer, &c).unwrap();
        assert_eq!(report.added.len(), 1);
        assert_eq!(report.added[0].hid, m.hid());
        let epoch = m
            .join(c.welcome.as_deref().unwrap(), self.ledger.now)
            .unwrap();
        assert_eq!(epoch, self.ledger.epoch);
        let hid = m.hid();
        self.members.insert(hid, m);
        hid
    }

    /// Revokes `target` on the ledger and has `committer` remove it.
    pub fn remove(&mut self, committer: Hid, target: Hid) {
        self.ledger.registry.revoked.insert(target);
        let now = self.ledger.now;
        let c = self
            .members
            .get_mut(&committer)
            .unwrap()
            .commit_remove(&[target], now)
            .unwrap();
        let report = self.land(committer, &c).unwrap();
        assert_eq!(report.removed, vec![target]);
        assert!(!self.members.contains_key(&target));
    }

    pub fn update(&mut self, committer: Hid) {
        let now = self.ledger.now;
        let c = self
            .members
            .get_mut(&committer)
            .unwrap()
            .commit_update(now)
            .unwrap();
        self.land(committer, &c).unwrap();
    }

    /// All members are at the ledger's epoch, with one epoch authenticator, and the ledger's
    /// member list is theirs.
    pub fn assert_agreement(&self) {
        let mut auth = None;
        for m in self.members.values() {
            assert_eq!(m.epoch().unwrap(), self.ledger.epoch);
            let a = m.epoch_authenticator().unwrap();
            match &auth {
                None => auth = Some(a),
                Some(x) => assert_eq!(x, &a, "members disagree on the epoch authenticator"),
            }
            let roster: BTreeSet<Hid> = m.members().unwrap().into_iter().collect();
            let ledger: BTreeSet<Hid> = self.ledger.members.iter().copied().collect();
            assert_eq!(roster, ledger);
        }
        let mine: BTreeSet<Hid> = self.members.keys().copied().collect();
        let ledger: BTreeSet<Hid> = self.ledger.members.iter().copied().collect();
        assert_eq!(mine, ledger);
    }
}
