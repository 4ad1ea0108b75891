//! Known answers from the fixtures of draft-irtf-cfrg-bbs-signatures-10 (ciphersuite
//! BLS12-381-SHA-256), run through this crate's BBS core on both backends. The files are in
//! `tests/vectors/bbs-draft-10/`; their source is cited in `tests/vectors/README.md`.

use alloc::string::String;
use alloc::vec::Vec;

use group::Group;
use serde_json::Value;

use crate::backend::Backend;
use crate::bbs::{self, Generators, ProofRandomness};

const API_ID: &[u8] = b"BBS_BLS12381G1_XMD:SHA-256_SSWU_RO_H2G_HM2S_";

fn fixture(name: &str) -> Value {
    let text = match name {
        "generators" => include_str!("../tests/vectors/bbs-draft-10/generators.json"),
        "h2s" => include_str!("../tests/vectors/bbs-draft-10/h2s.json"),
        "map" => include_str!("../tests/vectors/bbs-draft-10/MapMessageToScalarAsHash.json"),
        "keypair" => include_str!("../tests/vectors/bbs-draft-10/keypair.json"),
        "mocked" => include_str!("../tests/vectors/bbs-draft-10/mockedRng.json"),
        "signature001" => include_str!("../tests/vectors/bbs-draft-10/signature001.json"),
        "signature004" => include_str!("../tests/vectors/bbs-draft-10/signature004.json"),
        "proof001" => include_str!("../tests/vectors/bbs-draft-10/proof001.json"),
        "proof003" => include_str!("../tests/vectors/bbs-draft-10/proof003.json"),
        _ => panic!("no fixture {name}"),
    };
    serde_json::from_str(text).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn scalar<B: Backend>(v: &Value) -> B::Fr {
    B::scalar_from_be(&hx(v).try_into().unwrap()).unwrap()
}

fn g1<B: Backend>(v: &Value) -> B::G1 {
    B::g1_from_bytes(&hx(v).try_into().unwrap()).unwrap()
}

fn g2<B: Backend>(v: &Value) -> B::G2 {
    B::g2_from_bytes(&hx(v).try_into().unwrap()).unwrap()
}

fn map_message<B: Backend>(m: &[u8]) -> B::Fr {
    crate::hash::hash_to_scalar::<B>(&[m], &[API_ID, b"MAP_MSG_TO_SCALAR_AS_HASH_"])
}

fn messages<B: Backend>(v: &Value) -> Vec<B::Fr> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| map_message::<B>(&hx(m)))
        .collect()
}

fn hashing<B: Backend>() {
    let f = fixture("h2s");
    let dst = hx(&f["dst"]);
    let got = crate::hash::hash_to_scalar::<B>(&[&hx(&f["message"])], &[&dst]);
    assert_eq!(got, scalar::<B>(&f["scalar"]), "{}", B::NAME);

    let f = fixture("map");
    for case in f["cases"].as_array().unwrap() {
        let got = map_message::<B>(&hx(&case["message"]));
        assert_eq!(got, scalar::<B>(&case["scalar"]), "{}", B::NAME);
    }

    let f = fixture("mocked");
    let count = f["count"].as_u64().unwrap() as usize;
    let mut okm = alloc::vec![0u8; 48 * count];
    crate::hash::expand_message_xmd(&[&hx(&f["seed"])], &hx(&f["dst"]), &mut okm);
    for (i, want) in f["mockedScalars"].as_array().unwrap().iter().enumerate() {
        let chunk: [u8; 48] = okm[48 * i..48 * i + 48].try_into().unwrap();
        assert_eq!(crate::hash::scalar_from_okm::<B>(&chunk), scalar::<B>(want));
    }
}

fn generators<B: Backend>() {
    let f = fixture("generators");
    assert_eq!(bbs::p1::<B>(), g1::<B>(&f["P1"]));
    let want = f["MsgGenerators"].as_array().unwrap();
    let gens = Generators::<B>::create(want.len(), API_ID);
    assert_eq!(gens.q1, g1::<B>(&f["Q1"]), "{}", B::NAME);
    for (got, want) in gens.h.iter().zip(want) {
        assert_eq!(*got, g1::<B>(want), "{}", B::NAME);
    }

    let f = fixture("keypair");
    let sk = scalar::<B>(&f["keyPair"]["secretKey"]);
    assert_eq!(B::G2::generator() * sk, g2::<B>(&f["keyPair"]["publicKey"]));
}

