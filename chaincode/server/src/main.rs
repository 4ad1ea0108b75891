//! The BC-AMI chaincode-as-a-service server: the shim's CCaaS server serving the BC-AMI
//! contract, configured from the environment (see `fabric_shim::server::ServerConfig`).
//!
//! Exit codes: 0 after a clean shutdown (SIGTERM/Ctrl-C); 1 on a configuration or serving error.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    fabric_shim::server::main("bcami-chaincode", bcami_contract::contract())
}
