//! Compiles `proto/**/*.proto` with protox (pure Rust, no system `protoc`) and generates prost
//! messages plus tonic clients and servers into `OUT_DIR`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "common/common.proto",
    "msp/identities.proto",
    "orderer/ab.proto",
    "ledger/queryresult/kv_query_result.proto",
    "peer/chaincode.proto",
    "peer/chaincode_event.proto",
    "peer/chaincode_shim.proto",
    "peer/proposal.proto",
    "peer/proposal_response.proto",
    "peer/transaction.proto",
    "peer/events.proto",
    "gateway/gateway.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    let descriptors = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // `protos.Chaincode` has an rpc named `Connect`, which would clash with the generated
        // `connect(endpoint)` constructor; clients are built with `XxxClient::new(channel)`.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
