//! The client against an in-process mock of the Fabric Gateway service (a real tonic server on
//! 127.0.0.1): request structure, signatures, per-stage errors, retries, events and resume.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_gateway_client::{
    Checkpoint, Deadlines, Error, ErrorDetail, Gateway, Identity, MspSigner, P256Signer,
    RetryPolicy, Signer, Stage, StartAt, ValidationCode, encode_details, load_msp, sha256,
};
use fabric_protos::common::{ChannelHeader, Envelope, Header, Payload, SignatureHeader};
use fabric_protos::gateway::gateway_server::{Gateway as GatewayService, GatewayServer};
use fabric_protos::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
};
use fabric_protos::orderer::seek_position;
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeEvent,
    ChaincodeInvocationSpec, ChaincodeProposalPayload, Proposal, ProposalResponsePayload, Response,
    SignedProposal, Transaction, TransactionAction,
};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::scalar::IsHigh;
use prost::Message;
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Everything the mock saw, and the scripted answers it gives (FIFO; defaults when empty).
#[derive(Default)]
struct Script {
    evaluate: VecDeque<Result<Vec<u8>, tonic::Status>>,
    endorse: VecDeque<tonic::Status>,
    submit: VecDeque<tonic::Status>,
    commit: VecDeque<Result<i32, tonic::Status>>,
    /// The "ledger" of event blocks the events service streams from.
    blocks: Vec<ChaincodeEventsResponse>,
    /// The ledger's full blocks, for the Deliver service.
    ledger: Vec<fabric_protos::common::Block>,
    /// A status the Deliver service ends every stream with instead of SUCCESS.
    deliver_status: Option<fabric_protos::common::Status>,
    /// How long Evaluate takes.
    evaluate_delay: Option<Duration>,
    seen_deliver: Vec<(bool, Envelope)>,
    seen_evaluate: Vec<EvaluateRequest>,
    seen_endorse: Vec<EndorseRequest>,
    seen_submit: Vec<SubmitRequest>,
    seen_commit: Vec<SignedCommitStatusRequest>,
    seen_events: Vec<SignedChaincodeEventsRequest>,
    /// Payloads of the prepared transactions handed out, by transaction id.
    prepared: Vec<(String, Vec<u8>)>,
}

#[derive(Clone)]
struct Mock {
    script: Arc<Mutex<Script>>,
    key: VerifyingKey,
}

impl Mock {
    fn verify(&self, bytes: &[u8], der: &[u8]) -> Result<(), tonic::Status> {
        let sig = Signature::from_der(der)
            .map_err(|_| tonic::Status::invalid_argument("signature is not DER"))?;
        if bool::from(sig.s().is_high()) {
            return Err(tonic::Status::invalid_argument("high S"));
        }
        self.key
            .verify_prehash(&sha256(bytes), &sig)
            .map_err(|_| tonic::Status::permission_denied("bad signature"))
    }

    fn verify_proposal(&self, sp: Option<&SignedProposal>) -> Result<(), tonic::Status> {
        let sp = sp.ok_or_else(|| tonic::Status::invalid_argument("no proposal"))?;
        self.verify(&sp.proposal_bytes, &sp.signature)
    }
}

/// A prepared transaction whose result is `args` joined by `,`, as a gateway would return it.
fn prepared(proposal_bytes: &[u8]) -> Envelope {
    let proposal = Proposal::decode(proposal_bytes).unwrap();
    let header = Header::decode(proposal.header.as_slice()).unwrap();
    let cpp = ChaincodeProposalPayload::decode(proposal.payload.as_slice()).unwrap();
    let spec = ChaincodeInvocationSpec::decode(cpp.input.as_slice()).unwrap();
    let args = spec.chaincode_spec.unwrap().input.unwrap().args;
    let result: Vec<u8> = args[1..].join(&b","[..]);
    let action = ChaincodeAction {
        response: Some(Response {
            status: 200,
            message: String::new(),
            payload: result,
        }),
        ..Default::default()
    };
    let cap = ChaincodeActionPayload {
        chaincode_proposal_payload: Vec::new(),
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: ProposalResponsePayload {
                proposal_hash: sha256(proposal_bytes).to_vec(),
                extension: action.encode_to_vec(),
            }
            .encode_to_vec(),
            endorsements: Vec::new(),
        }),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: header.signature_header.clone(),
            payload: cap.encode_to_vec(),
        }],
    };
    Envelope {
        payload: Payload {
            header: Some(header),
            data: tx.encode_to_vec(),
        }
        .encode_to_vec(),
        signature: Vec::new(),
    }
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<ChaincodeEventsResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl GatewayService for Mock {
    async fn evaluate(
        &self,
        request: tonic::Request<EvaluateRequest>,
    ) -> Result<tonic::Response<EvaluateResponse>, tonic::Status> {
        let req = request.into_inner();
        self.verify_proposal(req.proposed_transaction.as_ref())?;
        let delay = self.script.lock().unwrap().evaluate_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let answer = {
            let mut s = self.script.lock().unwrap();
            s.seen_evaluate.push(req.clone());
            s.evaluate.pop_front()
        };
        let payload = match answer {
            Some(answer) => answer?,
            None => b"evaluated".to_vec(),
        };
        Ok(tonic::Response::new(EvaluateResponse {
            result: Some(Response {
                status: 200,
                message: String::new(),
                payload,
            }),
        }))
    }

    async fn endorse(
        &self,
        request: tonic::Request<EndorseRequest>,
    ) -> Result<tonic::Response<EndorseResponse>, tonic::Status> {
        let req = request.into_inner();
        self.verify_proposal(req.proposed_transaction.as_ref())?;
        let mut s = self.script.lock().unwrap();
        s.seen_endorse.push(req.clone());
        if let Some(status) = s.endorse.pop_front() {
            return Err(status);
        }
        let env = prepared(&req.proposed_transaction.unwrap().proposal_bytes);
        s.prepared.push((req.transaction_id, env.payload.clone()));
        Ok(tonic::Response::new(EndorseResponse {
            prepared_transaction: Some(env),
        }))
    }

    async fn submit(
        &self,
        request: tonic::Request<SubmitRequest>,
    ) -> Result<tonic::Response<SubmitResponse>, tonic::Status> {
        let req = request.into_inner();
        let env = req.prepared_transaction.clone().unwrap_or_default();
        self.verify(&env.payload, &env.signature)?;
        let mut s = self.script.lock().unwrap();
        s.seen_submit.push(req);
        match s.submit.pop_front() {
            Some(status) => Err(status),
            None => Ok(tonic::Response::new(SubmitResponse {})),
        }
    }

    async fn commit_status(
        &self,
        request: tonic::Request<SignedCommitStatusRequest>,
    ) -> Result<tonic::Response<CommitStatusResponse>, tonic::Status> {
        let req = request.into_inner();
        self.verify(&req.request, &req.signature)?;
        let mut s = self.script.lock().unwrap();
        s.seen_commit.push(req);
        let result = s.commit.pop_front().unwrap_or(Ok(0))?;
        Ok(tonic::Response::new(CommitStatusResponse {
            result,
            block_number: 7,
        }))
    }

    type ChaincodeEventsStream = EventStream;

    /// Streams the scripted blocks from the start position, skipping events up to and including
    /// `after_transaction_id`, as Fabric's gateway does.
    async fn chaincode_events(
        &self,
        request: tonic::Request<SignedChaincodeEventsRequest>,
    ) -> Result<tonic::Response<EventStream>, tonic::Status> {
        let signed = request.into_inner();
        self.verify(&signed.request, &signed.signature)?;
        let req = ChaincodeEventsRequest::decode(signed.request.as_slice())
            .map_err(|_| tonic::Status::invalid_argument("bad request"))?;
        let mut s = self.script.lock().unwrap();
        s.seen_events.push(signed);
        let start = match req.start_position.and_then(|p| p.r#type) {
            Some(seek_position::Type::Specified(n)) => n.number,
            Some(seek_position::Type::NextCommit(_)) | None => u64::MAX,
            Some(_) => return Err(tonic::Status::invalid_argument("invalid start position")),
        };
        let mut passed = req.after_transaction_id.is_empty();
        let mut out = Vec::new();
        for block in s.blocks.iter().filter(|b| b.block_number >= start) {
            let mut events = Vec::new();
            for e in &block.events {
                if !passed {
                    passed = e.tx_id == req.after_transaction_id;
                    continue;
                }
                if e.chaincode_id == req.chaincode_id {
                    events.push(e.clone());
                }
            }
            if !events.is_empty() {
                out.push(Ok(ChaincodeEventsResponse {
                    events,
                    block_number: block.block_number,
                }));
            }
        }
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(out))))
    }
}

