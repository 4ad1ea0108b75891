//! Group keys on the embedded ledger (the real contract in memory), through `bcami-client` and
//! meter-sim's group driver: random sequences of add, remove, update and multicast with the
//! secrecy properties checked after each step, two commits for one epoch, and the ledger's
//! refusals (unauthorised adds and removals, key-package reuse, non-member commits, a revoked
//! member left in the group).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bcami_api::ErrorCode;
use bcami_client::{Caller, lost_epoch};
use bcami_group::{GroupAuthority, GroupMember, Processed};
use bcami_sdk::Hid;
use meter_sim::embedded::Embedded;
use meter_sim::group::GroupSim;
use meter_sim::headend::HeadEndKeys;
use meter_sim::state::StateDir;
use proptest::prelude::*;

const HEAD_END: Caller = Caller::Mdms;
const METERS: Caller = Caller::Concentrator(0);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn world(ledger: &Embedded, meters: usize) -> (GroupSim<'_, Embedded>, Vec<Hid>) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let mut keys = HeadEndKeys::load_or_create(&state, &"AHE-1".parse().unwrap()).unwrap();
    let mut sim = GroupSim::new(
        ledger,
        GroupAuthority::generate().unwrap(),
        b"nan-1",
        &mut keys,
    )
    .await
    .unwrap();
    let hids = sim.enroll_meters("SM-G", meters).await.unwrap();
    sim.create().await.unwrap();
    (sim, hids)
}

/// Multicasts a command and checks that exactly the ledger's current members decrypt it, each
/// seeing the head-end as the sender.
async fn multicast_reaches_exactly_the_members(sim: &mut GroupSim<'_, Embedded>, n: usize) {
    let command = format!("DR shed 20% #{n}");
    let multicast = sim.multicast_to_members(command.as_bytes()).await.unwrap();
    assert!(
        multicast.reached_exactly_the_members(),
        "decrypted by exactly the current members, from the head-end: {multicast:?}"
    );
    assert_eq!(
        multicast.delivery.refused.len(),
        sim.meters.len() - multicast.members.len()
    );
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    Remove(u8),
    Update(Option<u8>),
    Send,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Add),
        2 => any::<u8>().prop_map(Op::Remove),
        1 => any::<Option<u8>>().prop_map(Op::Update),
        2 => Just(Op::Send),
    ]
}

async fn run(ops: Vec<Op>) {
    let ledger = Embedded::new();
    let (mut sim, hids) = world(&ledger, 4).await;
    let mut last_ciphertext: Option<Vec<u8>> = None;
    for (n, op) in ops.into_iter().enumerate() {
        let members = sim.ledger_members().await.unwrap();
        match op {
            Op::Add(i) => {
                let hid = hids[usize::from(i) % hids.len()];
                if members.contains(&hid) {
                    continue;
                }
                // A meter removed before is added again with a fresh member (new key package).
                if sim.meters[&hid].member.epoch().is_ok() {
                    continue;
                }
                sim.add(&[hid]).await.unwrap();
                // Backward secrecy: it decrypts nothing sent before it joined.
                if let Some(c) = &last_ciphertext {
                    let r = sim.meters.get_mut(&hid).unwrap().member.process(c, now());
                    assert!(
                        !matches!(r, Ok(Processed::Application { .. })),
                        "a new member decrypted an earlier message"
                    );
                }
            }
            Op::Remove(i) => {
                let candidates: Vec<Hid> = members
                    .iter()
                    .copied()
                    .filter(|h| *h != sim.head_end_hid)
                    .collect();
                if candidates.is_empty() {
                    continue;
                }
                let hid = candidates[usize::from(i) % candidates.len()];
                sim.approve_removal(hid).await.unwrap();
                sim.remove(&[hid]).await.unwrap();
            }
            Op::Update(who) => {
                let candidates: Vec<Hid> = members
                    .iter()
                    .copied()
                    .filter(|h| *h != sim.head_end_hid)
                    .collect();
                let who = match who {
                    Some(i) if !candidates.is_empty() => {
                        Some(candidates[usize::from(i) % candidates.len()])
                    }
                    _ => None,
                };
                sim.update(who).await.unwrap();
            }
            Op::Send => {
                multicast_reaches_exactly_the_members(&mut sim, n).await;
                last_ciphertext = Some(sim.head_end.send(b"later").unwrap());
                // Members consume it so that their secret trees advance like the head-end's.
                let members = sim.ledger_members().await.unwrap();
                for m in members.iter().filter(|h| **h != sim.head_end_hid) {
                    let c = last_ciphertext.as_ref().unwrap();
                    let member = &mut sim.meters.get_mut(m).unwrap().member;
                    assert!(matches!(
                        member.process(c, now()),
                        Ok(Processed::Application { .. })
                    ));
                }
            }
        }
    }
    // Every remaining member agrees with the head-end, and a last multicast reaches exactly them.
    sim.sync_members().await.unwrap();
    multicast_reaches_exactly_the_members(&mut sim, usize::MAX).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_on_the_contract_keep_the_group_properties(
        ops in proptest::collection::vec(op(), 1..10)
    ) {
        rt().block_on(run(ops));
    }
}

