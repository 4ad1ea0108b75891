'use strict';
// Interoperability: Fabric's official Node Gateway client (@hyperledger/fabric-gateway) drives
// the bcami chaincode on the live network, as an integrator who already uses Fabric's libraries
// would: roles and their 403, a 400, a reading submitted and read back, and its event.
//
// Run by tests/e2e/50-interop.sh (node --test) with network.env and BCAMI_METER_SIM set;
// meter-sim makes the device keys and signed messages offline, as a meter or the MDMS would.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const grpc = require('@grpc/grpc-js');
const { connect, signers, EndorseError, SubmitError } = require('@hyperledger/fabric-gateway');
const { gateway: gatewayProtos, msp: mspProtos } = require('@hyperledger/fabric-protos');

function env(name) {
    const value = process.env[name];
    if (!value) {
        throw new Error(`${name} is not set: run through tests/e2e/50-interop.sh (network.env sourced)`);
    }
    return value;
}

const CHANNEL = env('BCAMI_CHANNEL');
const CHAINCODE = process.env.BCAMI_CC_NAME || 'bcami';
const METER_SIM = env('BCAMI_METER_SIM');
const STATE = fs.mkdtempSync(path.join(os.tmpdir(), 'interop-node-'));
const RUN_ID = `${process.pid}-${Date.now()}`;

function meterSim(...args) {
    return execFileSync(METER_SIM, args, { encoding: 'utf8' }).trim();
}

// The contract's names as bcami-api owns them (`meter-sim api`), so this test spells none: a
// function or code renamed in Rust reaches it, and one removed fails here by name.
const API = JSON.parse(meterSim('api'));
function apiEntry(table, key) {
    const entry = API[table][key];
    assert.ok(entry !== undefined, `bcami-api has no ${table} entry ${key} (see meter-sim api)`);
    return entry;
}
const fn = (key) => apiEntry('functions', key).name;
const errorCode = (key) => apiEntry('error_codes', key);
const rejectReason = (key) => apiEntry('reject_reasons', key);

/** A Gateway connection to ORG's peer as the MSP folder's user (certificate + PKCS#8 key). */
function gateway(org, user) {
    const msp = env(`BCAMI_${org}_MSP_${user}`);
    const certDir = path.join(msp, 'signcerts');
    const certificate = fs.readFileSync(path.join(certDir, fs.readdirSync(certDir)[0]));
    const keyDir = path.join(msp, 'keystore');
    const privateKey = crypto.createPrivateKey(fs.readFileSync(path.join(keyDir, fs.readdirSync(keyDir)[0])));
    const client = new grpc.Client(
        env(`BCAMI_${org}_PEER_ADDRESS`),
        grpc.credentials.createSsl(fs.readFileSync(env(`BCAMI_${org}_PEER_TLS_CA`))),
    );
    const gw = connect({
        client,
        identity: { mspId: env(`BCAMI_${org}_MSPID`), credentials: certificate },
        signer: signers.newPrivateKeySigner(privateKey),
        evaluateOptions: () => ({ deadline: Date.now() + 10000 }),
        endorseOptions: () => ({ deadline: Date.now() + 30000 }),
        submitOptions: () => ({ deadline: Date.now() + 10000 }),
        commitStatusOptions: () => ({ deadline: Date.now() + 60000 }),
    });
    const creator = new mspProtos.SerializedIdentity();
    creator.setMspid(env(`BCAMI_${org}_MSPID`));
    creator.setIdBytes(certificate);
    return {
        gw, client, creator: creator.serializeBinary(),
        contract: gw.getNetwork(CHANNEL).getContract(CHAINCODE), network: gw.getNetwork(CHANNEL),
    };
}

const text = (bytes) => Buffer.from(bytes).toString('utf8');
const json = (bytes) => JSON.parse(text(bytes));

