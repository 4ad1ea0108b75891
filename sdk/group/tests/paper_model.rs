//! Negative controls: a test-only model of the seed paper's eviction and multicast (its
//! equations (1), (2), (9)–(10) as reconstructed in the seed analysis), showing the attacks that
//! bcami-group's MLS design refuses (see `properties.rs` for the same attacks on MLS).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use aes_gcm::{Aes128Gcm, KeyInit, aead::Aead};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// Eq. (1): an intermediate node key, a one-way function of the group key and the node's
/// decimal code.
fn node_key(gk: &[u8; 16], decimal_code: &str) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(gk)
        .chain_update(decimal_code.as_bytes())
        .finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

fn seal(key: &[u8; 16], msg: &[u8]) -> Vec<u8> {
    Aes128Gcm::new(key.into())
        .encrypt(&[0u8; 12].into(), msg)
        .unwrap()
}

fn open(key: &[u8; 16], ct: &[u8]) -> Option<Vec<u8>> {
    Aes128Gcm::new(key.into())
        .decrypt(&[0u8; 12].into(), ct)
        .ok()
}

/// The evicted meter knows the old group key and the decimal codes on its own path; the forwarded
/// new key is sealed under keys whose codes differ from those by one random digit.
fn evicted_meter_recovers_the_new_key(
    gk_old: [u8; 16],
    gk_new: [u8; 16],
    digits: [u8; 4],
) -> (bool, u32) {
    let d = |i: usize| char::from(b'0' + digits[i] % 10);
    // Eq. (2): DC(child) = DC(parent) ‖ random digit.
    let dc_root = d(0).to_string();
    let dc_0 = format!("{dc_root}{}", d(1));
    let dc_00 = format!("{dc_0}{}", d(2));
    let dc_1 = format!("{dc_root}{}", d(3));
    // Eqs. (9), (10): SM_1 and SM_5 forward GK'' under K_00 and K_1, over the shared medium.
    let to_00 = seal(&node_key(&gk_old, &dc_00), &gk_new);
    let to_1 = seal(&node_key(&gk_old, &dc_1), &gk_new);
    // The evicted SM_8 (under 01) knows gk_old, dc_root and dc_0 and guesses one digit.
    let mut guesses = 0;
    for (parent, ct) in [(&dc_0, &to_00), (&dc_root, &to_1)] {
        for digit in 0..10u8 {
            guesses += 1;
            let guess = format!("{parent}{}", char::from(b'0' + digit));
            if let Some(k) = open(&node_key(&gk_old, &guess), ct) {
                return (k == gk_new, guesses);
            }
        }
    }
    (false, guesses)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn paper_eviction_leaks_the_new_group_key(gk_old in any::<[u8; 16]>(), gk_new in any::<[u8; 16]>(), digits in any::<[u8; 4]>()) {
        let (recovered, guesses) = evicted_meter_recovers_the_new_key(gk_old, gk_new, digits);
        prop_assert!(recovered);
        prop_assert!(guesses <= 100);
        // Control: without the old group key the same search finds nothing.
        let wrong = { let mut w = gk_old; w[0] ^= 1; w };
        let dc = format!("{}{}{}", digits[0] % 10, digits[1] % 10, digits[2] % 10);
        let ct = seal(&node_key(&gk_old, &dc), &gk_new);
        let prefix = format!("{}{}", digits[0] % 10, digits[1] % 10);
        let found = (0..10).any(|d| open(&node_key(&wrong, &format!("{prefix}{d}")), &ct).is_some());
        prop_assert!(!found);
    }
}

/// The paper's multicast `E_GK(M ‖ T) ‖ HMAC_GK(M ‖ T)`: any member holding GK makes a command
/// that verifies as the head-end's.
#[test]
fn paper_multicast_lets_any_member_forge_the_head_end() {
    let gk = [7u8; 16];
    let tag = |m: &[u8]| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&gk).unwrap();
        mac.update(m);
        mac.finalize().into_bytes().to_vec()
    };
    let forged = b"AHE: disconnect load, T=1780000000";
    let forged_tag = tag(forged); // made by a meter
    let mut verify = <Hmac<Sha256> as Mac>::new_from_slice(&gk).unwrap();
    verify.update(forged);
    assert!(
        verify.verify_slice(&forged_tag).is_ok(),
        "the head-end's check accepts a meter's forgery"
    );
}
