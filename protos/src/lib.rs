//! Fabric protobuf messages and gRPC services, wire-compatible with Hyperledger Fabric 3.x
