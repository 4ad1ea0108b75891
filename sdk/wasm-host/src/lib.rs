#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::Path;

mod anon;
mod runner;

pub use anon::{AnonModule, AnonOperation, WasmAnonMeter};
use runner::{Compiled, Runner};

use bcami_sdk::session::{HeadEndIdentity, SessionConfirm, SessionInit, SessionResponse};
use bcami_sdk::{
    Hid, KeyRotationRequest, MdmsPublicKey, MeterPublicKey, MeterSecretKey, RegistrationRequest,
    Timestamp, Transaction, UsageReport,
};
use bcami_sdk_wasm::abi::{self, IO_LEN, Status};
use wasmtime::TypedFunc;

/// One wasm page.
pub const PAGE: usize = 65_536;

/// Errors of the host. A meter's errors ([`Error::MemoryCap`], [`Error::OutOfFuel`],
/// [`Error::Trap`], [`Error::Meter`], [`Error::AnonMeter`]) concern that meter only; its instance
/// is still usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module file could not be read.
    #[error("cannot read the meter module {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a meter module: not wasm, or without the exports this host needs.
    #[error("not a meter module: {0}")]
    Module(String),
    /// The meter needed more linear memory than its cap allows.
    #[error("meter memory cap of {limit} bytes exceeded: it needed {needed} bytes")]
    MemoryCap {
        /// The cap, bytes.
        limit: usize,
        /// What the module asked for, bytes.
        needed: usize,
    },
    /// The operation ran out of its instruction budget.
    #[error("meter ran out of fuel: the budget is {budget} per operation")]
    OutOfFuel {
        /// The budget.
        budget: u64,
    },
    /// The module trapped for another reason (a bug in the module).
    #[error("meter module trapped: {0}")]
    Trap(String),
    /// The module refused the input.
    #[error("meter refused the operation: {0:?}")]
    Meter(Status),
    /// The anonymous meter module refused the input.
    #[error("anonymous meter refused the operation: {0:?}")]
    AnonMeter(bcami_sdk_wasm_anon::abi::Status),
    /// The input does not fit the module's I/O buffer.
    #[error("input of {len} bytes does not fit the module's I/O buffer")]
    Input {
        /// Its length.
        len: usize,
    },
    /// The module's output does not decode as the message it should be.
    #[error("meter output is malformed: {0}")]
    Output(String),
}

/// The limits every meter instance runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap, bytes (whole pages count: 64 KiB is one page).
    pub memory_bytes: usize,
    /// Fuel (about one unit per wasm instruction) each operation may use.
    pub fuel_per_operation: u64,
}

impl Limits {
    /// One wasm page, the meter budget BENCHMARKS.md measures the module against.
    pub const DEFAULT_MEMORY: usize = PAGE;
    /// Ten times what a reading takes (BENCHMARKS.md), so a slower build still fits.
    pub const DEFAULT_FUEL: u64 = 200_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: Self::DEFAULT_MEMORY,
            fuel_per_operation: Self::DEFAULT_FUEL,
        }
    }
}

/// What one operation cost inside the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Fuel consumed (wasmtime's count of executed wasm instructions).
    pub fuel: u64,
    /// Deepest shadow stack in linear memory, bytes (measured by painting the stack region).
    pub stack_bytes: usize,
    /// Heap high-water mark, bytes (the module's allocator reports it).
    pub heap_bytes: usize,
    /// Static data (between the stack and the heap), bytes.
    pub data_bytes: usize,
    /// Linear memory the instance has after the operation, bytes (whole pages).
    pub memory_bytes: usize,
}

impl Cost {
    /// Linear memory actually used at the peak: stack + static data + heap.
    pub fn used_bytes(&self) -> usize {
        self.stack_bytes + self.data_bytes + self.heap_bytes
    }
}

/// An operation's result and what it cost.
#[derive(Debug, Clone)]
pub struct Metered<T> {
    /// The result.
    pub value: T,
    /// The cost.
    pub cost: Cost,
}

/// A compiled meter module, shared by every meter instance.
#[derive(Clone, Debug)]
pub struct MeterModule(Compiled);

const EXPORTS: [&str; 9] = [
    "bcami_keygen",
    "bcami_registration",
    "bcami_reading",
    "bcami_rotation",
    "bcami_session_start",
    "bcami_session_finish",
    "bcami_session_seal",
    "bcami_session_open",
    "bcami_session_end",
];

