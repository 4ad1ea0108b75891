//! Round-trip properties of the shim's encoders/decoders.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use fabric_protos::protos::ChaincodeMessage;
use fabric_shim::protocol::{Action, Reply, Request, Session, TxKey};
use fabric_shim::testing::TxSpec;
use fabric_shim::{KeyRange, composite_key, split_composite_key};
use proptest::prelude::*;
use prost::Message;

fn component() -> impl Strategy<Value = String> {
    "[^\u{0}\u{10FFFF}]{0,12}"
}

proptest! {
    #[test]
    fn composite_keys_split_back(object_type in "[^\u{0}\u{10FFFF}]{1,12}", attrs in proptest::collection::vec(component(), 0..5)) {
        let refs: Vec<&str> = attrs.iter().map(String::as_str).collect();
        let key = composite_key(&object_type, &refs).unwrap();
        prop_assert_eq!(split_composite_key(&key).unwrap(), (object_type.clone(), attrs.clone()));
        // Every key built from a longer attribute list with this prefix is in the partial range.
        let range = KeyRange::composite_prefix(&object_type, &refs).unwrap();
        let mut longer = refs.clone();
        longer.push("tail");
        prop_assert!(range.contains(&composite_key(&object_type, &longer).unwrap()));
    }

    #[test]
    fn requests_survive_the_wire_and_replies_route_back(channel in "[a-z]{1,8}", txid in "[0-9a-f]{1,16}", key in "[^\u{0}]{1,20}", payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (mut s, _) = Session::new("cc:1");
        s.receive(ChaincodeMessage { r#type: 2, ..Default::default() }).unwrap();
        s.receive(ChaincodeMessage { r#type: 4, ..Default::default() }).unwrap();
        let mut spec = TxSpec::new(&txid, "f", &[]);
        spec.channel = channel.clone();
        s.receive(spec.message()).unwrap();
        let tx = TxKey { channel: channel.clone(), txid: txid.clone() };
        let msg = s.request(&tx, Request::PutState { key: key.clone(), value: payload.clone() }).unwrap();
        let decoded = ChaincodeMessage::decode(msg.encode_to_vec().as_slice()).unwrap();
        let put = fabric_protos::protos::PutState::decode(decoded.payload.as_slice()).unwrap();
        prop_assert_eq!((put.key, put.value), (key, payload.clone()));
        let reply = ChaincodeMessage { r#type: 13, payload: payload.clone(), txid: txid.clone(), channel_id: channel.clone(), ..Default::default() };
        prop_assert_eq!(s.receive(reply).unwrap(), vec![Action::Deliver { key: tx, reply: Reply::Response(payload) }]);
    }
}
