//! Property tests of the client's decoders: what the gateway can send back (status details,
//! prepared transactions) round-trips, and arbitrary bytes never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fabric_gateway_client::{Checkpoint, ErrorDetail, Stage, StageError, encode_details};
use proptest::prelude::*;

fn detail() -> impl Strategy<Value = ErrorDetail> {
    (".{0,40}", ".{0,20}", ".{0,200}").prop_map(|(address, msp_id, message)| ErrorDetail {
        address,
        msp_id,
        message,
    })
}

proptest! {
    #[test]
    fn error_details_round_trip(details in proptest::collection::vec(detail(), 0..5), message in ".{0,100}") {
        let code = tonic::Code::Aborted;
        let status = tonic::Status::with_details(code, message.clone(), encode_details(code, &message, &details).into());
        let err = StageError::from_status(Stage::Endorse, Some("tx"), "127.0.0.1:1", &status);
        prop_assert_eq!(err.details(), details.as_slice());
        prop_assert_eq!(err.message(), message.as_str());
    }

    #[test]
    fn arbitrary_status_details_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let status = tonic::Status::with_details(tonic::Code::Unknown, "x", bytes.into());
        let err = StageError::from_status(Stage::Evaluate, None, "e", &status);
        let _ = err.to_string();
        let _ = err.chaincode_error();
    }

    #[test]
    fn chaincode_message_is_recovered_verbatim(status in 400i32..600, message in ".{0,200}") {
        let text = format!("chaincode response {status}, {message}");
        let code = tonic::Code::Unknown;
        let details = [ErrorDetail { address: "a".into(), msp_id: "m".into(), message: text.clone() }];
        let st = tonic::Status::with_details(code, text.clone(), encode_details(code, &text, &details).into());
        let cc = StageError::from_status(Stage::Evaluate, Some("t"), "e", &st).chaincode_error().unwrap();
        prop_assert_eq!(cc.status, Some(status));
        prop_assert_eq!(cc.message, message);
    }

    #[test]
    fn arbitrary_checkpoint_files_never_panic(text in ".{0,200}") {
        let dir = std::env::temp_dir().join(format!("gw-prop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp.json");
        std::fs::write(&path, &text).unwrap();
        let _ = Checkpoint::load(&path);
    }
}
