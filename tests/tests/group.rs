//! Group keys (issue 13) on the live network: the channel is the MLS Delivery Service. The
//! head-end creates a group, adds three meters (credentials requested with their BC-AMI keys,
//! issued by the group authority, key packages published on the ledger, Welcome fetched from
//! it), multicasts a demand-response command that exactly the members decrypt, removes one (it
//! keeps its state and decrypts nothing after), races two commits for one epoch (exactly one
//! lands, the loser catches up from the ledger and commits next), and finally a meter revoked in
//! BC-AMI must be removed by the next commit.
//!
//! Run by `scripts/test.sh e2e` (needs `$BCAMI_RUN_DIR/network.json` and `bcami` deployed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bcami_api::ErrorCode;
use bcami_client::{Caller, Fabric, Settings, lost_epoch};
use bcami_e2e::NetworkEnv;
use bcami_sdk::Hid;
use meter_sim::group::{GroupSim, load_or_make_authority};
use meter_sim::headend::HeadEndKeys;
use meter_sim::state::StateDir;

const HEAD_END: Caller = Caller::Mdms;
const METERS: Caller = Caller::Concentrator(0);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn members_decrypting(sim: &mut GroupSim<'_, Fabric>, command: &str) -> Vec<Hid> {
    let multicast = sim.multicast_to_members(command.as_bytes()).await.unwrap();
    assert!(
        multicast.reached_exactly_the_members(),
        "exactly the ledger's current members decrypt, each seeing the head-end as the sender: {multicast:?}"
    );
    multicast.decrypted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_grown_shrunk_and_used_for_multicast_on_the_live_network() {
    let env = NetworkEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings {
        mdms_state: env.run_dir.join("mdms"),
        network: env.network.clone(),
        chaincode: "bcami".to_owned(),
    };
    let fabric = Fabric::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the network: {e}"));
    // The network's one group authority (SetGroupAuthority is set once per ledger).
    let authority = load_or_make_authority(&env.run_dir.join("group-authority.key")).unwrap();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let gid = format!("e2e-{nanos}");
    // The network's one head-end, as `meter-sim headend` and head_end.rs keep it.
    let service_state = StateDir::open(&settings.mdms_state).unwrap();
    let mut keys = HeadEndKeys::load_or_create(&service_state, &"AHE-1".parse().unwrap()).unwrap();
    let mut sim = GroupSim::new(&fabric, authority, gid.as_bytes(), &mut keys)
        .await
        .unwrap();
    let client = sim.client();
    let hids = sim.enroll_meters("SM-E2E-G", 3).await.unwrap();
    sim.create().await.unwrap();

    // Add all three: one commit, each joins from the ledger's Welcome.
    let epoch = sim.add(&hids).await.unwrap();
    assert_eq!(epoch, 1);
    let mut all = hids.clone();
    all.sort();
    assert_eq!(members_decrypting(&mut sim, "DR shed 20%").await, all);

    // Remove one (approved by the administrator): it keeps its state and decrypts nothing.
    sim.approve_removal(hids[1]).await.unwrap();
    sim.remove(&[hids[1]]).await.unwrap();
    let got = members_decrypting(&mut sim, "DR shed 30%").await;
    assert!(!got.contains(&hids[1]) && got.len() == 2);

    // Two commits for one epoch, submitted at once: exactly one lands.
    let epoch = sim.head_end.epoch().unwrap();
    let a = sim.head_end.commit_update(now()).unwrap();
    let b = sim
        .meters
        .get_mut(&hids[0])
        .unwrap()
        .member
        .commit_update(now())
        .unwrap();
    let gid = sim.group_id.clone();
    let (ra, rb) = tokio::join!(
        client.submit_group_commit(HEAD_END, &gid, &a.commit, None),
        client.submit_group_commit(METERS, &gid, &b.commit, None),
    );
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one of two commits for epoch {epoch} lands: {ra:?} / {rb:?}"
    );
    let loser_is_meter = ra.is_ok();
    let e = if loser_is_meter {
        rb.unwrap_err()
    } else {
        ra.unwrap_err()
    };
    assert!(lost_epoch(&e), "the loser lost the epoch: {e}");
    // Winner applies; the loser discards, catches up from the ledger and commits next.
    let (winner, loser, loser_caller) = if loser_is_meter {
        let m = &mut sim.meters.get_mut(&hids[0]).unwrap().member;
        (&mut sim.head_end, m, METERS)
    } else {
        let m = &mut sim.meters.get_mut(&hids[0]).unwrap().member;
        (m, &mut sim.head_end, HEAD_END)
    };
    winner.apply_pending_commit().unwrap();
    loser.discard_pending_commit().unwrap();
    let r = client
        .commit_group(loser_caller, &gid, loser, now(), 3, |m| {
            m.commit_update(now())
        })
        .await
        .unwrap();
    assert_eq!(r.epoch, epoch + 2);
    let page = client
        .group_commits(Caller::Administrator, &gid, epoch, None)
        .await
        .unwrap();
    assert_eq!(
        page.commits.iter().map(|c| c.epoch).collect::<Vec<_>>(),
        vec![epoch, epoch + 1],
        "one commit per epoch"
    );
    sim.sync_members().await.unwrap();

    // A meter revoked in BC-AMI must be removed by the next commit.
    client
        .revoke_meter(Caller::Administrator, hids[2])
        .await
        .unwrap();
    let out = sim.head_end.commit_update(now()).unwrap();
    let e = client
        .submit_group_commit(HEAD_END, &gid, &out.commit, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::GroupPolicy), "{e}");
    sim.head_end.discard_pending_commit().unwrap();
    let start = Instant::now();
    sim.remove(&[hids[2]]).await.unwrap();
    let remove_latency = start.elapsed();
    assert_eq!(
        members_decrypting(&mut sim, "DR restore").await,
        vec![hids[0]]
    );
    let view = client
        .group_credential(Caller::Administrator, hids[2])
        .await
        .unwrap();
    assert!(view.groups.is_empty());

    let mut l = sim.commit_latencies.clone();
    l.sort_by(f64::total_cmp);
    eprintln!(
        "group commits on the live network: {} accepted, make+submit+committed median {:.3} s, max {:.3} s; remove + members' catch-up {:.3} s",
        l.len(),
        l[l.len() / 2],
        l[l.len() - 1],
        remove_latency.as_secs_f64()
    );
}