type DeliverStream = Pin<
    Box<dyn Stream<Item = Result<fabric_protos::protos::DeliverResponse, tonic::Status>> + Send>,
>;

impl Mock {
    /// Serves the scripted ledger from the seek envelope's start, as a peer's Deliver does:
    /// blocks (or filtered blocks), then a status.
    async fn deliver_from(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
        filtered: bool,
    ) -> Result<tonic::Response<DeliverStream>, tonic::Status> {
        use fabric_protos::orderer::SeekInfo;
        use fabric_protos::protos::{
            DeliverResponse, FilteredBlock, FilteredTransaction, deliver_response,
        };
        let mut incoming = request.into_inner();
        let envelope = incoming
            .message()
            .await?
            .ok_or_else(|| tonic::Status::invalid_argument("no seek envelope"))?;
        self.verify(&envelope.payload, &envelope.signature)?;
        let payload = Payload::decode(envelope.payload.as_slice())
            .map_err(|_| tonic::Status::invalid_argument("bad payload"))?;
        let header = payload.header.unwrap_or_default();
        let ch = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
        assert_eq!(ch.r#type, 5, "DELIVER_SEEK_INFO");
        let seek = SeekInfo::decode(payload.data.as_slice())
            .map_err(|_| tonic::Status::invalid_argument("bad seek info"))?;
        let mut s = self.script.lock().unwrap();
        s.seen_deliver.push((filtered, envelope));
        let start = match seek.start.and_then(|p| p.r#type) {
            Some(seek_position::Type::Specified(n)) => n.number,
            _ => u64::MAX,
        };
        let mut out = Vec::new();
        for block in s
            .ledger
            .iter()
            .filter(|b| b.header.as_ref().unwrap().number >= start)
        {
            let r#type = if filtered {
                let transactions = block
                    .data
                    .as_ref()
                    .unwrap()
                    .data
                    .iter()
                    .map(|env| {
                        let env = Envelope::decode(env.as_slice()).unwrap();
                        let p = Payload::decode(env.payload.as_slice()).unwrap();
                        let ch = ChannelHeader::decode(p.header.unwrap().channel_header.as_slice())
                            .unwrap();
                        FilteredTransaction {
                            txid: ch.tx_id,
                            r#type: ch.r#type,
                            tx_validation_code: 0,
                            data: None,
                        }
                    })
                    .collect();
                deliver_response::Type::FilteredBlock(FilteredBlock {
                    channel_id: "ami".into(),
                    number: block.header.as_ref().unwrap().number,
                    filtered_transactions: transactions,
                })
            } else {
                deliver_response::Type::Block(block.clone())
            };
            out.push(Ok(DeliverResponse {
                r#type: Some(r#type),
            }));
        }
        let status = s
            .deliver_status
            .unwrap_or(fabric_protos::common::Status::Success);
        if status != fabric_protos::common::Status::Success {
            out.clear();
        }
        out.push(Ok(DeliverResponse {
            r#type: Some(deliver_response::Type::Status(status as i32)),
        }));
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(out))))
    }
}

#[tonic::async_trait]
impl fabric_protos::protos::deliver_server::Deliver for Mock {
    type DeliverStream = DeliverStream;
    type DeliverFilteredStream = DeliverStream;

