//! Read-after-write across the two organisations' peers. Each peer commits blocks on its own
//! schedule, so a client that submits through the Utility peer and then endorses through the
//! Operator peer can find the Operator peer a block behind. `bcami_client::Fabric::submit`
//! returns only once every organisation's peer has committed; this test holds it to that with
//! the sequence that once failed in CI (`replays_the_shipped_london_csv`): the administrator
//! provisions a meter and a concentrator registers it at once, many times over.
//!
//! Run by `scripts/test.sh e2e` (needs `$BCAMI_RUN_DIR/network.json` and `bcami` deployed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

use bcami_api::Request;
use bcami_client::{Caller, Client, Fabric, Settings};
use bcami_e2e::NetworkEnv;
use bcami_sdk::{Hid, MeterSecretKey, RegistrationRequest, Timestamp};
use rand_core::OsRng;

const ROUNDS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meter_provisioned_through_one_peer_registers_at_once_through_the_other() {
    let env = NetworkEnv::load().unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings {
        mdms_state: env.run_dir.join("mdms"),
        network: env.network,
        chaincode: "bcami".to_owned(),
    };
    let fabric = Fabric::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the network: {e}"));
    let client = Client::new(&fabric);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for round in 0..ROUNDS {
        let key = MeterSecretKey::generate(&mut OsRng).unwrap();
        let hid = Hid::from_meter_id(format!("E2E-RAW-{now}-{round}"));
        client
            .provision_bound_meters(&[(hid, key.public_key())])
            .await
            .unwrap_or_else(|e| panic!("round {round}: provisioning failed: {e}"));
        let request =
            RegistrationRequest::build(&key, hid, Timestamp::from_unix_millis(now as u64))
                .unwrap()
                .encode();
        let registered = client
            .outcome(Caller::Concentrator(0), &Request::RegisterMeter(&request))
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: registration did not reach the contract: {e}")
            });
        assert!(
            registered.is_ok(),
            "round {round}: the Operator peer had not seen the provisioning: {:?}",
            registered.err()
        );
    }
}
