//! Known-answer checks that our `.proto` files keep Fabric's field numbers and package names.
//! Expected bytes are hand-encoded from the field tables in fabric-wire-spec.md.

use fabric_protos::{gateway, orderer, protos};
use prost::Message;

#[test]
fn chaincode_message_fields_have_fabric_numbers() {
    let msg = protos::ChaincodeMessage {
        r#type: protos::chaincode_message::Type::GetStateMultiple as i32,
        payload: vec![0xAA],
        txid: "t".into(),
        channel_id: "c".into(),
        ..Default::default()
    };
    // type=1 varint 25; payload=3 bytes; txid=4 string; channel_id=7 string.
    assert_eq!(
        msg.encode_to_vec(),
        vec![0x08, 25, 0x1A, 1, 0xAA, 0x22, 1, b't', 0x3A, 1, b'c']
    );
}

#[test]
fn additional_params_and_write_record_numbers() {
    let params = protos::ChaincodeAdditionalParams {
        use_write_batch: true,
        max_size_write_batch: 1000,
        use_get_multiple_keys: true,
        max_size_get_multiple_keys: 5,
    };
    assert_eq!(
        params.encode_to_vec(),
        vec![0x08, 1, 0x10, 0xE8, 0x07, 0x18, 1, 0x20, 5]
    );
    let rec = protos::WriteRecord {
        key: "k".into(),
        r#type: protos::write_record::Type::DelState as i32,
        ..Default::default()
    };
    assert_eq!(rec.encode_to_vec(), vec![0x0A, 1, b'k', 0x28, 10]);
}

#[test]
fn put_state_metadata_skips_field_two() {
    let m = protos::PutStateMetadata {
        key: "k".into(),
        collection: "c".into(),
        metadata: Some(protos::StateMetadata {
            metakey: "m".into(),
            value: vec![],
        }),
    };
    assert_eq!(
        m.encode_to_vec(),
        vec![0x0A, 1, b'k', 0x1A, 1, b'c', 0x22, 3, 0x0A, 1, b'm']
    );
}

#[test]
fn seek_position_oneof_and_tx_validation_codes() {
    let p = orderer::SeekPosition {
        r#type: Some(orderer::seek_position::Type::Specified(
            orderer::SeekSpecified { number: 7 },
        )),
    };
    assert_eq!(p.encode_to_vec(), vec![0x1A, 2, 0x08, 7]);
    assert_eq!(protos::TxValidationCode::MvccReadConflict as i32, 11);
    assert_eq!(protos::TxValidationCode::InvalidOtherReason as i32, 255);
    let r = gateway::CommitStatusResponse {
        result: 10,
        block_number: 3,
    };
    assert_eq!(r.encode_to_vec(), vec![0x08, 10, 0x10, 3]);
}

#[test]
fn grpc_service_names_match_fabric() {
    use fabric_protos::gateway::gateway_server::SERVICE_NAME as GATEWAY;
    use fabric_protos::protos::chaincode_server::SERVICE_NAME as CHAINCODE;
    use fabric_protos::protos::chaincode_support_server::SERVICE_NAME as SUPPORT;
    assert_eq!(CHAINCODE, "protos.Chaincode");
    assert_eq!(SUPPORT, "protos.ChaincodeSupport");
    assert_eq!(GATEWAY, "gateway.Gateway");
}

#[test]
fn round_trip_query_response() {
    let q = protos::QueryResponse {
        results: vec![protos::QueryResultBytes {
            result_bytes: vec![1, 2, 3],
        }],
        has_more: true,
        id: "i".into(),
        metadata: protos::QueryResponseMetadata {
            fetched_records_count: 1,
            bookmark: "b".into(),
        }
        .encode_to_vec(),
    };
    let back = protos::QueryResponse::decode(q.encode_to_vec().as_slice());
    assert_eq!(back.ok(), Some(q));
}