    async fn deliver(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<DeliverStream>, tonic::Status> {
        self.deliver_from(request, false).await
    }

    async fn deliver_filtered(
        &self,
        request: tonic::Request<tonic::Streaming<Envelope>>,
    ) -> Result<tonic::Response<DeliverStream>, tonic::Status> {
        self.deliver_from(request, true).await
    }
}

struct Harness {
    script: Arc<Mutex<Script>>,
    address: String,
    signer: P256Signer,
    identity: Identity,
}

impl Harness {
    fn builder(&self) -> fabric_gateway_client::GatewayBuilder {
        Gateway::builder(self.address.clone(), self.identity.clone())
            .signer(self.signer.clone())
            .retry(RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
            })
    }

    async fn gateway(&self) -> Gateway {
        self.builder().connect().await.expect("connect to mock")
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }
}

fn credentials() -> (Identity, P256Signer) {
    let creds = load_msp(&Path::new(FIXTURES).join("msp"), "TestMSP").expect("fixture MSP");
    match creds.signer {
        MspSigner::P256(key) => (creds.identity, key),
        other => panic!("the fixture MSP holds a P-256 key, not {other:?}"),
    }
}

async fn start_mock(tls: bool) -> Harness {
    let (identity, signer) = credentials();
    let script = Arc::new(Mutex::new(Script::default()));
    let mock = Mock {
        script: script.clone(),
        key: *signer.verifying_key(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut server = tonic::transport::Server::builder();
    if tls {
        let tls_dir = Path::new(FIXTURES).join("tls");
        let cert = std::fs::read(tls_dir.join("server.crt")).unwrap();
        let key = std::fs::read(tls_dir.join("server.key")).unwrap();
        server = server
            .tls_config(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(cert, key)),
            )
            .unwrap();
    }
    let router = server
        .add_service(GatewayServer::new(mock.clone()))
        .add_service(fabric_protos::protos::deliver_server::DeliverServer::new(
            mock,
        ));
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    Harness {
        script,
        address,
        signer,
        identity,
    }
}

fn chaincode_failure(message: &str) -> tonic::Status {
    let details = [
        ErrorDetail {
            address: "peer0.utility:7051".into(),
            msp_id: "UtilityMSP".into(),
            message: format!("chaincode response 500, {message}"),
        },
        ErrorDetail {
            address: "peer0.operator:7051".into(),
            msp_id: "OperatorMSP".into(),
            message: format!("chaincode response 500, {message}"),
        },
    ];
    let text = "failed to endorse transaction, see attached details for more info";
    tonic::Status::with_details(
        tonic::Code::Aborted,
        text,
        encode_details(tonic::Code::Aborted, text, &details).into(),
    )
}

#[tokio::test]
async fn msp_folder_loads_the_key_matching_the_certificate() {
    let (identity, signer) = credentials();
    assert_eq!(identity.msp_id(), "TestMSP");
    assert!(
        identity
            .certificate_pem()
            .starts_with(b"-----BEGIN CERTIFICATE-----")
    );
    // The keystore also holds an unrelated key and a non-key file; the right one is chosen.
    let other =
        std::fs::read_to_string(Path::new(FIXTURES).join("msp/keystore/0000_other_sk")).unwrap();
    let other = P256Signer::from_pem(&other).unwrap();
    assert_ne!(other.verifying_key(), signer.verifying_key());
    let digest = sha256(b"x");
    let sig = Signature::from_der(&signer.sign(&digest).unwrap()).unwrap();
    let (_, cert) = x509_parser::pem::parse_x509_pem(identity.certificate_pem()).expect("pem");
    let cert = cert.parse_x509().expect("x509");
    let cert_key =
        VerifyingKey::from_sec1_bytes(&cert.public_key().subject_public_key.data).unwrap();
    cert_key
        .verify_prehash(&digest, &sig)
        .expect("signed by the certificate's key");
}

#[tokio::test]
async fn missing_msp_folder_names_the_path() {
    let err = load_msp(Path::new("/nonexistent/msp"), "X").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/msp/signcerts"),
        "{err}"
    );
}

#[tokio::test]
async fn evaluate_sends_a_well_formed_signed_proposal() {
    let h = start_mock(false).await;
    let contract = h.gateway().await.network("ami").contract("bcami");
    let out = contract
        .proposal("ReadAsset")
        .arg("a")
        .transient("k", b"v".to_vec())
        .organizations(["UtilityMSP"])
        .evaluate()
        .await
        .unwrap();
    assert_eq!(out, b"evaluated");

    let s = h.script();
    let req = &s.seen_evaluate[0];
    assert_eq!(req.channel_id, "ami");
    assert_eq!(req.target_organizations, vec!["UtilityMSP".to_string()]);
    let proposal = Proposal::decode(
        req.proposed_transaction
            .as_ref()
            .unwrap()
            .proposal_bytes
            .as_slice(),
    )
    .unwrap();
    let header = Header::decode(proposal.header.as_slice()).unwrap();
    let ch = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    let sh = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
    assert_eq!(sh.creator, h.identity.creator());
    assert_eq!(sh.nonce.len(), 24);
    let mut preimage = sh.nonce.clone();
    preimage.extend_from_slice(&sh.creator);
    assert_eq!(ch.tx_id, hex::encode(sha256(&preimage)));
    assert_eq!(req.transaction_id, ch.tx_id);
    assert_eq!(ch.channel_id, "ami");
    let cpp = ChaincodeProposalPayload::decode(proposal.payload.as_slice()).unwrap();
    assert_eq!(
        cpp.transient_map.get("k").map(Vec::as_slice),
        Some(&b"v"[..])
    );
    let spec = ChaincodeInvocationSpec::decode(cpp.input.as_slice()).unwrap();
    let args = spec.chaincode_spec.unwrap().input.unwrap().args;
    assert_eq!(args, vec![b"ReadAsset".to_vec(), b"a".to_vec()]);
}

