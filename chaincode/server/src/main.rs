//! The BC-AMI chaincode-as-a-service server binary

fn main() {}
