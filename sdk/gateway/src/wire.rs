//! The sans-I/O core: builds the exact bytes that get signed and sent, and reads the bytes that
//! come back. No network, no clock, no randomness: those arrive as arguments.

use std::collections::HashMap;

use fabric_protos::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use fabric_protos::gateway::{ChaincodeEventsRequest, CommitStatusRequest};
use fabric_protos::orderer::{
    SeekInfo, SeekNextCommit, SeekPosition, SeekSpecified, seek_info, seek_position,
};
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput,
    ChaincodeInvocationSpec, ChaincodeProposalPayload, ChaincodeSpec, Proposal,
    ProposalResponsePayload, Transaction,
};
use prost::Message;

use crate::identity::sha256;

/// Length of a proposal nonce, as in the fabric-gateway clients.
pub const NONCE_LEN: usize = 24;

/// Everything a proposal is made of; the caller supplies nonce and timestamp.
#[derive(Debug, Clone)]
pub struct ProposalSpec<'a> {
    /// Channel name.
    pub channel: &'a str,
    /// Chaincode name.
    pub chaincode: &'a str,
    /// Transaction function name (becomes `args[0]`).
    pub function: &'a str,
    /// Function arguments.
    pub args: &'a [Vec<u8>],
    /// Private data that is not recorded in the transaction.
    pub transient: &'a HashMap<String, Vec<u8>>,
    /// Serialized `msp.SerializedIdentity` of the submitter.
    pub creator: &'a [u8],
    /// Fresh random bytes.
    pub nonce: &'a [u8],
    /// The proposal's timestamp.
    pub timestamp: prost_types::Timestamp,
}

/// A serialized proposal and its transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltProposal {
    /// `hex(SHA-256(nonce ‖ creator))`.
    pub transaction_id: String,
    /// The serialized `protos.Proposal`: the bytes to sign.
    pub bytes: Vec<u8>,
}

/// `hex(SHA-256(nonce ‖ creator))`, the id the endorser recomputes and checks.
pub fn transaction_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut buf = Vec::with_capacity(nonce.len() + creator.len());
    buf.extend_from_slice(nonce);
    buf.extend_from_slice(creator);
    hex::encode(sha256(&buf))
}