#[tokio::test]
async fn submit_signs_the_prepared_payload_as_received_and_waits_for_commit() {
    let h = start_mock(false).await;
    let contract = h.gateway().await.network("ami").contract("bcami");
    let committed = contract.submit("Put", ["k", "v"]).await.unwrap();
    assert_eq!(committed.result, b"k,v");
    assert_eq!(committed.block_number, 7);
    assert_eq!(committed.attempts, 1);

    let s = h.script();
    assert_eq!(s.seen_endorse.len(), 1);
    let tx_id = &s.seen_endorse[0].transaction_id;
    assert_eq!(&committed.transaction_id, tx_id);
    let submitted = &s.seen_submit[0];
    assert_eq!(&submitted.transaction_id, tx_id);
    let (prepared_id, prepared_payload) = &s.prepared[0];
    assert_eq!(prepared_id, tx_id);
    assert_eq!(
        &submitted.prepared_transaction.as_ref().unwrap().payload,
        prepared_payload,
        "the envelope payload is sent back byte for byte"
    );
    let status_req = CommitStatusRequest::decode(s.seen_commit[0].request.as_slice()).unwrap();
    assert_eq!(&status_req.transaction_id, tx_id);
    assert_eq!(status_req.channel_id, "ami");
    assert_eq!(status_req.identity, h.identity.creator());
}

#[tokio::test]
async fn submit_async_returns_before_commit_with_a_handle() {
    let h = start_mock(false).await;
    h.script()
        .commit
        .push_back(Ok(ValidationCode::ENDORSEMENT_POLICY_FAILURE.value()));
    let contract = h.gateway().await.network("ami").contract("bcami");
    let submitted = contract
        .proposal("Put")
        .arg("x")
        .submit_async()
        .await
        .unwrap();
    assert_eq!(submitted.result(), b"x");
    assert!(
        h.script().seen_commit.is_empty(),
        "no commit status asked yet"
    );
    let err = submitted.commit().wait().await.unwrap_err();
    assert_eq!(err.stage(), Some(Stage::CommitStatus));
    assert_eq!(err.transaction_id(), Some(submitted.transaction_id()));
    assert_eq!(
        err.validation_code(),
        Some(ValidationCode::ENDORSEMENT_POLICY_FAILURE)
    );
    assert!(
        err.to_string().contains("ENDORSEMENT_POLICY_FAILURE"),
        "{err}"
    );
}

#[tokio::test]
async fn contract_rejection_surfaces_the_contract_message_at_endorse() {
    let h = start_mock(false).await;
    h.script()
        .endorse
        .push_back(chaincode_failure("meter 4f2a is not provisioned"));
    let contract = h.gateway().await.network("ami").contract("bcami");
    let err = contract.submit("Register", ["4f2a"]).await.unwrap_err();
    let Error::Endorse(e) = &err else {
        panic!("expected an endorse error, got {err:?}");
    };
    assert_eq!(e.code(), tonic::Code::Aborted);
    assert_eq!(e.endpoint(), h.address);
    assert_eq!(e.details().len(), 2);
    assert_eq!(e.details()[1].msp_id, "OperatorMSP");
    assert_eq!(e.details()[1].address, "peer0.operator:7051");
    assert_eq!(
        err.transaction_id(),
        Some(h.script().seen_endorse[0].transaction_id.as_str())
    );
    let cc = err.chaincode_error().expect("chaincode error");
    assert_eq!(cc.status, Some(500));
    assert_eq!(cc.message, "meter 4f2a is not provisioned");
    assert!(h.script().seen_submit.is_empty(), "nothing submitted");
}

#[tokio::test]
async fn evaluate_errors_are_typed_and_not_retried_unless_unavailable() {
    let h = start_mock(false).await;
    let text =
        "evaluate call to endorser returned error: chaincode response 404, no such function: Nope";
    h.script()
        .evaluate
        .push_back(Err(tonic::Status::with_details(
            tonic::Code::Unknown,
            text,
            encode_details(
                tonic::Code::Unknown,
                text,
                &[ErrorDetail {
                    address: "peer0:7051".into(),
                    msp_id: "UtilityMSP".into(),
                    message: "chaincode response 404, no such function: Nope".into(),
                }],
            )
            .into(),
        )));
    let contract = h.gateway().await.network("ami").contract("bcami");
    let err = contract
        .evaluate("Nope", Vec::<Vec<u8>>::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Evaluate(_)), "{err:?}");
    assert_eq!(err.stage(), Some(Stage::Evaluate));
    assert_eq!(h.script().seen_evaluate.len(), 1, "Unknown is not retried");
    let cc = err.chaincode_error().unwrap();
    assert_eq!(
        (cc.status, cc.message.as_str()),
        (Some(404), "no such function: Nope")
    );
}

#[tokio::test]
async fn unavailable_is_retried_on_evaluate_endorse_and_submit() {
    let h = start_mock(false).await;
    {
        let mut s = h.script();
        s.evaluate
            .push_back(Err(tonic::Status::unavailable("peer down")));
        s.endorse.push_back(tonic::Status::unavailable("peer down"));
        s.endorse.push_back(tonic::Status::unavailable("peer down"));
        s.submit
            .push_back(tonic::Status::unavailable("no orderers"));
    }
    let contract = h.gateway().await.network("ami").contract("bcami");
    assert_eq!(contract.evaluate("Get", ["k"]).await.unwrap(), b"evaluated");
    let committed = contract.submit("Put", ["k"]).await.unwrap();
    let s = h.script();
    assert_eq!(s.seen_evaluate.len(), 2);
    assert_eq!(s.seen_endorse.len(), 3);
    assert_eq!(s.seen_submit.len(), 2);
    // Same signed proposal and envelope each time: one transaction id throughout.
    assert!(
        s.seen_endorse
            .iter()
            .all(|r| r.transaction_id == committed.transaction_id)
    );
    assert!(
        s.seen_submit
            .iter()
            .all(|r| r.transaction_id == committed.transaction_id)
    );
}