#[test]
fn two_commits_for_one_epoch_exactly_one_lands_and_the_loser_catches_up() {
    rt().block_on(async {
        let ledger = Embedded::new();
        let (mut sim, hids) = world(&ledger, 2).await;
        sim.add(&hids).await.unwrap();
        let client = sim.client();
        let gid = sim.group_id.clone();
        let epoch = sim.head_end.epoch().unwrap();
        let a = sim.head_end.commit_update(now()).unwrap();
        let loser = &mut sim.meters.get_mut(&hids[0]).unwrap().member;
        let b = loser.commit_update(now()).unwrap();
        assert_eq!((a.epoch, b.epoch), (epoch, epoch));
        client
            .submit_group_commit(HEAD_END, &gid, &a.commit, None)
            .await
            .unwrap();
        sim.head_end.apply_pending_commit().unwrap();
        let loser = &mut sim.meters.get_mut(&hids[0]).unwrap().member;
        let e = client
            .submit_group_commit(METERS, &gid, &b.commit, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::StaleEpoch), "{e}");
        assert!(lost_epoch(&e));
        // The loser discards its commit, processes the winner from the ledger, and commits next.
        loser.discard_pending_commit().unwrap();
        let r = client
            .commit_group(METERS, &gid, loser, now(), 3, |m| m.commit_update(now()))
            .await
            .unwrap();
        assert_eq!(r.epoch, epoch + 2);
        let page = client
            .group_commits(Caller::Administrator, &gid, epoch, None)
            .await
            .unwrap();
        assert_eq!(page.commits.len(), 2, "exactly one commit per epoch");
        assert_eq!(page.commits[0].committer, sim.head_end_hid);
        assert_eq!(page.commits[1].committer, hids[0]);
        sim.sync_members().await.unwrap();
    });
}