/** The chaincode's status and message from an EndorseError's details ("chaincode response N, M"). */
function chaincodeRejection(err) {
    assert.ok(err instanceof EndorseError, `expected an EndorseError, got ${err}`);
    for (const detail of err.details) {
        const m = /chaincode response (\d+), (.*)$/s.exec(detail.message);
        if (m) {
            return { status: Number(m[1]), message: m[2], detail };
        }
    }
    assert.fail(`no chaincode response in the details: ${JSON.stringify(err.details)}`);
}

/**
 * Submits an endorsed transaction and returns its Commit. Fabric's Gateway counts a BFT orderer
 * that answers `request already processed` or `request already exists` (it already holds the
 * transaction, forwarded by another orderer) as a failure, so under load a first submit can end
 * in UNAVAILABLE although the transaction was delivered (hyperledger/fabric#4415). As our Rust
 * client does (fabric-gateway-client, `orderers_already_have_transaction`), such a submit is
 * followed by its commit status, which tells the outcome.
 */
async function submitted(caller, transaction) {
    try {
        return await transaction.submit();
    } catch (err) {
        const delivered = err instanceof SubmitError && err.code === grpc.status.UNAVAILABLE &&
            err.details.some((d) => /request already (processed|exists)/.test(d.message));
        if (!delivered) {
            throw err;
        }
        return commitOf(caller, transaction.getTransactionId());
    }
}

/** The Commit of transaction TX_ID as seen by CALLER's peer. */
function commitOf(caller, txId) {
    const request = new gatewayProtos.CommitStatusRequest();
    request.setChannelId(CHANNEL);
    request.setTransactionId(txId);
    request.setIdentity(caller.creator);
    const signed = new gatewayProtos.SignedCommitStatusRequest();
    signed.setRequest(request.serializeBinary());
    return caller.gw.newCommit(signed.serializeBinary());
}

/** Endorse, submit and await the commit of NAME(ARGS) as CALLER; the contract's result. */
async function submit(caller, name, ...args) {
    const transaction = await caller.contract.newProposal(name, { arguments: args }).endorse();
    const status = await (await submitted(caller, transaction)).getStatus();
    assert.ok(status.successful, `${name}: commit status ${status.code}`);
    // As our Rust client does: return once every organisation's peer has committed, so that the
    // next call, endorsed or evaluated at the other organisation's peer, sees this write.
    for (const other of [admin, dc]) {
        if (other !== caller) {
            await commitOf(other, transaction.getTransactionId()).getStatus();
        }
    }
    return transaction.getResult();
}

const admin = gateway('UTILITY', 'ADMIN'); // administrator
const mdms = gateway('UTILITY', 'CLIENT1'); // MDMS
const dc = gateway('OPERATOR', 'CLIENT1'); // data concentrator
const nobody = gateway('OPERATOR', 'ADMIN'); // in the channel, no contract role

test.after(() => {
    for (const c of [admin, mdms, dc, nobody]) {
        c.gw.close();
        c.client.close();
    }
    fs.rmSync(STATE, { recursive: true, force: true });
});

test('roles: the administrator provisions, everyone else gets 403 naming the role', async () => {
    const hid = meterSim('tx', 'hid', '--meter-id', `SM-NODE-ROLE-${RUN_ID}`);
    for (const [who, caller] of [['data concentrator', dc], ['MDMS', mdms], ['no role', nobody]]) {
        await assert.rejects(
            caller.contract.submitTransaction(fn('PROVISION_METERS'), JSON.stringify({ meters: [hid] })),
            (err) => {
                const r = chaincodeRejection(err);
                assert.equal(r.status, errorCode('FORBIDDEN').status, `${who}: ${r.message}`);
                assert.ok(
                    r.message.includes(`${errorCode('FORBIDDEN').code}: ${fn('PROVISION_METERS')} requires the administrator`),
                    r.message,
                );
                return true;
            },
        );
    }
    await submit(admin, fn('PROVISION_METERS'), JSON.stringify({ meters: [hid] }));
    const { meter } = json(await dc.contract.evaluateTransaction(fn('GET_METER'), hid));
    assert.equal(meter.hid, hid);
    assert.equal(meter.status, 'provisioned');
});

