//! Group properties on the in-memory ledger: each test fails if the property breaks.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use bcami_group::{GroupError, Hid, Processed};
use common::{World, make_member};
use proptest::prelude::*;

/// A recorded application message: its epoch and the members who were in the group then.
struct Sent {
    epoch: u64,
    bytes: Vec<u8>,
    data: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    Remove(u8),
    Update(u8),
    Message(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Add),
        2 => any::<u8>().prop_map(Op::Remove),
        2 => any::<u8>().prop_map(Op::Update),
        3 => any::<u8>().prop_map(Op::Message),
    ]
}

fn pick(w: &World, i: u8) -> Hid {
    let keys: Vec<Hid> = w.members.keys().copied().collect();
    keys[usize::from(i) % keys.len()]
}

/// Every current member decrypts `bytes` and attributes it to `sender`.
fn all_read(w: &mut World, sender: Hid, bytes: &[u8], data: &[u8]) {
    let now = w.ledger.now;
    for (hid, m) in w.members.iter_mut() {
        if *hid == sender {
            continue;
        }
        assert_eq!(
            m.process(bytes, now).unwrap(),
            Processed::Application {
                sender,
                data: data.to_vec()
            },
        );
    }
}

fn run(ops: Vec<Op>) {
    let mut w = World::new(64);
    let mut sent: Vec<Sent> = Vec::new();
    w.assert_agreement();
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::Add(i) => {
                let committer = pick(&w, i);
                let new = w.add(committer);
                // Backward secrecy: the newcomer's whole state reads nothing sent before it joined.
                let mut probe = w.members[&new].clone();
                let joined = w.ledger.epoch;
                for s in &sent {
                    assert!(s.epoch < joined);
                    assert!(
                        probe.process(&s.bytes, w.ledger.now).is_err(),
                        "newcomer read an old message"
                    );
                }
            }
            Op::Remove(i) => {
                if w.members.len() < 2 {
                    continue;
                }
                let target = pick(&w, i);
                if target == w.head_end {
                    continue;
                }
                w.remove(w.head_end, target);
            }
            Op::Update(i) => {
                let committer = pick(&w, i);
                w.update(committer);
            }
            Op::Message(i) => {
                let sender = pick(&w, i);
                let data = format!("DR command {n} from {sender}").into_bytes();
                let bytes = w.members.get_mut(&sender).unwrap().send(&data).unwrap();
                all_read(&mut w, sender, &bytes, &data);
                // Post-removal secrecy: nobody who left reads it, whatever it kept.
                let now = w.ledger.now;
                for (_, former) in w.former.iter_mut() {
                    assert!(
                        former.process(&bytes, now).is_err(),
                        "a removed member read a message"
                    );
                }
                sent.push(Sent {
                    epoch: w.ledger.epoch,
                    bytes,
                    data,
                });
            }
        }
        w.assert_agreement();
    }
    // The removed members also fail to follow any commit after their removal.
    let now = w.ledger.now;
    for (removed_at, former) in w.former.iter_mut() {
        let first = usize::try_from(*removed_at).unwrap();
        for c in w.ledger.commits.iter().skip(first) {
            assert!(
                former.process(c, now).is_err(),
                "a removed member processed a later commit"
            );
        }
    }
    assert!(sent.iter().all(|s| !s.data.is_empty()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_keep_the_group_properties(ops in proptest::collection::vec(op(), 1..14)) {
        run(ops);
    }
}

#[test]
fn a_fixed_sequence_keeps_the_group_properties() {
    run(vec![
        Op::Add(0),
        Op::Add(1),
        Op::Message(1),
        Op::Add(2),
        Op::Remove(1),
        Op::Message(0),
        Op::Update(2),
        Op::Message(2),
        Op::Remove(2),
        Op::Message(0),
    ]);
}

#[test]
fn post_compromise_security_after_an_update() {
    let mut w = World::new(16);
    let a = w.add(w.head_end);
    let b = w.add(w.head_end);
    // The attacker copies a's whole state.
    let mut stolen = w.members[&a].clone();
    // Control: with a's state the attacker reads the group now.
    let m1 = w.members.get_mut(&b).unwrap().send(b"before").unwrap();
    assert_eq!(
        stolen.process(&m1, w.ledger.now).unwrap(),
        Processed::Application {
            sender: b,
            data: b"before".to_vec()
        }
    );
    all_read(&mut w, b, &m1, b"before");
    // a heals with an update; from then on the stolen state reads nothing.
    w.update(a);
    w.assert_agreement();
    let c = w.ledger.commits.last().unwrap().clone();
    assert!(stolen.process(&c, w.ledger.now).is_err());
    let m2 = w.members.get_mut(&b).unwrap().send(b"after").unwrap();
    assert!(stolen.process(&m2, w.ledger.now).is_err());
    w.update(b);
    let m3 = w
        .members
        .get_mut(&w.head_end.clone())
        .unwrap()
        .send(b"later")
        .unwrap();
    assert!(stolen.process(&m3, w.ledger.now).is_err());
    assert_ne!(
        stolen.export_secret(b"dr", b"", 32).unwrap(),
        w.members[&a].export_secret(b"dr", b"", 32).unwrap()
    );
}

#[test]
fn a_member_cannot_send_as_the_head_end() {
    let mut w = World::new(16);
    let a = w.add(w.head_end);
    let b = w.add(w.head_end);
    let he = w.head_end;
    let real = w.members.get_mut(&he).unwrap().send(b"shed 2 kW").unwrap();
    all_read(&mut w, he, &real, b"shed 2 kW");
    let fake = w.members.get_mut(&a).unwrap().send(b"shed 2 kW").unwrap();
    // b attributes a's message to a, never to the head-end.
    let now = w.ledger.now;
    assert_eq!(
        w.members.get_mut(&b).unwrap().process(&fake, now).unwrap(),
        Processed::Application {
            sender: a,
            data: b"shed 2 kW".to_vec()
        }
    );
    // A member that claims the head-end's HID with its own key has no credential for it: the
    // authority signed (HID, key) and an impostor's key is not the head-end's.
    let keys = bcami_group::MemberKeys::generate().unwrap();
    let other_authority = bcami_group::GroupAuthority::generate().unwrap();
    let forged = other_authority.issue(he, &keys.public).unwrap();
    assert!(matches!(
        bcami_group::GroupMember::new(keys, &forged, w.authority.public_key()),
        Err(GroupError::InvalidCredential)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    /// Any change of a head-end PrivateMessage is rejected (never accepted with other content or
    /// another sender).
    #[test]
    fn a_changed_private_message_is_rejected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut w, msg) = tampering_world();
        let mut bad = msg.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        let now = w.ledger.now;
        let b = *w.members.keys().find(|h| **h != w.head_end).unwrap();
        prop_assert!(w.members.get_mut(&b).unwrap().process(&bad, now).is_err());
    }
}

fn tampering_world() -> (World, Vec<u8>) {
    let mut w = World::new(8);
    w.add(w.head_end);
    let he = w.head_end;
    let msg = w.members.get_mut(&he).unwrap().send(b"tariff 3").unwrap();
    (w, msg)
}

#[test]
fn two_commits_for_one_epoch_exactly_one_lands_and_the_loser_catches_up() {
    let mut w = World::new(16);
    let a = w.add(w.head_end);
    let b = w.add(w.head_end);
    let now = w.ledger.now;
    let ca = w.members.get_mut(&a).unwrap().commit_update(now).unwrap();
    let cb = w.members.get_mut(&b).unwrap().commit_update(now).unwrap();
    assert_eq!(ca.epoch, cb.epoch);
    let epoch = w.ledger.epoch;
    w.land(a, &ca)
        .unwrap_or_else(|_| panic!("first commit refused"));
    assert_eq!(w.ledger.epoch, epoch + 1);
    // The loser is refused by the ledger (stale) and, bypassing the ledger's epoch check, by the
    // observer too (the state has moved on).
    assert!(matches!(
        w.ledger.submit(&cb),
        Err(GroupError::StaleEpoch { .. })
    ));
    let state = w.ledger.state.clone();
    assert!(matches!(
        w.ledger
            .observer
            .validate_commit(&state, &cb.commit, now, &w.ledger.registry),
        Err(GroupError::StaleEpoch { .. })
    ));
    assert_eq!(w.ledger.epoch, epoch + 1);
    // land() delivered a's commit to b, whose own pending commit for that epoch is now moot.
    w.assert_agreement();
    // b recommits in the new epoch and that lands.
    let now = w.ledger.now;
    let cb2 = w.members.get_mut(&b).unwrap().commit_update(now).unwrap();
    w.land(b, &cb2).unwrap();
    w.assert_agreement();
}

#[test]
fn unauthorized_adds_are_refused() {
    let mut w = World::new(16);
    let he = w.head_end;
    // A meter that is not active on the ledger.
    let outsider = make_member(&w.authority, "SM-UNPROVISIONED");
    let kp = outsider.key_package(w.ledger.now).unwrap();
    w.ledger.publish(&kp).unwrap();
    let now = w.ledger.now;
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_add(std::slice::from_ref(&kp), now)
        .unwrap();
    assert!(
        matches!(w.ledger.submit(&c), Err(GroupError::UnauthorizedAdd(h)) if h == outsider.hid())
    );
    w.members
        .get_mut(&he)
        .unwrap()
        .discard_pending_commit()
        .unwrap();
    // An active meter whose key package was never published.
    let m = make_member(&w.authority, "SM-NOKP");
    w.ledger.registry.active.insert(m.hid());
    let kp = m.key_package(w.ledger.now).unwrap();
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_add(&[kp], now)
        .unwrap();
    assert!(
        matches!(w.ledger.submit(&c), Err(GroupError::KeyPackageNotPublished(h)) if h == m.hid())
    );
    w.members
        .get_mut(&he)
        .unwrap()
        .discard_pending_commit()
        .unwrap();
    // A revoked meter.
    let (r, kp) = w.new_meter();
    w.ledger.registry.revoked.insert(r.hid());
    let now = w.ledger.now;
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_add(&[kp], now)
        .unwrap();
    assert!(matches!(w.ledger.submit(&c), Err(GroupError::UnauthorizedAdd(h)) if h == r.hid()));
    w.members
        .get_mut(&he)
        .unwrap()
        .discard_pending_commit()
        .unwrap();
    // A credential from another authority is refused when published.
    let other = bcami_group::GroupAuthority::generate().unwrap();
    let keys = bcami_group::MemberKeys::generate().unwrap();
    let cred = other
        .issue(Hid::from_meter_id("SM-FOREIGN"), &keys.public)
        .unwrap();
    let foreign = bcami_group::GroupMember::new(keys, &cred, other.public_key()).unwrap();
    let kp = foreign.key_package(w.ledger.now).unwrap();
    assert!(matches!(
        w.ledger.publish(&kp),
        Err(GroupError::InvalidCredential)
    ));
    // Nothing landed.
    assert!(w.ledger.commits.is_empty());
    w.assert_agreement();
}

#[test]
fn key_package_reuse_is_refused() {
    let mut w = World::new(16);
    let he = w.head_end;
    let (mut m, kp) = w.new_meter();
    let now = w.ledger.now;
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_add(std::slice::from_ref(&kp), now)
        .unwrap();
    w.land(he, &c).unwrap();
    m.join(c.welcome.as_deref().unwrap(), w.ledger.now).unwrap();
    let hid = m.hid();
    w.members.insert(hid, m);
    // Removed by an administrator's approval (not revoked), then re-added with the same package.
    w.ledger.registry.approved_removals.insert(hid);
    let now = w.ledger.now;
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_remove(&[hid], now)
        .unwrap();
    assert_eq!(w.land(he, &c).unwrap().removed, vec![hid]);
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_add(&[kp], now)
        .unwrap();
    assert!(matches!(w.ledger.submit(&c), Err(GroupError::KeyPackageNotPublished(h)) if h == hid));
}

#[test]
fn non_member_commits_are_refused() {
    let mut w = World::new(16);
    let a = w.add(w.head_end);
    // An outsider with a valid credential runs its own group under the same id and commits.
    let mut outsider = make_member(&w.authority, "SM-OUT");
    outsider.create_group(b"NAN-7", w.ledger.now).unwrap();
    for _ in 0..w.ledger.epoch {
        outsider.commit_update(w.ledger.now).unwrap();
        outsider.apply_pending_commit().unwrap();
    }
    let c = outsider.commit_update(w.ledger.now).unwrap();
    assert_eq!(c.epoch, w.ledger.epoch);
    assert!(w.ledger.submit(&c).is_err());
    // A removed member that kept its state: its epoch is stale, and even at the right epoch
    // number its commit does not verify.
    w.remove(w.head_end, a);
    let (_, former) = w.former.last_mut().unwrap();
    let c = former.commit_update(w.ledger.now).unwrap();
    assert!(matches!(
        w.ledger.submit(&c),
        Err(GroupError::StaleEpoch { .. })
    ));
    let state = w.ledger.state.clone();
    assert!(
        w.ledger
            .observer
            .validate_commit(&state, &c.commit, w.ledger.now, &w.ledger.registry)
            .is_err()
    );
    w.assert_agreement();
}

#[test]
fn removals_need_self_revocation_or_an_administrator() {
    let mut w = World::new(16);
    let he = w.head_end;
    let a = w.add(he);
    let b = w.add(he);
    // Neither revoked nor approved: refused.
    let now = w.ledger.now;
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_remove(&[a], now)
        .unwrap();
    assert!(matches!(w.ledger.submit(&c), Err(GroupError::UnauthorizedRemove(h)) if h == a));
    w.members
        .get_mut(&he)
        .unwrap()
        .discard_pending_commit()
        .unwrap();
    // a asks to leave: its proposal goes through the ledger, b commits it.
    let p = w.members.get_mut(&a).unwrap().propose_leave().unwrap();
    let state = w.ledger.state.clone();
    w.ledger.state = w
        .ledger
        .observer
        .observe_proposal(&state, &p, w.ledger.now)
        .unwrap();
    let now = w.ledger.now;
    for (hid, m) in w.members.iter_mut() {
        if *hid != a {
            assert_eq!(m.process(&p, now).unwrap(), Processed::Proposal);
        }
    }
    let c = w.members.get_mut(&b).unwrap().commit_update(now).unwrap();
    assert_eq!(w.land(b, &c).unwrap().removed, vec![a]);
    assert!(!w.members.contains_key(&a));
    w.assert_agreement();
}

#[test]
fn a_revoked_member_must_be_removed_by_the_next_commit() {
    let mut w = World::new(16);
    let he = w.head_end;
    let a = w.add(he);
    let b = w.add(he);
    w.ledger.registry.revoked.insert(a);
    let now = w.ledger.now;
    let c = w.members.get_mut(&b).unwrap().commit_update(now).unwrap();
    assert!(matches!(w.ledger.submit(&c), Err(GroupError::RevokedMemberNotRemoved(h)) if h == a));
    w.members
        .get_mut(&b)
        .unwrap()
        .discard_pending_commit()
        .unwrap();
    let c = w
        .members
        .get_mut(&b)
        .unwrap()
        .commit_remove(&[a], now)
        .unwrap();
    assert_eq!(w.land(b, &c).unwrap().removed, vec![a]);
    w.assert_agreement();
}

#[test]
fn the_group_size_cap_is_enforced() {
    let mut w = World::new(3);
    let he = w.head_end;
    w.add(he);
    w.add(he);
    let (_, kp) = w.new_meter();
    let now = w.ledger.now;
    let c = w
        .members
        .get_mut(&he)
        .unwrap()
        .commit_add(&[kp], now)
        .unwrap();
    assert!(matches!(
        w.ledger.submit(&c),
        Err(GroupError::GroupTooLarge { members: 4, cap: 3 })
    ));
}
