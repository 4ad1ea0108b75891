//! Where the simulated meters' code runs: natively (bcami-sdk linked into meter-sim), or as the
//! meter module under wasmtime (`--meter-runtime wasm`, cargo feature `wasm`), one instance per
//! meter with a memory cap and a fuel budget. The run calls the same operations either way
//! (keys, registrations, and every reading it signs, first or again after store-and-forward);
//! with wasm, a meter whose instance fails (memory cap, fuel, trap) is stopped with its error on
//! record and the others go on, and the report adds each operation's fuel and linear memory.

use std::collections::BTreeMap;
#[cfg(feature = "wasm")]
use std::path::{Path, PathBuf};
#[cfg(feature = "wasm")]
use std::sync::{Mutex, PoisonError};

use anyhow::{Result, anyhow};
use bcami_sdk::store::{self, ReportStore, ResignError};
use bcami_sdk::{Hid, MdmsPublicKey, MeterSecretKey, RegistrationRequest, Timestamp, Transaction};
#[cfg(feature = "wasm")]
use bcami_wasm_host::{Cost, Limits, MeterModule, Metered, Operation, WasmMeter};
use rand_core::CryptoRngCore;
use serde::Serialize;

#[cfg(feature = "wasm")]
use crate::state::DeviceId;
#[cfg(feature = "wasm")]
use anyhow::Context as _;

/// What `--meter-runtime wasm` says when this meter-sim was built without wasmtime.
pub const NO_WASM: &str = "--meter-runtime wasm: this meter-sim was built without the cargo \
                           feature `wasm` (wasmtime); build it with `cargo build -p meter-sim \
                           --features wasm`";

/// `--meter-fuel`'s default: ten times what a reading takes (BENCHMARKS.md).
pub const DEFAULT_METER_FUEL: u64 = 200_000_000;
#[cfg(feature = "wasm")]
const _: () = assert!(DEFAULT_METER_FUEL == Limits::DEFAULT_FUEL);

/// The `--meter-runtime` choice, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RuntimeConfig {
    /// bcami-sdk in the simulator's process.
    #[default]
    Native,
    /// The meter module under wasmtime.
    #[cfg(feature = "wasm")]
    Wasm {
        /// The module file.
        module: PathBuf,
        /// Each meter's memory cap and fuel budget.
        limits: Limits,
    },
}

#[cfg(feature = "wasm")]
impl RuntimeConfig {
    /// Where `scripts/build-meter-wasm.sh` puts the module for this executable's target
    /// directory: `<target>/<profile>/meter-sim` → `<target>/meter-wasm/bcami_sdk_wasm.wasm`.
    pub fn default_module() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        Some(MeterModule::built_path(exe.parent()?.parent()?))
    }
}

/// The runtime of one run.
pub struct MeterRuntime {
    #[cfg(feature = "wasm")]
    wasm: Option<Wasm>,
}

/// The name in the report of a reading signed again (store-and-forward), apart from first ones.
pub const RESIGNED: &str = "reading (re-signed)";

#[cfg(feature = "wasm")]
struct Wasm {
    module: MeterModule,
    limits: Limits,
    /// One per meter (by index in the run), made at first use; `Err` once it failed.
    meters: Vec<Mutex<Option<Result<WasmMeter, String>>>>,
    ids: Vec<String>,
    costs: Mutex<BTreeMap<&'static str, OperationCost>>,
}

