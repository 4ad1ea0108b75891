//! What every meter module's host shares: compiling a module and checking its exports, building
//! it with the repository's script, and one instance under a memory cap and a fuel budget that
//! runs an export on the module's I/O buffer and measures it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, Global, Instance, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc, Val,
};

use crate::{Cost, Error, Limits, PAGE};

/// A compiled module with its hash and size.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub(crate) engine: Engine,
    pub(crate) module: Module,
    pub(crate) sha256: [u8; 32],
    pub(crate) size: usize,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("size", &self.size)
            .field("sha256", &self.sha256_hex())
            .finish()
    }
}

/// The exports every meter module has besides its operations.
const COMMON_EXPORTS: [&str; 5] = [
    "memory",
    "__stack_pointer",
    "__heap_base",
    "bcami_io",
    "bcami_heap_high_water",
];

impl Compiled {
    /// Compiles `bytes` (Cranelift) and checks that it is a meter module with `exports`: no
    /// imports, a stack pointer, a heap base, the I/O buffer.
    pub(crate) fn new(bytes: &[u8], exports: &[&str]) -> Result<Compiled, Error> {
        let mut config = Config::new();
        config.consume_fuel(true);
        // A meter has at most a few pages: reserve 1 MiB of address space per instance instead
        // of the default 4 GiB, so thousands of meters fit; bounds are then checked explicitly.
        config.memory_reservation(1 << 20);
        config.memory_guard_size(PAGE as u64);
        let engine = Engine::new(&config).map_err(|e| Error::Module(format!("{e:#}")))?;
        let module =
            Module::from_binary(&engine, bytes).map_err(|e| Error::Module(format!("{e:#}")))?;
        if let Some(import) = module.imports().next() {
            return Err(Error::Module(format!(
                "it imports {}::{}; a meter module imports nothing",
                import.module(),
                import.name()
            )));
        }
        let present: Vec<&str> = module.exports().map(|e| e.name()).collect();
        for name in COMMON_EXPORTS.iter().chain(exports) {
            if !present.contains(name) {
                return Err(Error::Module(format!("export `{name}` is missing")));
            }
        }
        Ok(Compiled {
            engine,
            module,
            sha256: Sha256::digest(bytes).into(),
            size: bytes.len(),
        })
    }

