//! End-to-end tests of BC-AMI against a live Fabric network
