//! The contract on an in-process ledger (`fabric_shim::memory`): no Fabric at all. Each call is
//! one transaction whose timestamp is the wall clock at the call, with the identities the test
//! network would use (Utility admin, Operator clients, Utility client); it commits if the
//! contract succeeds, like a valid Fabric transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bcami_contract::BcAmi;
use fabric_shim::memory::MemoryLedger;
use fabric_shim::{Creator, Timestamp, TxContext, X509Identity};

use bcami_api::Function;

use bcami_client::{Caller, Ledger, LedgerError, Outcome, Rejection};

/// Client identities the embedded concentrators use (as on the test network: client1, client2).
const CONCENTRATOR_IDENTITIES: usize = 2;

/// The BC-AMI contract on an in-memory ledger.
pub struct Embedded {
    ledger: MemoryLedger,
    contract: Arc<BcAmi>,
    administrator: Creator,
    concentrators: Vec<Creator>,
    mdms: Creator,
    next_tx: AtomicU64,
}

impl Default for Embedded {
    fn default() -> Self {
        Self::new()
    }
}

impl Embedded {
    /// An empty ledger with the deployed contract.
    pub fn new() -> Embedded {
        let identity = |msp: &str, cn: &str, ou: &str| {
            Creator::new(
                msp,
                X509Identity::from_parts(&format!("CN={cn}"), "CN=ca.bcami.local", &[ou], &[]),
            )
        };
        Embedded {
            ledger: MemoryLedger::new(),
            contract: Arc::new(bcami_contract::contract()),
            administrator: identity("UtilityMSP", "Admin@utility.bcami.local", "admin"),
            concentrators: (1..=CONCENTRATOR_IDENTITIES)
                .map(|n| {
                    identity(
                        "OperatorMSP",
                        &format!("User{n}@operator.bcami.local"),
                        "client",
                    )
                })
                .collect(),
            mdms: identity("UtilityMSP", "User1@utility.bcami.local", "client"),
            next_tx: AtomicU64::new(1),
        }
    }

    fn creator(&self, role: Caller) -> Creator {
        match role {
            Caller::Administrator => self.administrator.clone(),
            Caller::Concentrator(n) => self.concentrators[n % self.concentrators.len()].clone(),
            Caller::Mdms => self.mdms.clone(),
        }
    }

    async fn call(
        &self,
        role: Caller,
        function: Function,
        args: Vec<String>,
        commit: bool,
    ) -> Result<Outcome> {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?;
        let tx_id = format!(
            "embedded-{:016}",
            self.next_tx.fetch_add(1, Ordering::Relaxed)
        );
        let tx = TxContext::new(
            "embedded",
            &tx_id,
            Timestamp {
                seconds: i64::try_from(since.as_secs()).context("clock out of range")?,
                nanos: since.subsec_nanos(),
            },
            function.name(),
            args.into_iter().map(String::into_bytes).collect(),
            self.creator(role),
        );
        let ledger = self.ledger.clone();
        let contract = Arc::clone(&self.contract);
        // Signature checks are CPU work: keep them off the async workers.
        let result = tokio::task::spawn_blocking(move || {
            if commit {
                ledger.invoke(&*contract, tx).result
            } else {
                // A query: run it, commit nothing.
                let mut stub = ledger.begin(tx);
                fabric_shim::Contract::invoke(&*contract, &mut stub)
            }
        })
        .await
        .context("the embedded contract panicked")?;
        Ok(result.map_err(|e| {
            Rejection::new(Some(i32::from(e.status().code())), e.message().to_owned())
        }))
    }
}

impl Ledger for Embedded {
    fn mode(&self) -> &'static str {
        "embedded"
    }

    fn concentrator_identities(&self) -> usize {
        CONCENTRATOR_IDENTITIES
    }

    async fn submit(
        &self,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        Ok(self.call(role, function, args, true).await?)
    }

    async fn evaluate(
        &self,
        role: Caller,
        function: Function,
        args: Vec<String>,
    ) -> Result<Outcome, LedgerError> {
        Ok(self.call(role, function, args, false).await?)
    }
}