#[tokio::test]
async fn mismatched_endorsements_are_endorsed_again_for_any_transaction() {
    let h = start_mock(false).await;
    let mismatch = || {
        let text =
            "failed to collect enough transaction endorsements, see attached details for more info";
        let details = [ErrorDetail {
            address: "127.0.0.1:7041".into(),
            msp_id: "OperatorMSP".into(),
            message: "ProposalResponsePayloads do not match".into(),
        }];
        tonic::Status::with_details(
            tonic::Code::Aborted,
            text,
            encode_details(tonic::Code::Aborted, text, &details).into(),
        )
    };
    h.script().endorse.push_back(mismatch());
    let contract = h.gateway().await.network("ami").contract("bcami");
    // Not marked idempotent: nothing was ordered, so endorsing again is safe regardless.
    let committed = contract.submit("Put", ["k"]).await.unwrap();
    assert_eq!(committed.result, b"k");
    {
        let s = h.script();
        assert_eq!(s.seen_endorse.len(), 2);
        assert_eq!(s.seen_submit.len(), 1);
    }
    // Bounded: a mismatch that persists fails at Endorse, naming the endorser that disagreed.
    for _ in 0..RetryPolicy::default().attempts() {
        h.script().endorse.push_back(mismatch());
    }
    let err = contract.submit("Put", ["k"]).await.unwrap_err();
    assert_eq!(err.stage(), Some(Stage::Endorse), "{err}");
    assert!(
        err.to_string()
            .contains("ProposalResponsePayloads do not match"),
        "{err}"
    );
}

fn orderers_said(code: tonic::Code, info: &str) -> tonic::Status {
    let details: Vec<ErrorDetail> = (1..=2)
        .map(|n| ErrorDetail {
            address: format!("127.0.0.1:705{n}"),
            msp_id: "OrdererMSP".into(),
            message: format!(
                "received unsuccessful response from orderer: status=SERVICE_UNAVAILABLE, info={info}"
            ),
        })
        .collect();
    let text = "insufficient number of orderers could successfully process transaction to satisfy quorum requirement";
    tonic::Status::with_details(code, text, encode_details(code, text, &details).into())
}

#[tokio::test]
async fn a_submit_the_orderers_already_processed_is_awaited_not_failed_or_resent() {
    let h = start_mock(false).await;
    h.script().submit.push_back(orderers_said(
        tonic::Code::Unavailable,
        "failed to submit request: request already processed",
    ));
    let contract = h.gateway().await.network("ami").contract("bcami");
    let committed = contract.submit("Put", ["k"]).await.unwrap();
    let s = h.script();
    assert_eq!(
        s.seen_submit.len(),
        1,
        "a delivered envelope is not sent again"
    );
    assert_eq!(s.seen_commit.len(), 1, "its commit status decides");
    assert_eq!(committed.attempts, 1);
}

#[tokio::test]
async fn other_orderer_refusals_still_fail_the_submit() {
    let h = start_mock(false).await;
    for _ in 0..3 {
        h.script().submit.push_back(orderers_said(
            tonic::Code::Unavailable,
            "failed to submit request: consensus not available",
        ));
    }
    let contract = h.gateway().await.network("ami").contract("bcami");
    let err = contract.submit("Put", ["k"]).await.unwrap_err();
    let Error::Submit(e) = &err else {
        panic!("expected a submit error, got {err:?}");
    };
    assert!(!e.orderers_already_have_transaction());
    assert_eq!(e.details().len(), 2);
    assert!(h.script().seen_commit.is_empty(), "nothing to wait for");
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_error_names_stage_and_endpoint() {
    let h = start_mock(false).await;
    for _ in 0..5 {
        h.script()
            .submit
            .push_back(tonic::Status::unavailable("no orderers"));
    }
    let contract = h.gateway().await.network("ami").contract("bcami");
    let err = contract.submit("Put", ["k"]).await.unwrap_err();
    let Error::Submit(e) = &err else {
        panic!("expected a submit error, got {err:?}");
    };
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert_eq!(h.script().seen_submit.len(), 3, "max_attempts = 3");
    let text = err.to_string();
    assert!(text.starts_with("submit failed for transaction "), "{text}");
    assert!(text.contains(&h.address), "{text}");
}

#[tokio::test]
async fn read_conflict_re_endorses_a_fresh_proposal_only_when_idempotent() {
    let h = start_mock(false).await;
    let contract = h.gateway().await.network("ami").contract("bcami");

    h.script()
        .commit
        .push_back(Ok(ValidationCode::MVCC_READ_CONFLICT.value()));
    let err = contract.submit("Put", ["k"]).await.unwrap_err();
    assert_eq!(
        err.validation_code(),
        Some(ValidationCode::MVCC_READ_CONFLICT)
    );
    assert!(err.to_string().contains("MVCC_READ_CONFLICT"), "{err}");
    assert_eq!(h.script().seen_endorse.len(), 1, "not idempotent: no retry");

    h.script()
        .commit
        .push_back(Ok(ValidationCode::MVCC_READ_CONFLICT.value()));
    let committed = contract
        .proposal("SubmitReading")
        .arg("hid|ts")
        .idempotent(true)
        .submit()
        .await
        .unwrap();
    assert_eq!(committed.attempts, 2);
    let s = h.script();
    assert_eq!(s.seen_endorse.len(), 3);
    assert_ne!(
        s.seen_endorse[1].transaction_id, s.seen_endorse[2].transaction_id,
        "a fresh proposal has a new transaction id"
    );
    assert_eq!(committed.transaction_id, s.seen_endorse[2].transaction_id);
}

#[tokio::test]
async fn read_conflict_retries_are_bounded() {
    let h = start_mock(false).await;
    for _ in 0..5 {
        h.script()
            .commit
            .push_back(Ok(ValidationCode::PHANTOM_READ_CONFLICT.value()));
    }
    let contract = h.gateway().await.network("ami").contract("bcami");
    let err = contract
        .proposal("SubmitReading")
        .idempotent(true)
        .submit()
        .await
        .unwrap_err();
    assert_eq!(
        err.validation_code(),
        Some(ValidationCode::PHANTOM_READ_CONFLICT)
    );
    assert_eq!(h.script().seen_endorse.len(), 3);
}

#[tokio::test]
async fn commit_status_errors_carry_the_transaction_id() {
    let h = start_mock(false).await;
    h.script()
        .commit
        .push_back(Err(tonic::Status::permission_denied("access denied")));
    let contract = h.gateway().await.network("ami").contract("bcami");
    let err = contract.submit("Put", ["k"]).await.unwrap_err();
    let Error::CommitStatus(e) = &err else {
        panic!("expected a commit status error, got {err:?}");
    };
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        e.transaction_id(),
        Some(h.script().seen_endorse[0].transaction_id.as_str())
    );
}