test('a malformed batch is a 400 with the contract message, nothing submitted', async () => {
    await assert.rejects(dc.contract.submitTransaction(fn('SUBMIT_READINGS'), 'not a JSON array'), (err) => {
        const r = chaincodeRejection(err);
        assert.equal(r.status, errorCode('BAD_ARGUMENT').status, r.message);
        assert.ok(r.message.includes(errorCode('BAD_ARGUMENT').code), r.message);
        assert.ok(err.transactionId, 'the error names the transaction');
        return true;
    });
});

/** The MDMS public key meters encrypt to; registers an MDMS of our own if none is yet. */
async function mdmsPublicKey() {
    const counts = json(await dc.contract.evaluateTransaction(fn('GET_COUNTS')));
    if (counts.mdms !== 'registered') {
        const id = `MDMS-NODE-${RUN_ID}`;
        const hid = meterSim('tx', 'hid', '--mdms-id', id);
        meterSim('tx', 'mdms-keygen', '--mdms-id', id, '--state', STATE);
        await submit(admin, fn('PROVISION_MDMS'), hid);
        await submit(mdms,
            fn('REGISTER_MDMS_KEY'), meterSim('tx', 'mdms-register', '--mdms-id', id, '--state', STATE));
    }
    return json(await dc.contract.evaluateTransaction(fn('GET_MDMS_KEY'))).publicKey;
}

test('a reading submitted by the data concentrator is read back by the MDMS, with its event', async () => {
    const meterId = `SM-NODE-${RUN_ID}`;
    const hid = meterSim('tx', 'hid', '--meter-id', meterId);
    meterSim('tx', 'keygen', '--meter-id', meterId, '--state', STATE);
    await submit(admin, fn('PROVISION_METERS'), JSON.stringify({ meters: [hid] }));
    const record = json(await submit(dc,
        fn('REGISTER_METER'), meterSim('tx', 'register', '--meter-id', meterId, '--state', STATE)));
    assert.equal(record.status, 'active');

    const key = await mdmsPublicKey();
    const reading = meterSim('tx', 'reading', '--meter-id', meterId, '--state', STATE,
        '--mdms-public-key', key, '--energy-wh', '412');

    // Opened before the submit, at the next commit: it must see this submit's event.
    const events = await mdms.network.getChaincodeEvents(CHAINCODE);
    try {
        const proposal = dc.contract.newProposal(fn('SUBMIT_READINGS'), { arguments: [JSON.stringify([reading])] });
        const transaction = await proposal.endorse();
        const outcome = json(transaction.getResult());
        assert.deepEqual(outcome, { accepted: 1, rejected: 0, rejections: [] });
        const commit = await submitted(dc, transaction);
        const status = await commit.getStatus();
        assert.ok(status.successful, `commit status ${status.code}`);

        for await (const event of events) {
            if (event.transactionId !== transaction.getTransactionId()) {
                continue;
            }
            assert.equal(event.eventName, apiEntry('events', 'READINGS_EVENT'));
            assert.equal(event.chaincodeName, CHAINCODE);
            assert.equal(event.blockNumber, status.blockNumber);
            const payload = json(event.payload);
            assert.equal(payload.rejected, 0);
            assert.equal(payload.accepted.length, 1);
            assert.equal(payload.accepted[0].hid, hid);
            break;
        }
    } finally {
        events.close();
    }

    const stored = json(await mdms.contract.evaluateTransaction(fn('GET_READINGS'), JSON.stringify({ hid, pageSize: 10 })));
    assert.equal(stored.readings.length, 1);
    assert.equal(stored.readings[0].reading, reading);

    // The same reading again is a replay: accepted by the call, rejected by the contract.
    const again = json(await submit(dc, fn('SUBMIT_READINGS'), JSON.stringify([reading])));
    assert.equal(again.accepted, 0);
    assert.equal(again.rejections[0].reason, rejectReason('REPLAYED'));
});
