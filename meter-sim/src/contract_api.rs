//! `meter-sim api`: the contract's interface as bcami-api owns it — every function with its
//! roles, every error code with its status, every per-reading rejection code, the chaincode
//! event, the limits — as JSON, so that scripts name them
//! through it and never spell a function or a code themselves. Keys are the Rust names in
//! SCREAMING_SNAKE_CASE (`SUBMIT_READINGS`, `REPLAYED`): a function or code renamed in bcami-api
//! reaches the scripts, and one removed makes them fail loudly.

use std::collections::BTreeMap;

use bcami_api::{ErrorCode, Function, READINGS_EVENT, RejectReason};
use serde::Serialize;

/// One contract function.
#[derive(Debug, Serialize)]
pub struct FunctionEntry {
    /// Its name on the wire (the peer CLI's first argument).
    pub name: &'static str,
    /// Who may call it.
    pub roles: Vec<String>,
    /// Evaluated, not submitted.
    pub query: bool,
}

/// One error code a refused call carries.
#[derive(Debug, Serialize)]
pub struct ErrorEntry {
    /// The code in the refusal's message (`forbidden`, `bad_argument`).
    pub code: &'static str,
    /// The chaincode response status that goes with it (400, 403, 404, 409).
    pub status: u16,
}

/// The contract's interface.
#[derive(Debug, Serialize)]
pub struct ApiTable {
    /// Every function, by its constant name.
    pub functions: BTreeMap<String, FunctionEntry>,
    /// Every error code of a refused call, by its constant name.
    pub error_codes: BTreeMap<String, ErrorEntry>,
    /// The chaincode events the contract emits, by constant name.
    pub events: BTreeMap<&'static str, &'static str>,
    /// Every per-reading rejection code, by its constant name.
    pub reject_reasons: BTreeMap<String, &'static str>,
    /// The limits, by constant name.
    pub limits: BTreeMap<&'static str, u64>,
}

/// The table, from bcami-api.
pub fn table() -> ApiTable {
    let functions = Function::ALL
        .into_iter()
        .map(|f| {
            let entry = FunctionEntry {
                name: f.name(),
                roles: f
                    .roles()
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect(),
                query: f.is_query(),
            };
            (constant_name(&format!("{f:?}")), entry)
        })
        .collect();
    let error_codes = ErrorCode::ALL
        .into_iter()
        .map(|e| {
            let entry = ErrorEntry {
                code: e.as_str(),
                status: e.status(),
            };
            (constant_name(&format!("{e:?}")), entry)
        })
        .collect();
    let reject_reasons = RejectReason::ALL
        .into_iter()
        .map(|r| (constant_name(&format!("{r:?}")), r.code()))
        .collect();
    let limits = [
        ("MAX_BATCH", bcami_api::MAX_BATCH as u64),
        ("MAX_PROVISION", bcami_api::MAX_PROVISION as u64),
        ("MAX_READING_BYTES", bcami_api::MAX_READING_BYTES as u64),
        ("MAX_BATCH_ARG_BYTES", bcami_api::MAX_BATCH_ARG_BYTES as u64),
        ("MAX_PAGE_SIZE", u64::from(bcami_api::MAX_PAGE_SIZE)),
    ]
    .into_iter()
    .collect();
    ApiTable {
        functions,
        error_codes,
        events: [("READINGS_EVENT", READINGS_EVENT)].into_iter().collect(),
        reject_reasons,
        limits,
    }
}

/// `SubmitReadings` → `SUBMIT_READINGS`.
fn constant_name(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_and_code_is_listed_under_its_constant_name() {
        assert_eq!(constant_name("SubmitReadings"), "SUBMIT_READINGS");
        assert_eq!(constant_name("Replayed"), "REPLAYED");
        let table = table();
        assert_eq!(table.functions.len(), Function::ALL.len());
        assert_eq!(table.functions["SUBMIT_READINGS"].name, "SubmitReadings");
        assert_eq!(table.functions["SUBMIT_READINGS"].roles, ["concentrator"]);
        assert!(table.functions["GET_COUNTS"].query);
        assert_eq!(table.reject_reasons.len(), RejectReason::ALL.len());
        assert_eq!(table.reject_reasons["REPLAYED"], "replayed");
        assert_eq!(table.reject_reasons["BAD_SIGNATURE"], "bad_signature");
        assert_eq!(table.limits["MAX_BATCH"], 1_000);
        assert_eq!(table.error_codes.len(), ErrorCode::ALL.len());
        assert_eq!(table.error_codes["FORBIDDEN"].code, "forbidden");
        assert_eq!(table.error_codes["FORBIDDEN"].status, 403);
        assert_eq!(table.error_codes["BAD_ARGUMENT"].status, 400);
        assert_eq!(table.events["READINGS_EVENT"], "ReadingsAccepted");
    }
}
