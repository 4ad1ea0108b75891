//! Simulated and replayed smart meters, data concentrators and MDMS export for BC-AMI

fn main() {}