#[tokio::test]
async fn offline_signing_digest_out_signature_in() {
    let h = start_mock(false).await;
    // No signer: the gateway never sees a private key.
    let gateway = Gateway::builder(h.address.clone(), h.identity.clone())
        .connect()
        .await
        .unwrap();
    let contract = gateway.network("ami").contract("bcami");
    let mut proposal = contract.proposal("Put").arg("k").build().unwrap();
    let err = proposal.endorse().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsigned {
                stage: Stage::Endorse,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(proposal.digest(), sha256(proposal.bytes()));
    proposal.set_signature(h.signer.sign(&proposal.digest()).unwrap());

    let mut transaction = proposal.endorse().await.unwrap();
    assert_eq!(transaction.result(), b"k");
    assert_eq!(transaction.digest(), sha256(&h.script().prepared[0].1));
    assert!(matches!(
        transaction.submit().await,
        Err(Error::Unsigned {
            stage: Stage::Submit,
            ..
        })
    ));
    transaction.set_signature(h.signer.sign(&transaction.digest()).unwrap());

    let mut commit = transaction.submit().await.unwrap();
    commit.set_signature(h.signer.sign(&commit.digest()).unwrap());
    let status = commit.wait().await.unwrap();
    assert_eq!(status.code, ValidationCode::VALID);
    assert_eq!(status.transaction_id, proposal.transaction_id());

    let mut events = gateway
        .network("ami")
        .chaincode_events_request("bcami", StartAt::Block(0))
        .unwrap();
    assert!(events.open().is_err());
    events.set_signature(h.signer.sign(&events.digest()).unwrap());
    let mut stream = events.open().unwrap();
    assert!(stream.next().await.is_none(), "empty ledger");
}

#[tokio::test]
async fn a_bad_signature_is_refused_by_the_gateway() {
    let h = start_mock(false).await;
    let gateway = Gateway::builder(h.address.clone(), h.identity.clone())
        .connect()
        .await
        .unwrap();
    let mut proposal = gateway
        .network("ami")
        .contract("bcami")
        .proposal("Put")
        .build()
        .unwrap();
    let mut sig = h.signer.sign(&proposal.digest()).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    proposal.set_signature(sig);
    let err = proposal.evaluate().await.unwrap_err();
    assert_eq!(err.stage(), Some(Stage::Evaluate));
    assert!(matches!(
        err.stage_error().map(|e| e.code()),
        Some(tonic::Code::PermissionDenied | tonic::Code::InvalidArgument)
    ));
}

fn event(tx: &str) -> ChaincodeEvent {
    ChaincodeEvent {
        chaincode_id: "bcami".into(),
        tx_id: tx.into(),
        event_name: "Reading".into(),
        payload: tx.as_bytes().to_vec(),
    }
}

fn block(number: u64, txs: &[&str]) -> ChaincodeEventsResponse {
    ChaincodeEventsResponse {
        events: txs.iter().map(|t| event(t)).collect(),
        block_number: number,
    }
}

#[tokio::test]
async fn events_resume_from_a_persisted_checkpoint_exactly_once() {
    let h = start_mock(false).await;
    h.script().blocks = vec![
        block(3, &["a", "b"]),
        block(4, &["c"]),
        ChaincodeEventsResponse {
            events: vec![
                event("d"),
                ChaincodeEvent {
                    chaincode_id: "other".into(),
                    ..event("x")
                },
                event("e"),
            ],
            block_number: 6,
        },
    ];
    let network = h.gateway().await.network("ami");
    let everything = ["a", "b", "c", "d", "e"];
    let dir = std::env::temp_dir().join(format!("gw-mock-cp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    for stop_after in 0..=everything.len() {
        let path = dir.join(format!("cp-{stop_after}.json"));
        let mut seen = Vec::new();
        // First consumer: stops (drops its stream) after `stop_after` events.
        {
            let mut cp = Checkpoint::load(&path).unwrap().unwrap_or_default();
            let mut stream = network
                .chaincode_events("bcami", StartAt::Block(0), Some(&cp))
                .unwrap();
            while seen.len() < stop_after {
                let e = stream.next().await.unwrap().unwrap();
                seen.push(e.transaction_id.clone());
                cp.record(&e);
                cp.save(&path).unwrap();
            }
        }
        // Second consumer: resumes from the file.
        let cp = Checkpoint::load(&path).unwrap().unwrap_or_default();
        let mut stream = network
            .chaincode_events("bcami", StartAt::Block(0), Some(&cp))
            .unwrap();
        while let Some(e) = stream.next().await {
            let e = e.unwrap();
            assert_eq!(e.chaincode_name, "bcami");
            assert_eq!(e.payload, e.transaction_id.as_bytes());
            seen.push(e.transaction_id);
        }
        assert_eq!(seen, everything, "stopped after {stop_after}");
    }
    // The resumed requests asked the gateway to skip the processed transaction.
    let s = h.script();
    let last =
        ChaincodeEventsRequest::decode(s.seen_events.last().unwrap().request.as_slice()).unwrap();
    assert_eq!(last.after_transaction_id, "e");
    assert_eq!(
        last.start_position.and_then(|p| p.r#type),
        Some(seek_position::Type::Specified(
            fabric_protos::orderer::SeekSpecified { number: 6 }
        ))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_event_stream_is_a_stream_for_stream_combinators() {
    use tokio_stream::StreamExt as _;
    let h = start_mock(false).await;
    h.script().blocks = vec![block(3, &["a", "b"]), block(4, &["c"]), block(5, &["d"])];
    let network = h.gateway().await.network("ami");
    let stream = network
        .chaincode_events("bcami", StartAt::Block(4), None)
        .unwrap();
    let ids: Vec<String> = stream
        .map(|e| e.unwrap().transaction_id)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(ids, ["c", "d"]);
    // An error arrives as an item, then the stream ends.
    let mut req = network
        .chaincode_events_request("bcami", StartAt::NextCommit)
        .unwrap();
    req.set_signature(vec![0x30, 0x00]);
    let items: Vec<_> = req.open().unwrap().collect::<Vec<_>>().await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].as_ref().unwrap_err().stage(),
        Some(Stage::ChaincodeEvents)
    );
}

#[tokio::test]
async fn event_stream_errors_are_typed() {
    let h = start_mock(false).await;
    let network = h.gateway().await.network("ami");
    let mut stream = network
        .chaincode_events_request("bcami", StartAt::Block(0))
        .unwrap()
        .open()
        .unwrap();
    assert!(stream.next().await.is_none());
    // An invalid request (unsigned garbage) is refused by the mock with InvalidArgument.
    let gateway = Gateway::builder(h.address.clone(), h.identity.clone())
        .connect()
        .await
        .unwrap();
    let mut req = gateway
        .network("ami")
        .chaincode_events_request("bcami", StartAt::NextCommit)
        .unwrap();
    req.set_signature(vec![0x30, 0x00]);
    let mut stream = req.open().unwrap();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.stage(), Some(Stage::ChaincodeEvents));
    assert!(err.to_string().contains(&h.address), "{err}");
    assert!(stream.next().await.is_none(), "a failed stream ends");
}

#[tokio::test]
async fn tls_with_an_ip_address_server_name() {
    let h = start_mock(true).await;
    let ca = Path::new(FIXTURES).join("tls/ca.crt");
    let gateway = h
        .builder()
        .tls_ca_file(&ca)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let out = gateway
        .network("ami")
        .contract("bcami")
        .evaluate("Get", ["k"])
        .await
        .unwrap();
    assert_eq!(out, b"evaluated");

    // Trusting the wrong CA fails at the connect stage, naming the endpoint.
    let wrong_ca = Path::new(FIXTURES).join("msp/signcerts/User1@test.local-cert.pem");
    let err = h
        .builder()
        .tls_ca_file(&wrong_ca)
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&h.address), "{err}");
}