#[cfg(feature = "wasm")]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed the run; the data is still whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MeterRuntime {
    /// Native meters.
    pub fn native() -> MeterRuntime {
        MeterRuntime {
            #[cfg(feature = "wasm")]
            wasm: None,
        }
    }

    /// Loads and compiles the module, if wasm, for the meters `ids` (in run order).
    #[cfg(feature = "wasm")]
    pub fn new(config: &RuntimeConfig, ids: &[DeviceId]) -> Result<MeterRuntime> {
        let wasm = match config {
            RuntimeConfig::Native => None,
            RuntimeConfig::Wasm { module, limits } => Some(Wasm {
                module: load(module)?,
                limits: *limits,
                meters: ids.iter().map(|_| Mutex::new(None)).collect(),
                ids: ids.iter().map(ToString::to_string).collect(),
                costs: Mutex::new(BTreeMap::new()),
            }),
        };
        Ok(MeterRuntime { wasm })
    }

    /// The runtime `config` names (only native without the `wasm` feature).
    #[cfg(not(feature = "wasm"))]
    pub fn new(config: &RuntimeConfig, _ids: &[crate::state::DeviceId]) -> Result<MeterRuntime> {
        match config {
            RuntimeConfig::Native => Ok(MeterRuntime::native()),
        }
    }

    /// A new key for meter `index`, from `rng` (as at manufacture).
    pub fn keygen(&self, index: usize, rng: &mut dyn CryptoRngCore) -> Result<MeterSecretKey> {
        #[cfg(feature = "wasm")]
        if let Some(wasm) = &self.wasm {
            let entropy = entropy(rng);
            return wasm
                .run(index, Operation::Keygen.name(), |meter| {
                    meter.keygen(&entropy)
                })
                .map(|pair| pair.secret);
        }
        let _ = index;
        MeterSecretKey::generate(rng).map_err(|e| anyhow!("{e}"))
    }

    /// Meter `index`'s registration request.
    pub fn registration(
        &self,
        index: usize,
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
    ) -> Result<RegistrationRequest> {
        #[cfg(feature = "wasm")]
        if let Some(wasm) = &self.wasm {
            return wasm.run(index, Operation::Registration.name(), |meter| {
                meter.registration(key, hid, timestamp)
            });
        }
        let _ = index;
        RegistrationRequest::build(key, hid, timestamp).map_err(|e| anyhow!("{e}"))
    }

    /// Meter `index` signs the report it holds in `store` for the interval starting at
    /// `interval_start`, for sending now (what [`bcami_sdk::store::resign`] does natively):
    /// `again` says it signed this interval before and the ledger found that copy stale. The
    /// encryption's randomness comes from `rng`.
    /// `Ok(None)`: the store no longer holds the interval, or this meter's wasm instance failed
    /// (now or before; its error is in [`MeterRuntime::report`] and it signs nothing more).
    #[allow(clippy::too_many_arguments)]
    pub fn resign<S: ReportStore + ?Sized>(
        &self,
        index: usize,
        store: &S,
        interval_start: Timestamp,
        again: bool,
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        mdms: &MdmsPublicKey,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Option<Transaction>> {
        #[cfg(feature = "wasm")]
        if let Some(wasm) = &self.wasm {
            // The store is the meter's flash in the simulation: the host looks the report up,
            // the module signs it.
            let Some(report) = store.find(interval_start) else {
                return Ok(None);
            };
            let entropy = entropy(rng);
            let name = if again {
                RESIGNED
            } else {
                Operation::Reading.name()
            };
            return Ok(wasm
                .run(index, name, |meter| {
                    meter.reading(&entropy, key, hid, timestamp, &report, mdms)
                })
                .ok());
        }
        let _ = (index, again);
        match store::resign(store, interval_start, rng, key, hid, timestamp, mdms) {
            Ok(tx) => Ok(Some(tx)),
            Err(ResignError::NotHeld) => Ok(None),
            Err(e) => Err(anyhow!("{e}")),
        }
    }

    /// The wasm figures of the run, if the meters ran in wasm.
    pub fn report(&self) -> Option<RuntimeReport> {
        #[cfg(feature = "wasm")]
        if let Some(wasm) = &self.wasm {
            let mut failed = BTreeMap::new();
            for (index, slot) in wasm.meters.iter().enumerate() {
                if let Some(Err(error)) = &*lock(slot) {
                    let id = wasm.ids.get(index).cloned().unwrap_or_default();
                    failed.insert(id, error.clone());
                }
            }
            return Some(RuntimeReport {
                module_sha256: wasm.module.sha256_hex(),
                module_bytes: wasm.module.size(),
                memory_cap_bytes: wasm.limits.memory_bytes,
                fuel_per_operation: wasm.limits.fuel_per_operation,
                operations: lock(&wasm.costs).clone(),
                failed_meters: failed,
            });
        }
        None
    }
}

#[cfg(feature = "wasm")]
fn load(path: &Path) -> Result<MeterModule> {
    if !path.exists() {
        return Err(crate::usage(format!(
            "no meter module at {}: build it with scripts/build-meter-wasm.sh, or pass \
             --meter-module",
            path.display()
        )));
    }
    MeterModule::from_file(path).with_context(|| format!("meter module {}", path.display()))
}

