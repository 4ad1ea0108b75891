//! On-CPU time and bytes of Add, Remove and Update commits at n = 8, 64, 256 and 1,024 members:
//! creating one (the head-end), processing one (a member), validating one (the ledger's
//! observer), and the size of the stored public group state. On-CPU time is read from
//! `/proc/thread-self/schedstat` (Linux), so a loaded machine's waiting is not counted; each
//! figure is the mean over many runs (20 at n = 1,024 up to 400 at n = 8).
//! Run: `cargo run -p bcami-group --release --example cpu_time [N ...]`.
//!
//! Two tree shapes per n:
//! - "sparse": right after one commit added n−1 members. Every node off the committer's path is
//!   blank, so a commit's path secrets go to every other leaf (the worst case).
//! - "filled": then one member under each node of the head-end's copath commits an update, as
//!   members do in steady state; a commit then encrypts to about log2(n) nodes (RFC 9420 §7).

// Example set-up: a failure should stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;

use bcami_group::{
    GroupAuthority, GroupMember, Hid, MemberKeys, MembershipPolicy, Observer, Processed,
};

const T: u64 = 1_780_000_000;

struct AllowAll(BTreeSet<Hid>);

impl MembershipPolicy for AllowAll {
    fn is_active(&self, _: &Hid) -> bool {
        true
    }
    fn is_revoked(&self, hid: &Hid) -> bool {
        self.0.contains(hid)
    }
    fn key_package_published(&self, _: &Hid, _: &[u8]) -> bool {
        true
    }
    fn removal_approved(&self, _: &Hid) -> bool {
        true
    }
}

fn on_cpu_nanos() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("on-CPU ns")
}

/// Mean on-CPU time of `reps` runs of `op`, each on its own clone of `state` made before the
/// clock starts (schedstat advances in scheduler ticks, so single runs are not timed), in ms.
fn mean<S: Clone, R>(state: &S, reps: u32, mut op: impl FnMut(S) -> R) -> (f64, R) {
    let states: Vec<S> = (0..reps).map(|_| state.clone()).collect();
    let mut outs = Vec::with_capacity(states.len());
    let start = on_cpu_nanos();
    for s in states {
        outs.push(op(s));
    }
    let ms = (on_cpu_nanos() - start) as f64 / 1e6 / f64::from(reps);
    (ms, outs.pop().unwrap())
}

fn member(authority: &GroupAuthority, id: &str) -> GroupMember {
    let keys = MemberKeys::generate().unwrap();
    let cred = authority
        .issue(Hid::from_meter_id(id), &keys.public)
        .unwrap();
    GroupMember::new(keys, &cred, authority.public_key()).unwrap()
}

fn row(n: usize, shape: &str, op: &str, create: f64, bytes: usize, process: f64, observe: f64) {
    println!(
        "| {n:>5} | {shape:<6} | {op:<6} | {create:>9.2} | {bytes:>8} | {process:>9.2} | {observe:>9.2} |"
    );
}