async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    address
}

#[tokio::test]
async fn unreachable_peer_names_stage_and_endpoint() {
    let (identity, signer) = credentials();
    let address = closed_port().await;
    let err = Gateway::builder(address.clone(), identity.clone())
        .signer(signer.clone())
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.stage(), Some(Stage::Connect));
    assert!(err.to_string().contains(&address), "{err}");

    let gateway = Gateway::builder(address.clone(), identity)
        .signer(signer)
        .retry(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        })
        .deadlines(Deadlines {
            connect: Duration::from_secs(2),
            ..Deadlines::default()
        })
        .connect_lazy()
        .unwrap();
    let err = gateway
        .network("ami")
        .contract("bcami")
        .evaluate("Get", ["k"])
        .await
        .unwrap_err();
    let Error::Evaluate(e) = &err else {
        panic!("expected an evaluate error, got {err:?}");
    };
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert_eq!(e.endpoint(), address);
    assert!(err.transaction_id().is_some());
}

/// Waits (a liveness guard, not a timing assertion) until the mock has seen `count` requests of
/// the kind `seen` counts.
async fn until_seen(h: &Harness, seen: impl Fn(&Script) -> usize, count: usize) -> bool {
    for _ in 0..500 {
        if seen(&h.script()) >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn opening_an_event_stream_sends_the_request_before_it_is_read() {
    let h = start_mock(false).await;
    let network = h.gateway().await.network("ami");
    // Never polled: the request must reach the gateway anyway (issue 16: a stream opened at
    // NextCommit right before a submit missed that submit's event because it went out late).
    let stream = network
        .chaincode_events("bcami", StartAt::NextCommit, None)
        .unwrap();
    assert!(
        until_seen(&h, |s| s.seen_events.len(), 1).await,
        "the events request was not sent when the stream was opened"
    );
    let blocks = network.block_events(StartAt::NextCommit, None).unwrap();
    assert!(
        until_seen(&h, |s| s.seen_deliver.len(), 1).await,
        "the deliver request was not sent when the stream was opened"
    );
    drop((stream, blocks));
}

fn ledger_block(number: u64, txs: &[&str], codes: &[u8]) -> fabric_protos::common::Block {
    use fabric_protos::common::{Block, BlockData, BlockHeader, BlockMetadata};
    let data = txs
        .iter()
        .map(|tx| {
            Envelope {
                payload: Payload {
                    header: Some(Header {
                        channel_header: ChannelHeader {
                            r#type: 3,
                            tx_id: (*tx).into(),
                            channel_id: "ami".into(),
                            ..Default::default()
                        }
                        .encode_to_vec(),
                        signature_header: Vec::new(),
                    }),
                    data: Vec::new(),
                }
                .encode_to_vec(),
                signature: Vec::new(),
            }
            .encode_to_vec()
        })
        .collect();
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash: vec![number as u8],
            data_hash: Vec::new(),
        }),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata {
            metadata: vec![Vec::new(), Vec::new(), codes.to_vec()],
        }),
    }
}