/// The file `scripts/build-meter-wasm.sh meter` writes.
const FILE: &str = "bcami_sdk_wasm.wasm";

impl MeterModule {
    /// Compiles the module in `bytes` (Cranelift) and checks that it is a meter module: the
    /// ABI's exports, a stack pointer and heap base, and no imports.
    pub fn from_bytes(bytes: &[u8]) -> Result<MeterModule, Error> {
        Compiled::new(bytes, &EXPORTS).map(MeterModule)
    }

    /// [`MeterModule::from_bytes`] of a file.
    pub fn from_file(path: &Path) -> Result<MeterModule, Error> {
        Compiled::from_file(path, &EXPORTS).map(MeterModule)
    }

    /// Builds the module from this repository's source with `scripts/build-meter-wasm.sh` (which
    /// installs the toolchain) into `target_dir`, then loads it. For the repository's tests and
    /// tools; a deployment loads a pinned module file with [`MeterModule::from_file`].
    pub fn build(repo: &Path, target_dir: &Path) -> Result<MeterModule, Error> {
        Compiled::build(repo, target_dir, "meter", FILE, &EXPORTS).map(MeterModule)
    }

    /// Where `scripts/build-meter-wasm.sh` writes the module for `target_dir`.
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

/// The decoded result of `keygen`.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The new secret key (the simulator keeps it in the meter's state).
    pub secret: MeterSecretKey,
    /// Its public key.
    pub public: MeterPublicKey,
}

/// The decoded result of `rotation`.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new secret key.
    pub new_secret: MeterSecretKey,
    /// The request, signed by the current key, with the new key's proof of possession.
    pub request: KeyRotationRequest,
}

/// The decoded result of `session_finish`: the head-end is authenticated and the session is up
/// inside the instance.
#[derive(Debug, Clone)]
pub struct Established {
    /// The SessionConfirm to send to the head-end.
    pub confirm: SessionConfirm,
    /// The session id (the hash of the whole handshake transcript; the head-end has the same).
    pub session_id: [u8; abi::SESSION_ID_LEN],
}

/// One meter: an instance of the module in its own store, with its memory cap and fuel budget.
/// The instance keeps the meter's one head-end session (handshake state, then session keys)
/// between calls; the host never sees those secrets.
pub struct WasmMeter {
    runner: Runner,
    keygen: TypedFunc<(), i32>,
    registration: TypedFunc<(), i32>,
    reading: TypedFunc<(), i32>,
    rotation: TypedFunc<(), i32>,
    session_start: TypedFunc<(), i32>,
    session_finish: TypedFunc<(), i32>,
    session_seal: TypedFunc<(), i32>,
    session_open: TypedFunc<(), i32>,
    session_end: TypedFunc<(), i32>,
}

impl std::fmt::Debug for WasmMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmMeter")
            .field("limits", &self.runner.limits)
            .finish()
    }
}

impl WasmMeter {
    /// Instantiates the module. Fails with [`Error::MemoryCap`] if the module's initial memory
    /// is above the cap.
    pub fn new(module: &MeterModule, limits: Limits) -> Result<WasmMeter, Error> {
        let mut runner = Runner::new(&module.0, limits, IO_LEN)?;
        Ok(WasmMeter {
            keygen: runner.operation("bcami_keygen")?,
            registration: runner.operation("bcami_registration")?,
            reading: runner.operation("bcami_reading")?,
            rotation: runner.operation("bcami_rotation")?,
            session_start: runner.operation("bcami_session_start")?,
            session_finish: runner.operation("bcami_session_finish")?,
            session_seal: runner.operation("bcami_session_seal")?,
            session_open: runner.operation("bcami_session_open")?,
            session_end: runner.operation("bcami_session_end")?,
            runner,
        })
    }

    /// Changes the fuel budget of each following operation.
    pub fn set_fuel_per_operation(&mut self, fuel: u64) {
        self.runner.limits.fuel_per_operation = fuel;
    }