/// Measures Add, Remove and Update made by `head` (processed by `reader`, validated against
/// `state`); `victim` is the member removed.
#[allow(clippy::too_many_arguments)]
fn measure(
    n: usize,
    shape: &str,
    authority: &GroupAuthority,
    observer: &Observer,
    policy: &AllowAll,
    head: &GroupMember,
    reader: &GroupMember,
    state: &[u8],
    victim: Hid,
) {
    let reps = match n {
        0..=8 => 400,
        9..=64 => 200,
        65..=256 => 60,
        _ => 20,
    };
    let newcomer = member(authority, "SM-NEW");
    let kp = newcomer.key_package(T).unwrap();
    type Make<'a> = Box<dyn Fn(&mut GroupMember) -> bcami_group::CommitOut + 'a>;
    let ops: Vec<(&str, Make)> = vec![
        (
            "Add",
            Box::new(|h: &mut GroupMember| h.commit_add(std::slice::from_ref(&kp), T).unwrap()),
        ),
        (
            "Remove",
            Box::new(|h: &mut GroupMember| h.commit_remove(&[victim], T).unwrap()),
        ),
        (
            "Update",
            Box::new(|h: &mut GroupMember| h.commit_update(T).unwrap()),
        ),
    ];
    for (name, make) in ops {
        let (create, c) = mean(head, reps, |mut h| make(&mut h));
        let (process, r) = mean(reader, reps, |mut m| m.process(&c.commit, T).unwrap());
        assert!(matches!(
            r,
            Processed::Commit {
                removed_self: false,
                ..
            }
        ));
        let (observe, _) = mean(&state.to_vec(), reps, |s| {
            observer.validate_commit(&s, &c.commit, T, policy).unwrap()
        });
        row(n, shape, name, create, c.commit.len(), process, observe);
        if let Some(w) = &c.welcome {
            println!(
                "|       |        | (Welcome for the Add: {} bytes) | | | | |",
                w.len()
            );
        }
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("group sizes"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![8, 64, 256, 1024]
    } else {
        sizes
    };
    println!("| n | tree | commit | create ms | bytes | member ms | observer ms |");
    println!("| ---: | --- | --- | ---: | ---: | ---: | ---: |");
    let mut sizes_out = Vec::new();
    for n in sizes {
        let authority = GroupAuthority::generate().unwrap();
        let observer = Observer::new(authority.public_key(), 4096);
        let policy = AllowAll(BTreeSet::new());
        let mut head = member(&authority, "HEADEND");
        let gi = head.create_group(b"NAN-BENCH", T).unwrap();
        let mut state = observer.create(&gi, T, &policy).unwrap().state;
        let mut others: Vec<GroupMember> = (1..n)
            .map(|i| member(&authority, &format!("SM-{i:05}")))
            .collect();
        let kps: Vec<Vec<u8>> = others.iter().map(|m| m.key_package(T).unwrap()).collect();
        let c = head.commit_add(&kps, T).unwrap();
        state = observer
            .validate_commit(&state, &c.commit, T, &policy)
            .unwrap()
            .state;
        head.apply_pending_commit().unwrap();
        let welcome = c.welcome.unwrap();
        // Members at leaves 2^k (k = 1..): one under each node of the head-end's copath.
        let mut live: Vec<usize> = Vec::new();
        let mut leaf = 2;
        while leaf < n {
            live.push(leaf);
            leaf *= 2;
        }
        for &l in &live {
            others[l - 1].join(&welcome, T).unwrap();
        }
        assert!(live.len() >= 2, "n must be at least 5");
        let reader_leaf = *live.last().unwrap();
        let victim = others[0].hid();
        measure(
            n,
            "sparse",
            &authority,
            &observer,
            &policy,
            &head,
            &others[reader_leaf - 1],
            &state,
            victim,
        );
        // Fill the head-end's copath: each live member commits an update, all live ones follow.
        for (i, &l) in live.iter().enumerate() {
            let c = others[l - 1].commit_update(T).unwrap();
            state = observer
                .validate_commit(&state, &c.commit, T, &policy)
                .unwrap()
                .state;
            others[l - 1].apply_pending_commit().unwrap();
            head.process(&c.commit, T).unwrap();
            for (j, &o) in live.iter().enumerate() {
                if j != i {
                    others[o - 1].process(&c.commit, T).unwrap();
                }
            }
        }
        // The member at leaf 2 is removed; the one at the last live leaf reads.
        let victim = others[live[0] - 1].hid();
        let reader = &others[reader_leaf - 1];
        measure(
            n, "filled", &authority, &observer, &policy, &head, reader, &state, victim,
        );
        sizes_out.push((
            n,
            state.len(),
            head.group_info().unwrap().len(),
            head.tree_size().unwrap(),
            welcome.len(),
        ));
    }
    println!();
    println!(
        "| n | stored state (ExternalSnapshot) bytes | GroupInfo + tree bytes | ratchet tree bytes | Welcome (n−1 adds) bytes |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (n, s, gi, t, w) in sizes_out {
        println!("| {n} | {s} | {gi} | {t} | {w} |");
    }
}