    /// [`Compiled::new`] of a file.
    pub(crate) fn from_file(path: &Path, exports: &[&str]) -> Result<Compiled, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&bytes, exports)
    }

    /// Builds module `which` (`meter` or `anon`) with `scripts/build-meter-wasm.sh` (which
    /// installs the toolchain) into `target_dir`, then loads `file` from its output directory.
    pub(crate) fn build(
        repo: &Path,
        target_dir: &Path,
        which: &str,
        file: &str,
        exports: &[&str],
    ) -> Result<Compiled, Error> {
        let script = repo.join("scripts/build-meter-wasm.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg(which)
            .env("CARGO_TARGET_DIR", target_dir)
            .output()
            .map_err(|source| Error::Read {
                path: script.display().to_string(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Module(format!(
                "{} {which} failed:\n{}\n{}",
                script.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Self::from_file(&built_path(target_dir, file), exports)
    }

    pub(crate) fn sha256_hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where `scripts/build-meter-wasm.sh` writes `file` for `target_dir`.
pub(crate) fn built_path(target_dir: &Path, file: &str) -> PathBuf {
    target_dir.join("meter-wasm").join(file)
}

/// Caps linear memory and remembers the request it refused.
pub(crate) struct Cap {
    limit: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for Cap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A module's one table is its function table; it never grows.
        Ok(desired <= 64)
    }
}

/// Written over the stack region before each call; the lowest byte that no longer holds it is
/// the deepest the stack went.
const STACK_PAINT: u8 = 0xA5;

/// Fuel for reading a gauge export after an operation (it returns a static).
const GAUGE_FUEL: u64 = 10_000;

/// One instance of a meter module in its own store, with its memory cap and fuel budget.
pub(crate) struct Runner {
    store: Store<Cap>,
    instance: Instance,
    memory: Memory,
    io: usize,
    io_len: usize,
    stack_pointer: Global,
    stack_top: usize,
    data_bytes: usize,
    heap_high_water: TypedFunc<(), u32>,
    pub(crate) limits: Limits,
}

/// What an export returned: its output, or the negative status code.
pub(crate) type Returned = Result<Vec<u8>, i32>;

impl Runner {
    /// Instantiates the module, whose I/O buffer is `io_len` bytes. Fails with
    /// [`Error::MemoryCap`] if the module's initial memory is above the cap.
    pub(crate) fn new(compiled: &Compiled, limits: Limits, io_len: usize) -> Result<Runner, Error> {
        let mut store = Store::new(
            &compiled.engine,
            Cap {
                limit: limits.memory_bytes,
                refused: None,
            },
        );
        store.limiter(|cap| cap);
        store
            .set_fuel(limits.fuel_per_operation)
            .map_err(|e| Error::Module(format!("{e:#}")))?;
        let instance = match Instance::new(&mut store, &compiled.module, &[]) {
            Ok(instance) => instance,
            Err(e) => {
                return Err(match store.data().refused {
                    Some(needed) => Error::MemoryCap {
                        limit: limits.memory_bytes,
                        needed,
                    },
                    None => Error::Module(format!("{e:#}")),
                });
            }
        };
        let heap_high_water = instance
            .get_typed_func::<(), u32>(&mut store, "bcami_heap_high_water")
            .map_err(|e| Error::Module(format!("export `bcami_heap_high_water`: {e:#}")))?;
        let io = instance
            .get_typed_func::<(), u32>(&mut store, "bcami_io")
            .map_err(|e| Error::Module(format!("export `bcami_io`: {e:#}")))?
            .call(&mut store, ())
            .map_err(|e| Error::Trap(format!("{e:#}")))?;
        let global = |store: &mut Store<Cap>, name: &str| -> Result<usize, Error> {
            instance
                .get_global(&mut *store, name)
                .and_then(|g| g.get(&mut *store).i32())
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| Error::Module(format!("`{name}` is not an i32 global")))
        };
        // The module is linked with the stack first: it grows down from `__stack_pointer` to 0,
        // then static data up to `__heap_base`.
        let stack_top = global(&mut store, "__stack_pointer")?;
        let stack_pointer = instance
            .get_global(&mut store, "__stack_pointer")
            .ok_or_else(|| Error::Module("export `__stack_pointer` is missing".into()))?;
        let heap_base = global(&mut store, "__heap_base")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::Module("export `memory` is not a memory".into()))?;
        let io = usize::try_from(io).map_err(|e| Error::Module(e.to_string()))?;
        if heap_base < stack_top || io + io_len > memory.data_size(&store) {
            return Err(Error::Module(
                "the memory layout is not stack first, data, heap".into(),
            ));
        }
        Ok(Runner {
            store,
            instance,
            memory,
            io,
            io_len,
            stack_pointer,
            stack_top,
            data_bytes: heap_base - stack_top,
            heap_high_water,
            limits,
        })
    }

    /// The operation export `name` (no arguments, an `i32` result).
    pub(crate) fn operation(&mut self, name: &str) -> Result<TypedFunc<(), i32>, Error> {
        self.instance
            .get_typed_func::<(), i32>(&mut self.store, name)
            .map_err(|e| Error::Module(format!("export `{name}`: {e:#}")))
    }

    /// A `() -> u32` export's value (a module's gauge).
    pub(crate) fn gauge(&mut self, name: &str) -> Result<u32, Error> {
        self.store
            .set_fuel(GAUGE_FUEL)
            .map_err(|e| Error::Trap(format!("{e:#}")))?;
        self.instance
            .get_typed_func::<(), u32>(&mut self.store, name)
            .map_err(|e| Error::Module(format!("export `{name}`: {e:#}")))?
            .call(&mut self.store, ())
            .map_err(|e| Error::Trap(format!("{e:#}")))
    }

    /// Runs `func` on `input` written at the start of the I/O buffer; returns what it returned
    /// (the output bytes, or the negative status for the caller to name) and the cost.
    pub(crate) fn call(
        &mut self,
        func: &TypedFunc<(), i32>,
        input: &[u8],
    ) -> Result<(Returned, Cost), Error> {
        if input.len() > self.io_len {
            return Err(Error::Input { len: input.len() });
        }
        {
            let memory = self.memory.data_mut(&mut self.store);
            memory[self.io..self.io + input.len()].copy_from_slice(input);
            memory[..self.stack_top].fill(STACK_PAINT);
        }
        self.store.data_mut().refused = None;
        self.store
            .set_fuel(self.limits.fuel_per_operation)
            .map_err(|e| Error::Trap(format!("{e:#}")))?;
        let result = func.call(&mut self.store, ());
        if result.is_err() {
            // A trap leaves the shadow stack pointer where the trapping frame had moved it: put
            // it back, so the meter's next operation has its whole stack.
            let top = i32::try_from(self.stack_top).map_err(|e| Error::Trap(e.to_string()))?;
            self.stack_pointer
                .set(&mut self.store, Val::I32(top))
                .map_err(|e| Error::Trap(format!("{e:#}")))?;
        }
        let fuel_left = self.store.get_fuel().unwrap_or(0);
        let returned = match result {
            Ok(value) => value,
            Err(e) => {
                if let Some(needed) = self.store.data().refused {
                    return Err(Error::MemoryCap {
                        limit: self.limits.memory_bytes,
                        needed,
                    });
                }
                return Err(match e.downcast_ref::<Trap>() {
                    Some(Trap::OutOfFuel) => Error::OutOfFuel {
                        budget: self.limits.fuel_per_operation,
                    },
                    _ => Error::Trap(format!("{e:#}")),
                });
            }
        };
        let fuel = self.limits.fuel_per_operation - fuel_left;
        let memory = self.memory.data(&self.store);
        let untouched = memory[..self.stack_top]
            .iter()
            .position(|&b| b != STACK_PAINT)
            .unwrap_or(self.stack_top);
        let stack_bytes = self.stack_top - untouched;
        let memory_bytes = memory.len();
        let output = match usize::try_from(returned) {
            Ok(len) if len <= self.io_len => Ok(memory[self.io..self.io + len].to_vec()),
            Ok(len) => {
                return Err(Error::Output(format!(
                    "output length {len} > {}",
                    self.io_len
                )));
            }
            Err(_) => Err(returned),
        };
        // The gauge's few instructions are not the operation's: give it its own fuel, so an
        // operation that used its whole budget is still measured.
        self.store
            .set_fuel(GAUGE_FUEL)
            .map_err(|e| Error::Trap(format!("{e:#}")))?;
        let heap = self
            .heap_high_water
            .call(&mut self.store, ())
            .map_err(|e| Error::Trap(format!("{e:#}")))?;
        Ok((
            output,
            Cost {
                fuel,
                stack_bytes,
                heap_bytes: heap as usize,
                data_bytes: self.data_bytes,
                memory_bytes,
            },
        ))
    }
}
