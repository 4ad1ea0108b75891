//! The anonymous meter module (`bcami-sdk-wasm-anon`): one instance per meter holds the meter's
//! anonymous secret and credential in its linear memory, under the same cap and fuel budget as
//! the identified meter module.

use std::path::Path;

use bcami_anon::{AnonReport, Credential, IssuerPublicKey, JoinRequest, Presentation, Zk};
use bcami_sdk_wasm_anon::abi::{self, IO_LEN, Status};
use wasmtime::TypedFunc;

use crate::runner::{self, Compiled, Runner};
use crate::{Error, Limits, Metered, expect_len};

/// The anonymous meter module's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnonOperation {
    /// `bcami_anon_keygen`.
    Keygen,
    /// `bcami_anon_join`.
    Join,
    /// `bcami_anon_accept`.
    Accept,
    /// `bcami_anon_present`.
    Present,
}

impl AnonOperation {
    /// Every operation, in the order a meter uses them.
    pub const ALL: [AnonOperation; 4] = [
        AnonOperation::Keygen,
        AnonOperation::Join,
        AnonOperation::Accept,
        AnonOperation::Present,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            AnonOperation::Keygen => "anon keygen",
            AnonOperation::Join => "anon join",
            AnonOperation::Accept => "anon accept",
            AnonOperation::Present => "anon reading",
        }
    }

    fn export(self) -> &'static str {
        match self {
            AnonOperation::Keygen => "bcami_anon_keygen",
            AnonOperation::Join => "bcami_anon_join",
            AnonOperation::Accept => "bcami_anon_accept",
            AnonOperation::Present => "bcami_anon_present",
        }
    }
}

const EXPORTS: [&str; 5] = [
    "bcami_anon_keygen",
    "bcami_anon_join",
    "bcami_anon_accept",
    "bcami_anon_present",
    "bcami_heap_kept",
];

/// The file `scripts/build-meter-wasm.sh anon` writes.
const FILE: &str = "bcami_sdk_wasm_anon.wasm";

/// A compiled anonymous meter module, shared by every instance.
#[derive(Clone, Debug)]
pub struct AnonModule(Compiled);

impl AnonModule {
    /// Compiles the module in `bytes` and checks its exports and that it imports nothing.
    pub fn from_bytes(bytes: &[u8]) -> Result<AnonModule, Error> {
        Compiled::new(bytes, &EXPORTS).map(AnonModule)
    }

    /// [`AnonModule::from_bytes`] of a file.
    pub fn from_file(path: &Path) -> Result<AnonModule, Error> {
        Compiled::from_file(path, &EXPORTS).map(AnonModule)
    }

    /// Builds the module with `scripts/build-meter-wasm.sh anon` into `target_dir` and loads it
    /// (the repository's tests and tools; a deployment loads a pinned file).
    pub fn build(repo: &Path, target_dir: &Path) -> Result<AnonModule, Error> {
        Compiled::build(repo, target_dir, "anon", FILE, &EXPORTS).map(AnonModule)
    }

    /// Where `scripts/build-meter-wasm.sh anon` writes the module for `target_dir`.
    pub fn built_path(target_dir: &Path) -> std::path::PathBuf {
        runner::built_path(target_dir, FILE)
    }

    /// SHA-256 of the module bytes, hex.
    pub fn sha256_hex(&self) -> String {
        self.0.sha256_hex()
    }

    /// Size of the module, bytes.
    pub fn size(&self) -> usize {
        self.0.size
    }
}

/// One anonymous meter: an instance of the module holding its secret and credential.
pub struct WasmAnonMeter {
    runner: Runner,
    operations: [TypedFunc<(), i32>; 4],
}

impl std::fmt::Debug for WasmAnonMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmAnonMeter")
            .field("limits", &self.runner.limits)
            .finish()
    }
}

