//! `meter-sim`: simulated and replayed smart meters, data concentrators and the MDMS export for
//! BC-AMI. The binary is glue; the engine is the `meter_sim` library.
//!
//! Exit codes: 0 success; 1 failure (I/O, network, ledger); 2 bad command line or input;
//! 3 verification failed (a committed reading did not verify or decrypt to what the meter sent).

fn main() -> std::process::ExitCode {
    meter_sim::main()
}
