//! meter-sim provisions each meter, and the MDMS, bound to the hash of the key it was made with,
//! so only that key can register it (the contract's key binding).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use bcami_api::{Function, KeyHash};
use bcami_client::{Caller, Ledger};
use bcami_sdk::IntervalLength;
use meter_sim::embedded::Embedded;
use meter_sim::run::{RunConfig, Source};
use meter_sim::state::StateDir;
use serde_json::Value;

async fn query(ledger: &Embedded, function: Function, args: Vec<String>) -> Value {
    let bytes = ledger
        .evaluate(Caller::Administrator, function, args)
        .await
        .unwrap()
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meters_and_the_mdms_are_provisioned_bound_to_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(&dir.path().join("meters")).unwrap();
    let mdms_state = StateDir::open(&dir.path().join("mdms")).unwrap();
    let ledger = Arc::new(Embedded::new());
    let source = Source::Synthetic {
        prefix: "BOUND".into(),
        meters: 3,
        intervals: 2,
        interval: IntervalLength::HALF_HOUR,
        seed: 5,
        start_ms: 1_704_067_200_000,
    };
    let config = RunConfig {
        concentrators: 1,
        batch: 6,
        in_flight: 1,
        fresh_ledger: true,
        ..RunConfig::new(source, "MDMS-1".parse().unwrap())
    };
    let report = meter_sim::run::run(Arc::clone(&ledger), &state, &mdms_state, &config)
        .await
        .unwrap();
    assert_eq!(report.meters_registered, 3);
    assert_eq!(report.committed, 6);

    for n in 1..=3 {
        let meter = state
            .meter(&format!("BOUND-{n:06}").parse().unwrap())
            .unwrap()
            .unwrap();
        let view = query(&ledger, Function::GetMeter, vec![meter.hid.to_string()]).await;
        assert_eq!(
            view["meter"]["keyHash"],
            KeyHash::of_meter_key(&meter.key.public_key()).to_string(),
            "{view}"
        );
        assert_eq!(view["meter"]["status"], "active");
    }
    let mdms = mdms_state.mdms().unwrap().unwrap();
    let record = query(&ledger, Function::GetMdmsKey, Vec::new()).await;
    assert_eq!(
        record["keyHash"],
        KeyHash::of_mdms_key(&mdms.key.public_key()).to_string(),
        "{record}"
    );
}