#[tokio::test]
async fn block_events_resume_from_a_checkpoint_at_the_next_block() {
    let h = start_mock(false).await;
    h.script().ledger = vec![
        ledger_block(0, &["genesis"], &[0]),
        ledger_block(1, &["a", "b"], &[0, 11]),
        ledger_block(2, &["c"], &[0]),
        ledger_block(3, &["d"], &[10]),
    ];
    let network = h.gateway().await.network("ami");

    let mut checkpoint = Checkpoint::new();
    let mut stream = network
        .block_events(StartAt::Block(1), Some(&checkpoint))
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.number, 1);
    let txs: Vec<_> = first
        .transactions
        .iter()
        .map(|t| (t.transaction_id.as_str(), t.validation_code))
        .collect();
    assert_eq!(
        txs,
        [
            ("a", ValidationCode::VALID),
            ("b", ValidationCode::MVCC_READ_CONFLICT)
        ]
    );
    assert_eq!(first.previous_hash, vec![1]);
    checkpoint.record_block(first.number);
    drop(stream);

    // Resumed: the checkpoint wins over the start position, and the stream ends at SUCCESS.
    let mut stream = network
        .block_events(StartAt::Block(0), Some(&checkpoint))
        .unwrap();
    let mut numbers = Vec::new();
    while let Some(block) = stream.next().await {
        numbers.push(block.unwrap().number);
    }
    assert_eq!(numbers, [2, 3]);

    let mut filtered = network
        .filtered_block_events(StartAt::Block(3), None)
        .unwrap();
    let block = filtered.next().await.unwrap().unwrap();
    assert_eq!(block.number, 3);
    assert_eq!(block.transactions[0].transaction_id, "d");
    assert!(filtered.next().await.is_none());
    let s = h.script();
    assert_eq!(
        s.seen_deliver.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[tokio::test]
async fn a_refused_block_stream_is_a_typed_error() {
    let h = start_mock(false).await;
    h.script().deliver_status = Some(fabric_protos::common::Status::Forbidden);
    let network = h.gateway().await.network("ami");
    let mut stream = network.block_events(StartAt::Block(0), None).unwrap();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.stage(), Some(Stage::BlockEvents));
    let stage = err.stage_error().unwrap();
    assert_eq!(stage.code(), tonic::Code::PermissionDenied);
    assert!(stage.message().contains("FORBIDDEN"), "{err}");
    assert!(err.to_string().contains(&h.address), "{err}");
    assert!(stream.next().await.is_none(), "a failed stream ends");

    // Offline: the request's signature is checked by the peer.
    let mut req = network.block_events_request(StartAt::Block(0)).unwrap();
    req.set_signature(h.signer.sign(&req.digest()).unwrap());
    h.script().deliver_status = None;
    let mut stream = req.open_filtered().unwrap();
    assert!(
        stream.next().await.is_none(),
        "an empty ledger: SUCCESS at once"
    );
}

#[tokio::test]
async fn per_call_deadlines_override_the_gateways() {
    let h = start_mock(false).await;
    h.script().evaluate_delay = Some(Duration::from_millis(400));
    let contract = h.gateway().await.network("ami").contract("bcami");
    let short = Deadlines {
        evaluate: Duration::from_millis(20),
        ..Deadlines::default()
    };
    let err = contract
        .proposal("ReadAsset")
        .deadlines(short)
        .evaluate()
        .await
        .unwrap_err();
    assert_eq!(err.stage(), Some(Stage::Evaluate));
    assert_eq!(
        err.stage_error().unwrap().code(),
        tonic::Code::DeadlineExceeded
    );
    // The gateway's own deadline (5 s) lets the same call finish.
    assert_eq!(
        contract.evaluate("ReadAsset", ["x"]).await.unwrap(),
        b"evaluated"
    );
}

#[tokio::test]
async fn endorsing_organizations_reach_the_gateway() {
    let h = start_mock(false).await;
    let contract = h.gateway().await.network("ami").contract("bcami");
    let proposal = contract
        .proposal("CreateAsset")
        .arg("x")
        .endorsing_organizations(["OperatorMSP"])
        .build()
        .unwrap();
    assert_eq!(proposal.endorsing_organizations(), ["OperatorMSP"]);
    proposal.endorse().await.unwrap();
    let s = h.script();
    assert_eq!(
        s.seen_endorse[0].endorsing_organizations,
        vec!["OperatorMSP".to_string()]
    );
}

#[path = "../examples/process_signer.rs"]
mod process_signer;

#[tokio::test]
async fn a_signer_in_another_process_signs_a_whole_transaction() {
    let h = start_mock(false).await;
    let keystore = Path::new(FIXTURES).join("msp/keystore/9f3c_sk");
    let gateway = Gateway::builder(h.address.clone(), h.identity.clone())
        .signer(process_signer::ProcessSigner::openssl(keystore))
        .connect()
        .await
        .unwrap();
    let contract = gateway.network("ami").contract("bcami");
    // The mock verifies every signature (and refuses high S); a whole submit goes through.
    let committed = contract.submit("Put", ["k", "v"]).await.unwrap();
    assert_eq!(committed.result, b"k,v");
    assert_eq!(h.script().seen_commit.len(), 1);

    let missing = Gateway::builder(h.address.clone(), h.identity.clone())
        .signer(process_signer::ProcessSigner::openssl(
            "/nonexistent/key.pem",
        ))
        .connect()
        .await
        .unwrap();
    let err = missing
        .network("ami")
        .contract("bcami")
        .evaluate("ReadAsset", ["x"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Sign { .. }), "{err:?}");
}

/// An MSP folder of an Ed25519 identity (Fabric 3's cryptogen `PublicKeyAlgorithm: ed25519`;
/// the fixture was made with `openssl genpkey -algorithm ed25519` and `openssl req -x509`) loads
/// as an Ed25519 key that signs whole messages, and its signatures verify under the
/// certificate's key.
#[test]
fn an_ed25519_msp_loads_and_signs_messages() {
    use ed25519_dalek::Verifier as _;
    let creds = load_msp(&Path::new(FIXTURES).join("msp-ed25519"), "TestMSP").expect("Ed25519 MSP");
    let MspSigner::Ed25519(key) = &creds.signer else {
        panic!("expected an Ed25519 key, got {:?}", creds.signer);
    };
    let message = b"a proposal's bytes";
    let signature = creds.signer.sign_message(message).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
    key.verifying_key()
        .verify(message, &signature)
        .expect("verifies");
    assert!(
        key.verifying_key()
            .verify(b"another message", &signature)
            .is_err()
    );
}
