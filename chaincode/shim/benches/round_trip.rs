//! GET_STATE / PUT_STATE round trips through the shim against the in-process peer simulator:
//! TRANSACTION → contract → requests over the stream task → COMPLETED.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_protos::protos::ChaincodeAdditionalParams;
use fabric_shim::Router;
use fabric_shim::testing::{InMemoryPeer, TxSpec};

fn contract() -> Arc<Router> {
    Arc::new(
        Router::new()
            .route("get", |s, a| Ok(s.state(a.str(0)?)?.unwrap_or_default()))
            .route("put", |s, a| {
                s.put_state(a.str(0)?, a.bytes(1)?)?;
                Ok(Vec::new())
            })
            .route("get_put", |s, a| {
                let old = s.state(a.str(0)?)?.unwrap_or_default();
                s.put_state(a.str(0)?, a.bytes(1)?)?;
                Ok(old)
            }),
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (label, ready) in [
        ("empty READY (Fabric 3.0)", None),
        (
            "batching advertised (Fabric 3.1)",
            Some(ChaincodeAdditionalParams {
                use_write_batch: true,
                max_size_write_batch: 1000,
                use_get_multiple_keys: true,
                max_size_get_multiple_keys: 1000,
            }),
        ),
    ] {
        let mut peer = rt
            .block_on(InMemoryPeer::connect(contract(), ready))
            .unwrap();
        peer.state.insert("k".into(), b"v".to_vec());
        let mut n = 0u64;
        let mut group = c.benchmark_group(format!("shim round trip, {label}"));
        for function in ["get", "put", "get_put"] {
            group.bench_function(function, |b| {
                b.iter(|| {
                    n += 1;
                    let tx = TxSpec::new(&format!("t{n}"), function, &["k", "value"]);
                    rt.block_on(peer.invoke(tx)).unwrap()
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