impl WasmAnonMeter {
    /// Instantiates the module (no key, no credential yet).
    pub fn new(module: &AnonModule, limits: Limits) -> Result<WasmAnonMeter, Error> {
        let mut runner = Runner::new(&module.0, limits, IO_LEN)?;
        let mut operation = |op: AnonOperation| runner.operation(op.export());
        let operations = [
            operation(AnonOperation::Keygen)?,
            operation(AnonOperation::Join)?,
            operation(AnonOperation::Accept)?,
            operation(AnonOperation::Present)?,
        ];
        Ok(WasmAnonMeter { runner, operations })
    }

    /// Changes the fuel budget of each following operation.
    pub fn set_fuel_per_operation(&mut self, fuel: u64) {
        self.runner.limits.fuel_per_operation = fuel;
    }

    /// Runs one export on raw `input` laid out as `bcami_sdk_wasm_anon::abi` says.
    pub fn call(
        &mut self,
        operation: AnonOperation,
        input: &[u8],
    ) -> Result<Metered<Vec<u8>>, Error> {
        let func = self.operations[operation as usize].clone();
        let (returned, cost) = self.runner.call(&func, input)?;
        match returned {
            Ok(value) => Ok(Metered { value, cost }),
            Err(code) => Err(match Status::from_return(code) {
                Some(status) => Error::AnonMeter(status),
                None => Error::Output(format!("unknown status {code}")),
            }),
        }
    }

    /// Heap bytes the held credential keeps between operations (part of every operation's
    /// `heap_bytes`).
    pub fn kept_heap(&mut self) -> Result<usize, Error> {
        self.runner.gauge("bcami_heap_kept").map(|b| b as usize)
    }

    /// A new secret from 32 bytes of entropy (`SoftwareKeyHolder::from_entropy`); returns the
    /// issuance commitment `C`, compressed. Forgets the previous key and credential.
    pub fn keygen(&mut self, entropy: &[u8; 32]) -> Result<Metered<[u8; 48]>, Error> {
        let out = self.call(AnonOperation::Keygen, entropy)?;
        let value = out
            .value
            .as_slice()
            .try_into()
            .map_err(|_| Error::Output(format!("commitment of {} bytes", out.value.len())))?;
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// The join request for `issuer`'s epoch, bound to `hid` and the ledger's `nonce`.
    pub fn join(
        &mut self,
        issuer: &IssuerPublicKey<Zk>,
        hid: &[u8; 32],
        nonce: &[u8; 32],
        entropy: &[u8; 32],
    ) -> Result<Metered<JoinRequest<Zk>>, Error> {
        let input = [&issuer.encode()[..], hid, nonce, entropy].concat();
        let out = self.call(AnonOperation::Join, &input)?;
        let value = JoinRequest::decode(&out.value).map_err(|e| Error::Output(e.to_string()))?;
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// Checks `credential` against this meter's commitment and keeps it; returns its epoch.
    pub fn accept(
        &mut self,
        issuer: &IssuerPublicKey<Zk>,
        credential: &Credential<Zk>,
    ) -> Result<Metered<u32>, Error> {
        let input = [issuer.encode(), credential.encode()].concat();
        let out = self.call(AnonOperation::Accept, &input)?;
        expect_len(&out.value, abi::EPOCH_LEN)?;
        let mut epoch = [0u8; abi::EPOCH_LEN];
        epoch.copy_from_slice(&out.value);
        Ok(Metered {
            value: u32::from_be_bytes(epoch),
            cost: out.cost,
        })
    }

    /// The anonymous reading of `report` (`Presentation::build_from_entropy`).
    pub fn present(
        &mut self,
        report: &AnonReport,
        entropy: &[u8; 64],
    ) -> Result<Metered<Presentation<Zk>>, Error> {
        let input = [&report.encode()[..], entropy].concat();
        let out = self.call(AnonOperation::Present, &input)?;
        let value = Presentation::decode(&out.value).map_err(|e| Error::Output(e.to_string()))?;
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }
}