fn signature<B: Backend>(name: &str) {
    let f = fixture(name);
    let sk = scalar::<B>(&f["signerKeyPair"]["secretKey"]);
    let pk = g2::<B>(&f["signerKeyPair"]["publicKey"]);
    let msgs = messages::<B>(&f["messages"]);
    let gens = Generators::<B>::create(msgs.len(), API_ID);
    let domain = bbs::domain::<B>(&pk, &gens, &hx(&f["header"]), API_ID);
    assert_eq!(domain, scalar::<B>(&f["trace"]["domain"]), "{name}");
    let indexed: Vec<_> = msgs.iter().copied().enumerate().collect();
    let b = bbs::b_point::<B>(&gens, &domain, &indexed);
    assert_eq!(b, g1::<B>(&f["trace"]["B"]), "{name}");
    let e = bbs::signature_e::<B>(&sk, &msgs, &[], &domain, API_ID);
    let a = bbs::sign_b::<B>(&sk, &e, &b).unwrap();
    let mut sig = Vec::from(B::g1_to_bytes(&a));
    sig.extend_from_slice(&B::scalar_to_be(&e));
    assert_eq!(
        hex::encode(&sig),
        f["signature"].as_str().unwrap(),
        "{name}"
    );
    assert!(bbs::signature_valid::<B>(&pk, &a, &e, &b));
    assert!(!bbs::signature_valid::<B>(
        &pk,
        &a,
        &(e + B::Fr::from(1u64)),
        &b
    ));
}

