//! A Hyperledger Fabric chaincode shim: chaincode-as-a-service server, typed stub API, in-memory stub