    /// Runs one export on raw `input` laid out as `bcami_sdk_wasm::abi` says; returns the
    /// output bytes and the cost. The typed methods below are this plus encoding and decoding.
    pub fn call(&mut self, operation: Operation, input: &[u8]) -> Result<Metered<Vec<u8>>, Error> {
        let func = match operation {
            Operation::Keygen => self.keygen.clone(),
            Operation::Registration => self.registration.clone(),
            Operation::Reading => self.reading.clone(),
            Operation::Rotation => self.rotation.clone(),
            Operation::SessionStart => self.session_start.clone(),
            Operation::SessionFinish => self.session_finish.clone(),
            Operation::SessionSeal => self.session_seal.clone(),
            Operation::SessionOpen => self.session_open.clone(),
            Operation::SessionEnd => self.session_end.clone(),
        };
        let (returned, cost) = self.runner.call(&func, input)?;
        match returned {
            Ok(output) => Ok(Metered {
                value: output,
                cost,
            }),
            Err(code) => Err(match Status::from_return(code) {
                Some(status) => Error::Meter(status),
                None => Error::Output(format!("unknown status {code}")),
            }),
        }
    }

    /// A new meter key from 32 bytes of caller entropy (`MeterSecretKey::from_entropy`).
    pub fn keygen(&mut self, entropy: &[u8; 32]) -> Result<Metered<KeyPair>, Error> {
        let out = self.call(Operation::Keygen, entropy)?;
        expect_len(&out.value, abi::KEYGEN_OUTPUT_LEN)?;
        let (secret, public) = out.value.split_at(abi::SECRET_KEY_LEN);
        let value = KeyPair {
            secret: secret_key(secret)?,
            public: MeterPublicKey::from_sec1_bytes(public)
                .map_err(|e| Error::Output(e.to_string()))?,
        };
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// The registration request of `key`.
    pub fn registration(
        &mut self,
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
    ) -> Result<Metered<RegistrationRequest>, Error> {
        let input = [&key.to_bytes()[..], hid.as_bytes(), &timestamp.to_bytes()].concat();
        let out = self.call(Operation::Registration, &input)?;
        let value =
            RegistrationRequest::decode(&out.value).map_err(|e| Error::Output(e.to_string()))?;
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// One reading (`Transaction::build_from_entropy`).
    pub fn reading(
        &mut self,
        entropy: &[u8; 32],
        key: &MeterSecretKey,
        hid: Hid,
        timestamp: Timestamp,
        report: &UsageReport,
        mdms: &MdmsPublicKey,
    ) -> Result<Metered<Transaction>, Error> {
        let input = [
            &key.to_bytes()[..],
            hid.as_bytes(),
            &timestamp.to_bytes(),
            &report.encode(),
            &mdms.to_bytes(),
            entropy,
        ]
        .concat();
        let out = self.call(Operation::Reading, &input)?;
        let value = Transaction::decode(&out.value).map_err(|e| Error::Output(e.to_string()))?;
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// A key rotation to a new key made from `entropy`, authorised by `current`.
    pub fn rotation(
        &mut self,
        current: &MeterSecretKey,
        entropy: &[u8; 32],
        hid: Hid,
        timestamp: Timestamp,
    ) -> Result<Metered<Rotation>, Error> {
        let input = [
            &current.to_bytes()[..],
            entropy,
            hid.as_bytes(),
            &timestamp.to_bytes(),
        ]
        .concat();
        let out = self.call(Operation::Rotation, &input)?;
        let (secret, request) = out
            .value
            .split_at_checked(abi::SECRET_KEY_LEN)
            .ok_or_else(|| Error::Output("rotation output too short".into()))?;
        let value = Rotation {
            new_secret: secret_key(secret)?,
            request: KeyRotationRequest::decode(request)
                .map_err(|e| Error::Output(e.to_string()))?,
        };
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }
}

impl WasmMeter {
    /// Starts a handshake with `head_end` at `now` (`MeterHandshake::start_from_entropy`),
    /// abandoning any session this meter had; returns the SessionInit to send.
    pub fn session_start(
        &mut self,
        entropy: &[u8; 32],
        key: &MeterSecretKey,
        hid: Hid,
        head_end: &HeadEndIdentity,
        now: Timestamp,
    ) -> Result<Metered<SessionInit>, Error> {
        let input = [
            &key.to_bytes()[..],
            hid.as_bytes(),
            head_end.id.as_bytes(),
            &head_end.public_key.to_bytes(),
            &now.to_bytes(),
            entropy,
        ]
        .concat();
        let out = self.call(Operation::SessionStart, &input)?;
        let value = SessionInit::decode(&out.value).map_err(|e| Error::Output(e.to_string()))?;
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// Checks the head-end's response and confirms (`MeterHandshake::finish`): a refused
    /// response is [`Error::Meter`] with [`Status::Authentication`] (or
    /// [`Status::UnexpectedHeadEnd`]), after which the meter must start again.
    pub fn session_finish(
        &mut self,
        key: &MeterSecretKey,
        response: &SessionResponse,
    ) -> Result<Metered<Established>, Error> {
        let input = [&key.to_bytes()[..], &response.encode()].concat();
        let out = self.call(Operation::SessionFinish, &input)?;
        expect_len(&out.value, abi::SESSION_FINISH_OUTPUT_LEN)?;
        let (confirm, id) = out.value.split_at(SessionConfirm::ENCODED_LEN);
        let value = Established {
            confirm: SessionConfirm::decode(confirm).map_err(|e| Error::Output(e.to_string()))?,
            session_id: id
                .try_into()
                .map_err(|_| Error::Output("session id is not 32 bytes".into()))?,
        };
        Ok(Metered {
            value,
            cost: out.cost,
        })
    }

    /// Seals `plaintext` for the head-end, binding `aad` (`Session::seal`).
    pub fn session_seal(
        &mut self,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Metered<Vec<u8>>, Error> {
        self.call(Operation::SessionSeal, &record_input(aad, plaintext)?)
    }

    /// Opens a record from the head-end sealed with `aad` (`Session::open`).
    pub fn session_open(&mut self, aad: &[u8], sealed: &[u8]) -> Result<Metered<Vec<u8>>, Error> {
        self.call(Operation::SessionOpen, &record_input(aad, sealed)?)
    }

    /// Ends the session (or the handshake): the instance drops its keys.
    pub fn session_end(&mut self) -> Result<Metered<()>, Error> {
        let out = self.call(Operation::SessionEnd, &[])?;
        expect_len(&out.value, 0)?;
        Ok(Metered {
            value: (),
            cost: out.cost,
        })
    }
}

/// A record operation's input: the two lengths, the associated data, the body.
fn record_input(aad: &[u8], body: &[u8]) -> Result<Vec<u8>, Error> {
    let len = abi::RECORD_LENGTHS_LEN + aad.len() + body.len();
    let too_long = || Error::Input { len };
    let aad_len = u16::try_from(aad.len()).map_err(|_| too_long())?;
    let body_len = u16::try_from(body.len()).map_err(|_| too_long())?;
    Ok([
        &aad_len.to_be_bytes()[..],
        &body_len.to_be_bytes(),
        aad,
        body,
    ]
    .concat())
}

/// The module's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `bcami_keygen`.
    Keygen,
    /// `bcami_registration`.
    Registration,
    /// `bcami_reading`.
    Reading,
    /// `bcami_rotation`.
    Rotation,
    /// `bcami_session_start`.
    SessionStart,
    /// `bcami_session_finish`.
    SessionFinish,
    /// `bcami_session_seal`.
    SessionSeal,
    /// `bcami_session_open`.
    SessionOpen,
    /// `bcami_session_end`.
    SessionEnd,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 9] = [
        Operation::Keygen,
        Operation::Registration,
        Operation::Reading,
        Operation::Rotation,
        Operation::SessionStart,
        Operation::SessionFinish,
        Operation::SessionSeal,
        Operation::SessionOpen,
        Operation::SessionEnd,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Keygen => "keygen",
            Operation::Registration => "registration",
            Operation::Reading => "reading",
            Operation::Rotation => "rotation",
            Operation::SessionStart => "session start",
            Operation::SessionFinish => "session finish",
            Operation::SessionSeal => "session seal",
            Operation::SessionOpen => "session open",
            Operation::SessionEnd => "session end",
        }
    }
}

pub(crate) fn expect_len(bytes: &[u8], len: usize) -> Result<(), Error> {
    if bytes.len() == len {
        Ok(())
    } else {
        Err(Error::Output(format!(
            "{} bytes, expected {len}",
            bytes.len()
        )))
    }
}

fn secret_key(bytes: &[u8]) -> Result<MeterSecretKey, Error> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Output("secret key is not 32 bytes".into()))?;
    MeterSecretKey::from_bytes(&bytes).map_err(|e| Error::Output(e.to_string()))
}