/// Builds a proposal exactly as the Fabric Gateway expects it (wire spec §4.1).
pub fn build_proposal(spec: &ProposalSpec<'_>) -> BuiltProposal {
    let transaction_id = transaction_id(spec.nonce, spec.creator);
    let chaincode_id = ChaincodeId {
        name: spec.chaincode.to_owned(),
        ..Default::default()
    };
    let channel_header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: Some(spec.timestamp),
        channel_id: spec.channel.to_owned(),
        tx_id: transaction_id.clone(),
        epoch: 0,
        extension: ChaincodeHeaderExtension {
            chaincode_id: Some(chaincode_id.clone()),
        }
        .encode_to_vec(),
        tls_cert_hash: Vec::new(),
    };
    let signature_header = SignatureHeader {
        creator: spec.creator.to_vec(),
        nonce: spec.nonce.to_vec(),
    };
    let header = Header {
        channel_header: channel_header.encode_to_vec(),
        signature_header: signature_header.encode_to_vec(),
    };
    let mut args = Vec::with_capacity(spec.args.len() + 1);
    args.push(spec.function.as_bytes().to_vec());
    args.extend(spec.args.iter().cloned());
    let invocation = ChaincodeInvocationSpec {
        chaincode_spec: Some(ChaincodeSpec {
            chaincode_id: Some(chaincode_id),
            input: Some(ChaincodeInput {
                args,
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let payload = ChaincodeProposalPayload {
        input: invocation.encode_to_vec(),
        transient_map: spec.transient.clone(),
    };
    let proposal = Proposal {
        header: header.encode_to_vec(),
        payload: payload.encode_to_vec(),
        extension: Vec::new(),
    };
    BuiltProposal {
        transaction_id,
        bytes: proposal.encode_to_vec(),
    }
}

/// Why a prepared transaction's result could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed prepared transaction: {0}")]
pub struct MalformedEnvelope(pub &'static str);

/// Reads the chaincode's result from the prepared transaction the gateway returns after
/// endorsement: `Payload.data` → `Transaction` → `ChaincodeActionPayload.action
/// .proposal_response_payload` → `ProposalResponsePayload.extension` → `ChaincodeAction
/// .response.payload` (wire spec §4.3 step 2).
///
/// # Errors
/// [`MalformedEnvelope`] naming the layer that did not decode.
pub fn transaction_result(envelope: &Envelope) -> Result<Vec<u8>, MalformedEnvelope> {
    let payload =
        Payload::decode(envelope.payload.as_slice()).map_err(|_| MalformedEnvelope("payload"))?;
    let transaction = Transaction::decode(payload.data.as_slice())
        .map_err(|_| MalformedEnvelope("transaction"))?;
    let action = transaction
        .actions
        .first()
        .ok_or(MalformedEnvelope("transaction has no action"))?;
    let action_payload = ChaincodeActionPayload::decode(action.payload.as_slice())
        .map_err(|_| MalformedEnvelope("chaincode action payload"))?;
    let endorsed = action_payload
        .action
        .ok_or(MalformedEnvelope("no endorsed action"))?;
    let response_payload =
        ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice())
            .map_err(|_| MalformedEnvelope("proposal response payload"))?;
    let chaincode_action = ChaincodeAction::decode(response_payload.extension.as_slice())
        .map_err(|_| MalformedEnvelope("chaincode action"))?;
    Ok(chaincode_action
        .response
        .map(|r| r.payload)
        .unwrap_or_default())
}

/// The serialized `gateway.CommitStatusRequest` (the bytes to sign).
pub fn commit_status_request(transaction_id: &str, channel: &str, creator: &[u8]) -> Vec<u8> {
    CommitStatusRequest {
        transaction_id: transaction_id.to_owned(),
        channel_id: channel.to_owned(),
        identity: creator.to_vec(),
    }
    .encode_to_vec()
}

/// Where a chaincode event stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// The next block to be committed (the gateway's default).
    NextCommit,
    /// This block number.
    Block(u64),
    /// Block `block`, skipping events from transactions up to and including `after_transaction`.
    After {
        /// The block that holds `after_transaction`.
        block: u64,
        /// The last transaction already processed.
        after_transaction: String,
    },
}

/// The serialized `gateway.ChaincodeEventsRequest` (the bytes to sign).
pub fn chaincode_events_request(
    channel: &str,
    chaincode: &str,
    creator: &[u8],
    start: &StartAt,
) -> Vec<u8> {
    let (position, after) = match start {
        StartAt::NextCommit => (seek_position::Type::NextCommit(SeekNextCommit {}), ""),
        StartAt::Block(number) => (
            seek_position::Type::Specified(SeekSpecified { number: *number }),
            "",
        ),
        StartAt::After {
            block,
            after_transaction,
        } => (
            seek_position::Type::Specified(SeekSpecified { number: *block }),
            after_transaction.as_str(),
        ),
    };
    ChaincodeEventsRequest {
        channel_id: channel.to_owned(),
        chaincode_id: chaincode.to_owned(),
        identity: creator.to_vec(),
        start_position: Some(SeekPosition {
            r#type: Some(position),
        }),
        after_transaction_id: after.to_owned(),
    }
    .encode_to_vec()
}

/// The serialized `common.Payload` of a Deliver request (wire: an `Envelope` of type
/// `DELIVER_SEEK_INFO` whose data is an `orderer.SeekInfo` from `start` to the end of time,
/// blocking until blocks are ready): the bytes to sign. Resuming after a transaction is a
/// chaincode-events notion; for blocks `StartAt::After` starts at its block.
pub fn deliver_payload(
    channel: &str,
    creator: &[u8],
    nonce: &[u8],
    timestamp: prost_types::Timestamp,
    start: &StartAt,
    tls_cert_hash: &[u8],
) -> Vec<u8> {
    let start = match start {
        StartAt::NextCommit => seek_position::Type::NextCommit(SeekNextCommit {}),
        StartAt::Block(number) | StartAt::After { block: number, .. } => {
            seek_position::Type::Specified(SeekSpecified { number: *number })
        }
    };
    let seek = SeekInfo {
        start: Some(SeekPosition {
            r#type: Some(start),
        }),
        stop: Some(SeekPosition {
            r#type: Some(seek_position::Type::Specified(SeekSpecified {
                number: u64::MAX,
            })),
        }),
        behavior: seek_info::SeekBehavior::BlockUntilReady as i32,
        error_response: seek_info::SeekErrorResponse::Strict as i32,
        content_type: seek_info::SeekContentType::Block as i32,
    };
    let channel_header = ChannelHeader {
        r#type: HeaderType::DeliverSeekInfo as i32,
        version: 0,
        timestamp: Some(timestamp),
        channel_id: channel.to_owned(),
        tx_id: transaction_id(nonce, creator),
        epoch: 0,
        extension: Vec::new(),
        tls_cert_hash: tls_cert_hash.to_vec(),
    };
    let signature_header = SignatureHeader {
        creator: creator.to_vec(),
        nonce: nonce.to_vec(),
    };
    Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: signature_header.encode_to_vec(),
        }),
        data: seek.encode_to_vec(),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::protos::{
        ChaincodeEndorsedAction, ProposalResponsePayload, Response, TransactionAction,
    };

    fn spec<'a>(transient: &'a HashMap<String, Vec<u8>>, args: &'a [Vec<u8>]) -> ProposalSpec<'a> {
        ProposalSpec {
            channel: "ami",
            chaincode: "bcami",
            function: "CreateAsset",
            args,
            transient,
            creator: b"creator-bytes",
            nonce: &[9u8; NONCE_LEN],
            timestamp: prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            },
        }
    }

    #[test]
    fn transaction_id_is_hex_sha256_of_nonce_then_creator() {
        // sha256("abc") from FIPS 180-2 appendix B.1.
        assert_eq!(
            transaction_id(b"a", b"bc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn proposal_has_the_structure_the_endorser_checks() {
        let mut transient = HashMap::new();
        transient.insert("secret".to_owned(), b"s3cr3t".to_vec());
        let args = vec![b"one".to_vec(), b"two".to_vec()];
        let spec = spec(&transient, &args);
        let built = build_proposal(&spec);
        assert_eq!(
            built.transaction_id,
            transaction_id(spec.nonce, spec.creator)
        );

        let proposal = Proposal::decode(built.bytes.as_slice()).expect("proposal");
        assert!(proposal.extension.is_empty());
        let header = Header::decode(proposal.header.as_slice()).expect("header");
        let ch = ChannelHeader::decode(header.channel_header.as_slice()).expect("channel header");
        assert_eq!(ch.r#type, 3);
        assert_eq!(ch.version, 0);
        assert_eq!(ch.epoch, 0);
        assert_eq!(ch.channel_id, "ami");
        assert_eq!(ch.tx_id, built.transaction_id);
        assert_eq!(ch.timestamp, Some(spec.timestamp));
        assert!(ch.tls_cert_hash.is_empty());
        let ext = ChaincodeHeaderExtension::decode(ch.extension.as_slice()).expect("extension");
        assert_eq!(ext.chaincode_id.map(|c| c.name).as_deref(), Some("bcami"));

        let sh = SignatureHeader::decode(header.signature_header.as_slice()).expect("sig header");
        assert_eq!(sh.creator, b"creator-bytes");
        assert_eq!(sh.nonce, vec![9u8; NONCE_LEN]);

        let payload =
            ChaincodeProposalPayload::decode(proposal.payload.as_slice()).expect("payload");
        assert_eq!(payload.transient_map, transient);
        let invocation =
            ChaincodeInvocationSpec::decode(payload.input.as_slice()).expect("invocation");
        let cs = invocation.chaincode_spec.expect("chaincode spec");
        assert_eq!(cs.r#type, 0, "type left unset");
        assert_eq!(cs.chaincode_id.map(|c| c.name).as_deref(), Some("bcami"));
        let input = cs.input.expect("input");
        assert_eq!(
            input.args,
            vec![b"CreateAsset".to_vec(), b"one".to_vec(), b"two".to_vec()]
        );
        assert!(!input.is_init);
    }

    #[test]
    fn different_nonces_give_different_transaction_ids() {
        let transient = HashMap::new();
        let mut a = spec(&transient, &[]);
        let first = build_proposal(&a).transaction_id;
        let other = [1u8; NONCE_LEN];
        a.nonce = &other;
        assert_ne!(first, build_proposal(&a).transaction_id);
    }

    pub(crate) fn prepared_envelope(result: &[u8]) -> Envelope {
        let action = ChaincodeAction {
            response: Some(Response {
                status: 200,
                message: String::new(),
                payload: result.to_vec(),
            }),
            ..Default::default()
        };
        let prp = ProposalResponsePayload {
            proposal_hash: vec![1; 32],
            extension: action.encode_to_vec(),
        };
        let cap = ChaincodeActionPayload {
            chaincode_proposal_payload: Vec::new(),
            action: Some(ChaincodeEndorsedAction {
                proposal_response_payload: prp.encode_to_vec(),
                endorsements: Vec::new(),
            }),
        };
        let tx = Transaction {
            actions: vec![TransactionAction {
                header: Vec::new(),
                payload: cap.encode_to_vec(),
            }],
        };
        Envelope {
            payload: Payload {
                header: Some(Header::default()),
                data: tx.encode_to_vec(),
            }
            .encode_to_vec(),
            signature: Vec::new(),
        }
    }

    #[test]
    fn result_is_read_from_the_prepared_transaction() {
        assert_eq!(
            transaction_result(&prepared_envelope(b"{\"ok\":true}")).as_deref(),
            Ok(&b"{\"ok\":true}"[..])
        );
    }

    proptest::proptest! {
        #[test]
        fn any_result_round_trips_through_a_prepared_transaction(
            result in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)
        ) {
            proptest::prop_assert_eq!(transaction_result(&prepared_envelope(&result)), Ok(result));
        }

        #[test]
        fn arbitrary_envelopes_never_panic(
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024)
        ) {
            let _ = transaction_result(&Envelope { payload, signature: Vec::new() });
        }
    }

    #[test]
    fn malformed_prepared_transaction_names_the_layer() {
        let env = Envelope {
            payload: vec![0xff, 0xff],
            signature: Vec::new(),
        };
        assert_eq!(transaction_result(&env), Err(MalformedEnvelope("payload")));
        let env = Envelope {
            payload: Payload {
                header: None,
                data: Transaction::default().encode_to_vec(),
            }
            .encode_to_vec(),
            signature: Vec::new(),
        };
        assert_eq!(
            transaction_result(&env),
            Err(MalformedEnvelope("transaction has no action"))
        );
    }

    #[test]
    fn events_request_resumes_after_a_transaction() {
        let bytes = chaincode_events_request(
            "ami",
            "bcami",
            b"me",
            &StartAt::After {
                block: 12,
                after_transaction: "tx9".into(),
            },
        );
        let req = ChaincodeEventsRequest::decode(bytes.as_slice()).expect("decode");
        assert_eq!(req.channel_id, "ami");
        assert_eq!(req.chaincode_id, "bcami");
        assert_eq!(req.identity, b"me");
        assert_eq!(req.after_transaction_id, "tx9");
        assert_eq!(
            req.start_position.and_then(|p| p.r#type),
            Some(seek_position::Type::Specified(SeekSpecified { number: 12 }))
        );
        let next = ChaincodeEventsRequest::decode(
            chaincode_events_request("ami", "bcami", b"me", &StartAt::NextCommit).as_slice(),
        )
        .expect("decode");
        assert_eq!(
            next.start_position.and_then(|p| p.r#type),
            Some(seek_position::Type::NextCommit(SeekNextCommit {}))
        );
        assert!(next.after_transaction_id.is_empty());
    }

    #[test]
    fn commit_status_request_carries_the_creator() {
        let req = CommitStatusRequest::decode(commit_status_request("tx", "ami", b"me").as_slice())
            .expect("decode");
        assert_eq!(req.transaction_id, "tx");
        assert_eq!(req.channel_id, "ami");
        assert_eq!(req.identity, b"me");
    }
}