#[test]
fn the_ledger_refuses_what_the_policy_forbids() {
    rt().block_on(async {
        let ledger = Embedded::new();
        let (mut sim, hids) = world(&ledger, 4).await;
        let client = sim.client();
        let gid = sim.group_id.clone();
        sim.add(&hids[..2]).await.unwrap();

        // Unauthorised removal: not revoked, not approved, not the member's own proposal.
        let out = sim.head_end.commit_remove(&[hids[0]], now()).unwrap();
        let e = client
            .submit_group_commit(HEAD_END, &gid, &out.commit, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::GroupPolicy), "{e}");
        sim.head_end.discard_pending_commit().unwrap();

        // Key-package reuse: the key package that added hids[1] was consumed; adding it again
        // after a removal is refused.
        let used = sim.meters[&hids[2]].member.key_package(now()).unwrap();
        client
            .publish_key_packages(METERS, std::slice::from_ref(&used))
            .await
            .unwrap();
        let out = sim
            .head_end
            .commit_add(std::slice::from_ref(&used), now())
            .unwrap();
        client
            .submit_group_commit(HEAD_END, &gid, &out.commit, out.welcome.as_deref())
            .await
            .unwrap();
        sim.head_end.apply_pending_commit().unwrap();
        let m2 = &mut sim.meters.get_mut(&hids[2]).unwrap().member;
        client.join_group(METERS, &gid, m2, now()).await.unwrap();
        sim.sync_members().await.unwrap();
        sim.approve_removal(hids[2]).await.unwrap();
        sim.remove(&[hids[2]]).await.unwrap();
        let out = sim
            .head_end
            .commit_add(std::slice::from_ref(&used), now())
            .unwrap();
        let e = client
            .submit_group_commit(HEAD_END, &gid, &out.commit, out.welcome.as_deref())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::GroupPolicy), "reuse: {e}");
        sim.head_end.discard_pending_commit().unwrap();

        // An add without its Welcome is refused.
        let kp = sim.publish_key_package(hids[3]).await.unwrap();
        let out = sim.head_end.commit_add(&[kp], now()).unwrap();
        let e = client
            .submit_group_commit(HEAD_END, &gid, &out.commit, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::BadGroupMessage), "{e}");
        sim.head_end.discard_pending_commit().unwrap();

        // Unauthorised add: a revoked meter's published key package cannot be used.
        client
            .revoke_meter(Caller::Administrator, hids[3])
            .await
            .unwrap();
        let kp = client.key_package(HEAD_END, hids[3]).await.unwrap();
        let out = sim.head_end.commit_add(&[kp], now()).unwrap();
        let e = client
            .submit_group_commit(HEAD_END, &gid, &out.commit, out.welcome.as_deref())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::GroupPolicy), "revoked add: {e}");
        sim.head_end.discard_pending_commit().unwrap();
        // ...nor publish another.
        let m3 = &sim.meters[&hids[3]].member;
        let e = client
            .publish_key_packages(METERS, &[m3.key_package(now()).unwrap()])
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Revoked), "{e}");

        // A revoked member must be removed by the next commit: an update is refused, a removal
        // (no approval needed) lands, and the removed member decrypts nothing after it.
        client
            .revoke_meter(Caller::Administrator, hids[0])
            .await
            .unwrap();
        let out = sim.head_end.commit_update(now()).unwrap();
        let e = client
            .submit_group_commit(HEAD_END, &gid, &out.commit, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::GroupPolicy), "{e}");
        assert!(e.to_string().contains("revoked"), "{e}");
        sim.head_end.discard_pending_commit().unwrap();
        sim.remove(&[hids[0]]).await.unwrap();
        let view = client
            .group_credential(Caller::Administrator, hids[0])
            .await
            .unwrap();
        assert!(
            view.groups.is_empty(),
            "the membership index follows removals"
        );
        let view = client
            .group_credential(Caller::Administrator, hids[1])
            .await
            .unwrap();
        assert_eq!(view.groups, vec![gid.clone()]);
        multicast_reaches_exactly_the_members(&mut sim, 1).await;

        // A non-member's commit: an outsider with a valid credential builds its own group under
        // the same id up to the ledger's epoch; its commit does not verify against the stored
        // group.
        let ledger_epoch = client
            .group(Caller::Administrator, &gid)
            .await
            .unwrap()
            .epoch;
        let outsider_hid = sim.enroll_meters("SM-X", 1).await.unwrap()[0];
        let outsider: &mut GroupMember = &mut sim.meters.get_mut(&outsider_hid).unwrap().member;
        outsider.create_group(gid.as_bytes(), now()).unwrap();
        while outsider.epoch().unwrap() < ledger_epoch {
            outsider.commit_update(now()).unwrap();
            outsider.apply_pending_commit().unwrap();
        }
        let out = outsider.commit_update(now()).unwrap();
        let e = client
            .submit_group_commit(METERS, &gid, &out.commit, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::BadGroupMessage), "{e}");
        // A stale commit of the removed member (it kept its state) is refused as stale.
        let removed = &mut sim.meters.get_mut(&hids[2]).unwrap().member;
        let out = removed.commit_update(now()).unwrap();
        let e = client
            .submit_group_commit(METERS, &gid, &out.commit, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::StaleEpoch), "{e}");

        // The stored state is the public tree only, and its size is recorded.
        let g = client.group(Caller::Administrator, &gid).await.unwrap();
        assert!(g.state_bytes > 0);
        assert_eq!(g.members.len(), 2, "head-end and hids[1]");
    });
}
