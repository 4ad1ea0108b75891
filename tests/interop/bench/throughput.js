'use strict';
// One-write invocations per second through Fabric's official Node Gateway client: the same load
// as tests/examples/gateway_throughput.rs (`put KEY VALUE`, CONCURRENCY workers over one
// connection, TOTAL transactions, each committed VALID), as User1@Utility.
//
// usage: node bench/throughput.js CHAINCODE [TOTAL] [CONCURRENCY]   (network.env sourced)
// Prints `CHAINCODE client=node total=… concurrency=… seconds=… tps=…`.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { connect, signers } = require('@hyperledger/fabric-gateway');

async function main() {
    const [chaincode, totalArg, concurrencyArg] = process.argv.slice(2);
    if (!chaincode) {
        throw new Error('usage: throughput.js CHAINCODE [TOTAL] [CONCURRENCY]');
    }
    const total = Number.parseInt(totalArg || '1000', 10);
    const concurrency = Math.max(1, Number.parseInt(concurrencyArg || '50', 10));
    const msp = process.env.BCAMI_UTILITY_MSP_CLIENT1;
    const certDir = path.join(msp, 'signcerts');
    const keyDir = path.join(msp, 'keystore');
    const client = new grpc.Client(
        process.env.BCAMI_UTILITY_PEER_ADDRESS,
        grpc.credentials.createSsl(fs.readFileSync(process.env.BCAMI_UTILITY_PEER_TLS_CA)),
    );
    const gateway = connect({
        client,
        identity: {
            mspId: process.env.BCAMI_UTILITY_MSPID,
            credentials: fs.readFileSync(path.join(certDir, fs.readdirSync(certDir)[0])),
        },
        signer: signers.newPrivateKeySigner(
            crypto.createPrivateKey(fs.readFileSync(path.join(keyDir, fs.readdirSync(keyDir)[0])))),
    });
    try {
        const contract = gateway.getNetwork(process.env.BCAMI_CHANNEL).getContract(chaincode);
        const run = `tput-node-${process.pid}-${chaincode}`;
        await contract.submitTransaction('put', `${run}-warm`, '0');
        let next = 0;
        const started = process.hrtime.bigint();
        const worker = async () => {
            for (let i = next++; i < total; i = next++) {
                await contract.submitTransaction('put', `${run}-${i}`, String(i));
            }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        console.log(`${chaincode} client=node total=${total} concurrency=${concurrency} ` +
            `seconds=${seconds.toFixed(2)} tps=${(total / seconds).toFixed(1)}`);
    } finally {
        gateway.close();
        client.close();
    }
}

main().catch((err) => {
    console.error(`throughput.js: ${err.stack || err}`);
    process.exit(1);
});
