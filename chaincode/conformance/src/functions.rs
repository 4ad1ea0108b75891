//! The fixture's functions. Each takes plain string arguments and answers JSON (or raw text).

use fabric_shim::{
    Args, ContractError, KeyRange, NodeRole, Router, Stub, composite_key, split_composite_key,
};
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn to_json(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn keys_of(
    iter: fabric_shim::QueryIter<fabric_shim::KeyValue>,
) -> Result<Vec<String>, ContractError> {
    iter.map(|r| r.map(|kv| kv.key).map_err(ContractError::from))
        .collect()
}

fn ping(_: &mut dyn Stub, _: &Args) -> Result<Vec<u8>, ContractError> {
    Ok(b"pong".to_vec())
}

/// `put KEY VALUE` → the transaction id.
fn put(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(2)?;
    stub.put_state(a.str(0)?, a.bytes(1)?)?;
    Ok(stub.tx().tx_id().as_bytes().to_vec())
}

/// `get KEY` → the value (404 when absent).
fn get(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(1)?;
    let key = a.str(0)?;
    stub.state(key)?
        .ok_or_else(|| ContractError::not_found(format!("key {key:?} not found")))
}

/// `getmany KEY...` → JSON array of values (null when absent).
fn get_many(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    let keys: Vec<&str> = (0..a.len()).map(|i| a.str(i)).collect::<Result<_, _>>()?;
    let values = stub.states(&keys)?;
    let out: Vec<Value> = values
        .iter()
        .map(|v| v.as_deref().map_or(Value::Null, |b| Value::String(text(b))))
        .collect();
    Ok(to_json(&Value::Array(out)))
}

/// `del KEY`.
fn del(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(1)?;
    stub.delete_state(a.str(0)?)?;
    Ok(Vec::new())
}

/// `putmany PREFIX N` → writes `PREFIX00000`..`PREFIX{N-1}` with value `v<i>`.
fn put_many(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(2)?;
    let prefix = a.str(0)?;
    let n: u32 = a.parse(1)?;
    for i in 0..n {
        stub.put_state(&format!("{prefix}{i:05}"), format!("v{i}").as_bytes())?;
    }
    Ok(n.to_string().into_bytes())
}

/// `range START END` → `{"count": n, "keys": [...]}`.
fn range(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(2)?;
    let range = KeyRange::new(a.str(0)?, a.str(1)?)?;
    let keys = keys_of(stub.range(&range)?)?;
    Ok(to_json(&json!({ "count": keys.len(), "keys": keys })))
}

/// `page START END PAGESIZE BOOKMARK` → `{"keys": [...], "bookmark": "...", "fetched": n}`.
fn page(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(4)?;
    let range = KeyRange::new(a.str(0)?, a.str(1)?)?;
    let page = stub.range_page(&range, a.parse(2)?, a.str(3)?)?;
    let keys: Vec<String> = page.records.into_iter().map(|kv| kv.key).collect();
    Ok(to_json(
        &json!({ "keys": keys, "bookmark": page.bookmark, "fetched": page.fetched }),
    ))
}

/// `putcomp TYPE ATTR... VALUE` → writes a composite key.
fn put_composite(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    if a.len() < 2 {
        return Err(ContractError::bad_request(
            "putcomp expects TYPE [ATTR...] VALUE",
        ));
    }
    let attrs: Vec<&str> = (1..a.len() - 1)
        .map(|i| a.str(i))
        .collect::<Result<_, _>>()?;
    let key = composite_key(a.str(0)?, &attrs)?;
    stub.put_state(&key, a.bytes(a.len() - 1)?)?;
    Ok(Vec::new())
}

/// `comprange TYPE ATTR...` → `[[type, [attrs...], value], ...]` for the partial key.
fn composite_range(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    if a.is_empty() {
        return Err(ContractError::bad_request(
            "comprange expects TYPE [ATTR...]",
        ));
    }
    let attrs: Vec<&str> = (1..a.len()).map(|i| a.str(i)).collect::<Result<_, _>>()?;
    let range = KeyRange::composite_prefix(a.str(0)?, &attrs)?;
    let mut out = Vec::new();
    for kv in stub.range(&range)? {
        let kv = kv?;
        let (object_type, attrs) = split_composite_key(&kv.key)?;
        out.push(json!([object_type, attrs, text(&kv.value)]));
    }
    Ok(to_json(&Value::Array(out)))
}

/// `history KEY` → `[{"tx_id", "value", "is_delete", "seconds"}, ...]`, newest first.
fn history(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(1)?;
    let mut out = Vec::new();
    for m in stub.history(a.str(0)?)? {
        let m = m?;
        out.push(json!({
            "tx_id": m.tx_id,
            "value": text(&m.value),
            "is_delete": m.is_delete,
            "seconds": m.timestamp.map(|t| t.seconds),
        }));
    }
    Ok(to_json(&Value::Array(out)))
}

/// `event NAME PAYLOAD` → sets the chaincode event.
fn event(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(2)?;
    stub.set_event(a.str(0)?, a.bytes(1)?)?;
    Ok(stub.tx().tx_id().as_bytes().to_vec())
}

/// `txinfo` → `{"tx_id", "channel", "seconds", "nanos", "function", "args"}`.
fn tx_info(stub: &mut dyn Stub, _: &Args) -> Result<Vec<u8>, ContractError> {
    let tx = stub.tx();
    Ok(to_json(&json!({
        "tx_id": tx.tx_id(),
        "channel": tx.channel_id(),
        "seconds": tx.timestamp().seconds,
        "nanos": tx.timestamp().nanos,
        "function": tx.function(),
        "args": tx.args().iter().map(|a| text(a)).collect::<Vec<_>>(),
    })))
}

/// `creator` → MSP id, role, subject, issuer, OUs, attributes, cid id.
fn creator(stub: &mut dyn Stub, _: &Args) -> Result<Vec<u8>, ContractError> {
    let c = stub.creator();
    let role = c.role().map(|r| match r {
        NodeRole::Admin => "admin",
        NodeRole::Client => "client",
        NodeRole::Peer => "peer",
        NodeRole::Orderer => "orderer",
    });
    let x509 = c.x509();
    Ok(to_json(&json!({
        "msp_id": c.msp_id(),
        "role": role,
        "subject": x509.map(|x| x.subject()),
        "issuer": x509.map(|x| x.issuer()),
        "ous": x509.map(|x| x.ous().to_vec()),
        "attributes": x509.map(|x| x.attributes().clone()),
        "id": c.id(),
    })))
}

/// `transient KEY` → the transient value (404 when absent).
fn transient(stub: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(1)?;
    let key = a.str(0)?;
    stub.tx()
        .transient()
        .get(key)
        .cloned()
        .ok_or_else(|| ContractError::not_found(format!("no transient entry {key:?}")))
}

/// `fail STATUS MESSAGE` → a contract error with that status and message.
fn fail(_: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    a.expect_len(2)?;
    let code: u16 = a.parse(0)?;
    let status = code
        .try_into()
        .map_err(|e: fabric_shim::InvalidErrorStatus| ContractError::bad_request(e.to_string()))?;
    Err(ContractError::new(status, a.str(1)?))
}

/// `panic MESSAGE` → panics inside the transaction (only this transaction fails).
fn panic(_: &mut dyn Stub, a: &Args) -> Result<Vec<u8>, ContractError> {
    let message = a.str(0).unwrap_or("fixture panic").to_owned();
    std::panic::panic_any(message)
}

/// Every function of the fixture.
pub fn router() -> Router {
    Router::new()
        .route("ping", ping)
        .route("put", put)
        .route("get", get)
        .route("getmany", get_many)
        .route("del", del)
        .route("putmany", put_many)
        .route("range", range)
        .route("page", page)
        .route("putcomp", put_composite)
        .route("comprange", composite_range)
        .route("history", history)
        .route("event", event)
        .route("txinfo", tx_info)
        .route("creator", creator)
        .route("transient", transient)
        .route("fail", fail)
        .route("panic", panic)
}

#[cfg(test)]
mod tests {
    use fabric_shim::memory::{MemoryLedger, test_context};
    use fabric_shim::{Creator, X509Identity};

    use super::router;

    fn call(
        ledger: &MemoryLedger,
        n: i64,
        f: &str,
        args: &[&str],
    ) -> Result<String, (u16, String)> {
        let who = Creator::new(
            "Org1MSP",
            X509Identity::from_parts("CN=u", "CN=ca", &["client"], &[]),
        );
        let out = ledger.invoke(&router(), test_context(&format!("tx{n}"), n, who, f, args));
        out.result
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| (e.status().code(), e.message().to_owned()))
    }

    #[test]
    fn fixture_functions_against_the_memory_ledger() {
        let l = MemoryLedger::new();
        assert_eq!(call(&l, 1, "put", &["a", "1"]), Ok("tx1".into()));
        assert_eq!(call(&l, 2, "get", &["a"]), Ok("1".into()));
        assert_eq!(call(&l, 3, "get", &["zz"]).unwrap_err().0, 404);
        call(&l, 4, "putmany", &["r", "3"]).unwrap();
        assert_eq!(
            call(&l, 5, "range", &["r", "s"]),
            Ok(r#"{"count":3,"keys":["r00000","r00001","r00002"]}"#.into())
        );
        assert_eq!(
            call(&l, 6, "page", &["r", "s", "2", ""]),
            Ok(r#"{"bookmark":"r00002","fetched":2,"keys":["r00000","r00001"]}"#.into())
        );
        call(&l, 7, "putcomp", &["t", "x", "y", "val"]).unwrap();
        assert_eq!(
            call(&l, 8, "comprange", &["t", "x"]),
            Ok(r#"[["t",["x","y"],"val"]]"#.into())
        );
        assert_eq!(
            call(&l, 9, "fail", &["418", "teapot"]),
            Err((418, "teapot".into()))
        );
        assert_eq!(
            call(&l, 10, "getmany", &["a", "nope"]),
            Ok(r#"["1",null]"#.into())
        );
        let h = call(&l, 11, "history", &["a"]).unwrap();
        assert!(h.contains(r#""tx_id":"tx1""#), "{h}");
    }

    #[test]
    fn panic_function_panics() {
        let l = MemoryLedger::new();
        let r = std::panic::catch_unwind(|| call(&l, 1, "panic", &["boom"]));
        assert!(r.is_err());
    }
}