#[cfg(feature = "wasm")]
fn entropy(rng: &mut dyn CryptoRngCore) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(feature = "wasm")]
impl Wasm {
    /// Runs an operation (`name` in the report) on meter `index`'s instance, records its cost;
    /// a failure stops the meter.
    fn run<T>(
        &self,
        index: usize,
        name: &'static str,
        operation: impl FnOnce(&mut WasmMeter) -> Result<Metered<T>, bcami_wasm_host::Error>,
    ) -> Result<T> {
        let slot = self
            .meters
            .get(index)
            .ok_or_else(|| anyhow!("meter index {index} out of range"))?;
        let mut slot = lock(slot);
        let meter = slot.get_or_insert_with(|| {
            WasmMeter::new(&self.module, self.limits).map_err(|e| e.to_string())
        });
        let instance = match meter {
            Ok(instance) => instance,
            Err(error) => return Err(anyhow!("meter stopped: {error}")),
        };
        match operation(instance) {
            Ok(metered) => {
                lock(&self.costs)
                    .entry(name)
                    .or_default()
                    .add(&metered.cost);
                Ok(metered.value)
            }
            Err(error) => {
                let message = error.to_string();
                *meter = Err(message.clone());
                Err(anyhow!("meter stopped: {message}"))
            }
        }
    }
}

/// One operation's figures over a run.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct OperationCost {
    /// Times it ran.
    pub count: u64,
    /// Fuel (wasm instructions), smallest.
    pub fuel_min: u64,
    /// Fuel, largest.
    pub fuel_max: u64,
    /// Fuel, total (for the mean).
    pub fuel_total: u64,
    /// Deepest stack, bytes.
    pub stack_bytes: usize,
    /// Highest heap mark, bytes.
    pub heap_bytes: usize,
    /// Stack + static data + heap at the peak, bytes.
    pub used_bytes: usize,
    /// Linear memory of the instance, bytes.
    pub memory_bytes: usize,
}

impl OperationCost {
    #[cfg(feature = "wasm")]
    fn add(&mut self, cost: &Cost) {
        self.fuel_min = if self.count == 0 {
            cost.fuel
        } else {
            self.fuel_min.min(cost.fuel)
        };
        self.count += 1;
        self.fuel_max = self.fuel_max.max(cost.fuel);
        self.fuel_total += cost.fuel;
        self.stack_bytes = self.stack_bytes.max(cost.stack_bytes);
        self.heap_bytes = self.heap_bytes.max(cost.heap_bytes);
        self.used_bytes = self.used_bytes.max(cost.used_bytes());
        self.memory_bytes = self.memory_bytes.max(cost.memory_bytes);
    }

    /// Mean fuel.
    pub fn fuel_mean(&self) -> u64 {
        self.fuel_total.checked_div(self.count).unwrap_or(0)
    }
}

/// The wasm part of the run report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuntimeReport {
    /// SHA-256 of the module, hex.
    pub module_sha256: String,
    /// Module size, bytes.
    pub module_bytes: usize,
    /// Each meter's linear-memory cap, bytes.
    pub memory_cap_bytes: usize,
    /// Each operation's fuel budget.
    pub fuel_per_operation: u64,
    /// Per operation name.
    pub operations: BTreeMap<&'static str, OperationCost>,
    /// Meters whose instance failed, by meter ID, with the error.
    pub failed_meters: BTreeMap<String, String>,
}

impl RuntimeReport {
    /// Rows for the human table.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![(
            "meter runtime".into(),
            format!(
                "wasm ({} bytes, sha256 {}), cap {} bytes, {} fuel per operation",
                self.module_bytes,
                &self.module_sha256[..16.min(self.module_sha256.len())],
                self.memory_cap_bytes,
                self.fuel_per_operation
            ),
        )];
        for (name, cost) in &self.operations {
            rows.push((
                format!("  {name}"),
                format!(
                    "{} × fuel {}..{} (mean {}); stack {} B, heap {} B, used {} B of {} B",
                    cost.count,
                    cost.fuel_min,
                    cost.fuel_max,
                    cost.fuel_mean(),
                    cost.stack_bytes,
                    cost.heap_bytes,
                    cost.used_bytes,
                    cost.memory_bytes
                ),
            ));
        }
        rows.push((
            "  meters stopped".into(),
            self.failed_meters.len().to_string(),
        ));
        for (id, error) in self.failed_meters.iter().take(5) {
            rows.push((format!("    {id}"), error.clone()));
        }
        rows
    }
}
