//! Decoding a transaction's context (function, args, channel header, creator, transient map)
//! from the wire — the one place the shim unpacks the proposal.

use std::collections::BTreeMap;

use fabric_protos::{common, msp, protos};
use prost::Message;

use crate::identity::{Creator, IdentityError};
use crate::protocol::{Invocation, InvocationKind};
use crate::stub::{Timestamp, TxContext};

/// The peer sent a transaction whose context does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A nested message failed to decode.
    #[error("cannot decode {what}: {detail}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// A required part is absent.
    #[error("the transaction has no {0}")]
    Missing(&'static str),
    /// The function name (args\[0\]) is not UTF-8.
    #[error("the function name is not UTF-8")]
    FunctionNotUtf8,
    /// The timestamp is out of range.
    #[error("invalid transaction timestamp")]
    Timestamp,
    /// The creator's identity is unusable.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, ContextError> {
    M::decode(bytes).map_err(|e| ContextError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// Convert a wire timestamp, rejecting out-of-range nanoseconds.
pub(crate) fn timestamp(ts: prost_types::Timestamp) -> Option<Timestamp> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    Some(Timestamp {
        seconds: ts.seconds,
        nanos,
    })
}

impl TxContext {
    /// Unpack the invocation the peer sent.
    pub fn from_invocation(inv: &Invocation) -> Result<Self, ContextError> {
        let input: protos::ChaincodeInput = decode("ChaincodeInput", &inv.input)?;
        let mut args = input.args.into_iter();
        let function = match args.next() {
            Some(f) => String::from_utf8(f).map_err(|_| ContextError::FunctionNotUtf8)?,
            None => String::new(),
        };
        let signed = inv
            .proposal
            .as_ref()
            .ok_or(ContextError::Missing("signed proposal"))?;
        let proposal: protos::Proposal = decode("Proposal", &signed.proposal_bytes)?;
        let header: common::Header = decode("Header", &proposal.header)?;
        let channel_header: common::ChannelHeader =
            decode("ChannelHeader", &header.channel_header)?;
        let signature_header: common::SignatureHeader =
            decode("SignatureHeader", &header.signature_header)?;
        let identity: msp::SerializedIdentity =
            decode("SerializedIdentity", &signature_header.creator)?;
        let payload: protos::ChaincodeProposalPayload =
            decode("ChaincodeProposalPayload", &proposal.payload)?;
        let timestamp = channel_header
            .timestamp
            .ok_or(ContextError::Missing("timestamp"))
            .and_then(|t| timestamp(t).ok_or(ContextError::Timestamp))?;
        Ok(Self {
            channel_id: inv.key.channel.clone(),
            tx_id: inv.key.txid.clone(),
            timestamp,
            function,
            args: args.collect(),
            transient: payload
                .transient_map
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            is_init: inv.kind == InvocationKind::Init || input.is_init,
            creator: Creator::from_serialized(&identity.mspid, &identity.id_bytes)?,
        })
    }
}
