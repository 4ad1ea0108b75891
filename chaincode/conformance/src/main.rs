//! Conformance fixture: a chaincode-as-a-service that exposes every `fabric-shim` stub call as a
//! function callable from the peer CLI with plain string arguments. Results are JSON text.
//!
//! Exit codes: 0 after a clean shutdown; 1 on a configuration or serving error.
#![forbid(unsafe_code)]

mod functions;

fn main() -> std::process::ExitCode {
    fabric_shim::server::main("fabric-shim-conformance", functions::router())
}