fn proof<B: Backend>(name: &str) {
    let f = fixture(name);
    let pk = g2::<B>(&f["signerPublicKey"]);
    let sig = hx(&f["signature"]);
    let a = B::g1_from_bytes(&sig[..48].try_into().unwrap()).unwrap();
    let e = B::scalar_from_be(&sig[48..].try_into().unwrap()).unwrap();
    let msgs = messages::<B>(&f["messages"]);
    let disclosed_idx: Vec<usize> = f["disclosedIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    let ph = hx(&f["presentationHeader"]);
    let gens = Generators::<B>::create(msgs.len(), API_ID);
    let domain = bbs::domain::<B>(&pk, &gens, &hx(&f["header"]), API_ID);
    let all: Vec<_> = msgs.iter().copied().enumerate().collect();
    let b = bbs::b_point::<B>(&gens, &domain, &all);
    let rs = &f["trace"]["random_scalars"];
    let r = ProofRandomness::<B> {
        r1: scalar::<B>(&rs["r1"]),
        r2: scalar::<B>(&rs["r2"]),
        e_tilde: scalar::<B>(&rs["e_tilde"]),
        r1_tilde: scalar::<B>(&rs["r1_tilde"]),
        r3_tilde: scalar::<B>(&rs["r3_tilde"]),
    };
    let m_tilde: Vec<B::Fr> = rs["m_tilde_scalars"]
        .as_array()
        .unwrap()
        .iter()
        .map(scalar::<B>)
        .collect();
    let undisclosed: Vec<usize> = (0..msgs.len())
        .filter(|i| !disclosed_idx.contains(i))
        .collect();
    let points: Vec<_> = undisclosed.iter().map(|j| gens.h[*j]).collect();
    let t2_tail = B::msm(&points, &m_tilde);
    let init = bbs::proof_init::<B>(&a, &b, &(b - a * e), &r, &t2_tail);
    assert_eq!(init.t1, g1::<B>(&f["trace"]["T1"]), "{name} T1");
    assert_eq!(init.t2, g1::<B>(&f["trace"]["T2"]), "{name} T2");
    let disclosed: Vec<_> = disclosed_idx.iter().map(|i| (*i, msgs[*i])).collect();
    let c = bbs::challenge::<B>(&init, &disclosed, None, &domain, &ph, API_ID);
    assert_eq!(c, scalar::<B>(&f["trace"]["challenge"]), "{name} challenge");
    let (e_hat, r1_hat, r3_hat) = bbs::finalize::<B>(&r, &e, &c).unwrap();
    let m_hat: Vec<_> = undisclosed
        .iter()
        .zip(&m_tilde)
        .map(|(j, mt)| (*j, *mt + msgs[*j] * c))
        .collect();
    let mut bytes = Vec::new();
    for p in [&init.abar, &init.bbar, &init.d] {
        bytes.extend_from_slice(&B::g1_to_bytes(p));
    }
    for s in [&e_hat, &r1_hat, &r3_hat] {
        bytes.extend_from_slice(&B::scalar_to_be(s));
    }
    for (_, m) in &m_hat {
        bytes.extend_from_slice(&B::scalar_to_be(m));
    }
    bytes.extend_from_slice(&B::scalar_to_be(&c));
    assert_eq!(hex::encode(&bytes), f["proof"].as_str().unwrap(), "{name}");

    // ProofVerify on the fixture's proof.
    let proof = bbs::Proof::<B> {
        abar: init.abar,
        bbar: init.bbar,
        d: init.d,
        e_hat,
        r1_hat,
        r3_hat,
        m_hat,
        c,
    };
    let bv = bbs::b_point::<B>(&gens, &domain, &disclosed);
    assert!(bbs::challenge_valid::<B>(
        &proof, &gens, &bv, &disclosed, None, &domain, &ph, API_ID
    ));
    let w: B::G2Prepared = group::Curve::to_affine(&pk).into();
    assert!(bbs::pairing_valid::<B>(
        &w,
        &bbs::minus_p2::<B>(),
        &proof.abar,
        &proof.bbar
    ));
    let mut wrong_ph = ph.clone();
    wrong_ph.push(0);
    assert!(!bbs::challenge_valid::<B>(
        &proof, &gens, &bv, &disclosed, None, &domain, &wrong_ph, API_ID
    ));
}

fn all<B: Backend>() {
    hashing::<B>();
    generators::<B>();
    signature::<B>("signature001");
    signature::<B>("signature004");
    proof::<B>("proof001");
    proof::<B>("proof003");
}

#[test]
fn draft_10_fixtures_zkcrypto() {
    all::<crate::backend::Zk>();
}

#[test]
fn draft_10_fixtures_blst() {
    all::<crate::backend::Blst>();
}

/// RFC 9380 Appendix J.9.1, `BLS12381G1_XMD:SHA-256_SSWU_RO_` (uncompressed `P.x ‖ P.y`).
const RFC9380_G1_RO: [(&str, &str); 5] = [
    (
        "",
        "052926add2207b76ca4fa57a8734416c8dc95e24501772c814278700eed6d1e4e8cf62d9c09db0fac349612b759e79a108ba738453bfed09cb546dbb0783dbb3a5f1f566ed67bb6be0e8c67e2e81a4cc68ee29813bb7994998f3eae0c9c6a265",
    ),
    (
        "abc",
        "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f69030b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d",
    ),
    (
        "abcdef0123456789",
        "11e0b079dea29a68f0383ee94fed1b940995272407e3bb916bbf268c263ddd57a6a27200a784cbc248e84f357ce82d9803a87ae2caf14e8ee52e51fa2ed8eefe80f02457004ba4d486d6aa1f517c0889501dc7413753f9599b099ebcbbd2d709",
    ),
    (
        "q128_",
        "15f68eaa693b95ccb85215dc65fa81038d69629f70aeee0d0f677cf22285e7bf58d7cb86eefe8f2e9bc3f8cb84fac4881807a1d50c29f430b8cafc4f8638dfeeadf51211e1602a5f184443076715f91bb90a48ba1e370edce6ae1062f5e6dd38",
    ),
    (
        "a512_",
        "082aabae8b7dedb0e78aeb619ad3bfd9277a2f77ba7fad20ef6aabdc6c31d19ba5a6d12283553294c1825c4b3ca2dcfe05b84ae5a942248eea39e1d91030458c40153f3b654ab7872d779ad1e942856a20c438e8d99bc8abfbf74729ce1f7ac8",
    ),
];

#[test]
fn rfc9380_hash_to_g1_vectors() {
    let dst = b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";
    for (msg, want) in RFC9380_G1_RO {
        // Two messages are a prefix followed by 128 'q's or 512 'a's.
        let mut msg = String::from(msg);
        match msg.as_str() {
            "q128_" => msg.extend(core::iter::repeat_n('q', 128)),
            "a512_" => msg.extend(core::iter::repeat_n('a', 512)),
            _ => {}
        }
        let zk = bls12_381::G1Affine::from(crate::backend::Zk::hash_to_g1(msg.as_bytes(), dst));
        assert_eq!(hex::encode(zk.to_uncompressed()), want, "bls12_381 {msg}");
        let bl = blstrs::G1Affine::from(crate::backend::Blst::hash_to_g1(msg.as_bytes(), dst));
        assert_eq!(hex::encode(bl.to_uncompressed()), want, "blst {msg}");
    }
}

/// The blind-signature draft (-02) and the pseudonym draft (-01) derive their generators with
/// the same `create_generators` under their own `api_id`s: ours must reproduce theirs.
fn extension_generators<B: Backend>() {
    for text in [
        include_str!("../tests/vectors/bbs-draft-10/blind-02-generators.json"),
        include_str!("../tests/vectors/bbs-draft-10/nym-01-generators.json"),
    ] {
        let f: Value = serde_json::from_str(text).unwrap();
        let g = &f["generators"];
        let api_id = g["api_id"].as_str().unwrap().as_bytes();
        let want = g["MsgGenerators"].as_array().unwrap();
        let gens = Generators::<B>::create(want.len(), api_id);
        assert_eq!(bbs::p1::<B>(), g1::<B>(&g["P1"]));
        assert_eq!(gens.q1, g1::<B>(&g["Q1"]), "{}", B::NAME);
        for (got, want) in gens.h.iter().zip(want) {
            assert_eq!(*got, g1::<B>(want), "{}", B::NAME);
        }
    }
}

#[test]
fn blind_and_pseudonym_draft_generators() {
    extension_generators::<crate::backend::Zk>();
    extension_generators::<crate::backend::Blst>();
}
