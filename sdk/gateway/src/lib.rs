//! A Hyperledger Fabric Gateway client: evaluate, submit, commit status, chaincode events
