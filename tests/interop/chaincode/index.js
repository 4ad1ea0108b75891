'use strict';
// A chaincode on Fabric's official Node shim (fabric-contract-api / fabric-shim 2.5), run as a
// chaincode service by server.sh. Our Rust Gateway client drives it in
// tests/tests/interop_node_shim.rs; every function takes and returns plain strings, like the
// Rust conformance fixture's functions of the same names.

const { Contract } = require('fabric-contract-api');

class Interop extends Contract {
    constructor() {
        super('interop');
    }

    async ping() {
        return 'pong';
    }

    /** put KEY VALUE -> the transaction id. */
    async put(ctx, key, value) {
        await ctx.stub.putState(key, Buffer.from(value));
        return ctx.stub.getTxID();
    }

    /** get KEY -> the value; throws when absent. */
    async get(ctx, key) {
        const value = await ctx.stub.getState(key);
        if (!value || value.length === 0) {
            throw new Error(`key ${key} not found`);
        }
        return value.toString();
    }

    /** putmany PREFIX N -> writes PREFIX00000..PREFIX{N-1} with value v<i>. */
    async putmany(ctx, prefix, n) {
        const count = Number.parseInt(n, 10);
        for (let i = 0; i < count; i++) {
            await ctx.stub.putState(`${prefix}${String(i).padStart(5, '0')}`, Buffer.from(`v${i}`));
        }
        return String(count);
    }

    /** page START END PAGESIZE BOOKMARK -> {"keys": [...], "bookmark": "...", "fetched": n}. */
    async page(ctx, start, end, pageSize, bookmark) {
        const { iterator, metadata } = await ctx.stub.getStateByRangeWithPagination(
            start, end, Number.parseInt(pageSize, 10), bookmark);
        const keys = [];
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
            keys.push(r.value.key);
        }
        await iterator.close();
        return JSON.stringify({ keys, bookmark: metadata.bookmark, fetched: metadata.fetchedRecordsCount });
    }

    /** history KEY -> [{"tx_id", "value", "is_delete"}, ...] as the ledger returns them. */
    async history(ctx, key) {
        const iterator = await ctx.stub.getHistoryForKey(key);
        const out = [];
        for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
            out.push({
                tx_id: r.value.txId,
                value: Buffer.from(r.value.value).toString(),
                is_delete: r.value.isDelete,
            });
        }
        await iterator.close();
        return JSON.stringify(out);
    }

    /** event NAME PAYLOAD -> sets the chaincode event; returns the transaction id. */
    async event(ctx, name, payload) {
        ctx.stub.setEvent(name, Buffer.from(payload));
        return ctx.stub.getTxID();
    }

    /** fail MESSAGE -> throws; the shim answers status 500 with the message. */
    async fail(ctx, message) {
        throw new Error(message);
    }

    /** transient KEY -> the transient value; throws when absent. */
    async transient(ctx, key) {
        const value = ctx.stub.getTransient().get(key);
        if (!value) {
            throw new Error(`no transient entry ${key}`);
        }
        return Buffer.from(value).toString();
    }

    /** creator -> what the shim says about the caller. */
    async creator(ctx) {
        const id = ctx.clientIdentity;
        return JSON.stringify({
            msp_id: id.getMSPID(),
            id: id.getID(),
            ou_client: id.assertAttributeValue('hf.Type', 'client') || null,
            creator_msp: ctx.stub.getCreator().mspid,
        });
    }
}

module.exports.contracts = [Interop];
