//! `arcella-bench-wasmi FILE.wasm`: runs a WASI preview-1 command in wasmi
//! with the five imports the bench guests use (environ_get,
//! environ_sizes_get, clock_time_get, fd_write, proc_exit); any other import
//! fails instantiation. Exits with the guest's exit code.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmi::{Caller, Engine, Error, Extern, Linker, Memory, Module, Store};

const WASI: &str = "wasi_snapshot_preview1";

fn memory(caller: &Caller<'_, Instant>) -> Result<Memory, Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(Error::new("the guest exports no memory")),
    }
}

fn main() -> ExitCode {
    let Some(file) = std::env::args().nth(1) else {
        eprintln!("usage: arcella-bench-wasmi FILE.wasm");
        return ExitCode::from(2);
    };
    match run(&file) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("arcella-bench-wasmi: {file}: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(file: &str) -> Result<i32, Error> {
    let wasm = std::fs::read(file).map_err(|e| Error::new(e.to_string()))?;
    let engine = Engine::default();
    let module = Module::new(&engine, &wasm)?;
    let mut store = Store::new(&engine, Instant::now());
    let mut linker = <Linker<Instant>>::new(&engine);
    linker.func_wrap(WASI, "environ_sizes_get", |mut caller: Caller<'_, Instant>, count: i32, size: i32| {
        let memory = memory(&caller)?;
        let data = memory.data_mut(&mut caller);
        data[count as usize..count as usize + 4].copy_from_slice(&0u32.to_le_bytes());
        data[size as usize..size as usize + 4].copy_from_slice(&0u32.to_le_bytes());
        Ok(0i32)
    })?;
    linker.func_wrap(WASI, "environ_get", |_: Caller<'_, Instant>, _: i32, _: i32| 0i32)?;
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, Instant>, id: i32, _precision: i64, out: i32| {
            let nanos = if id == 0 {
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
            } else {
                caller.data().elapsed().as_nanos() as u64
            };
            let memory = memory(&caller)?;
            memory.data_mut(&mut caller)[out as usize..out as usize + 8].copy_from_slice(&nanos.to_le_bytes());
            Ok(0i32)
        },
    )?;
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, Instant>, fd: i32, iovs: i32, len: i32, written: i32| {
            let memory = memory(&caller)?;
            let data = memory.data_mut(&mut caller);
            let word = |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
            let mut bytes = Vec::new();
            for i in 0..len as usize {
                let (ptr, n) = (word(iovs as usize + 8 * i), word(iovs as usize + 8 * i + 4));
                bytes.extend_from_slice(&data[ptr..ptr + n]);
            }
            let result = match fd {
                1 => std::io::stdout().write_all(&bytes),
                2 => std::io::stderr().write_all(&bytes),
                _ => return Ok(8i32), // EBADF
            };
            if result.is_err() {
                return Ok(29); // EIO
            }
            data[written as usize..written as usize + 4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            Ok(0)
        },
    )?;
    linker.func_wrap(WASI, "proc_exit", |_: Caller<'_, Instant>, code: i32| -> Result<(), Error> {
        Err(Error::i32_exit(code))
    })?;
    let instance = linker.instantiate_and_start(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&store, "_start")?;
    let outcome = start.call(&mut store, ());
    let _ = std::io::stdout().flush();
    match outcome {
        Ok(()) => Ok(0),
        Err(e) => e.i32_exit_status().ok_or(e),
    }
}
