#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// Package `protos`: the peer shim stream, chaincode input, proposals, responses, transactions.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

/// Package `common`: envelopes, headers, blocks, status codes.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

/// Package `msp`: serialized identities.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

/// Package `gateway`: the Fabric Gateway service and its messages.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod gateway {
    include!(concat!(env!("OUT_DIR"), "/gateway.rs"));
}

/// Package `orderer`: seek positions.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod orderer {
    include!(concat!(env!("OUT_DIR"), "/orderer.rs"));
}

/// Package `queryresult`: range and history query records.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod queryresult {
    include!(concat!(env!("OUT_DIR"), "/queryresult.rs"));
}
