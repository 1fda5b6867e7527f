#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = adapters::fuzzing::telemetry_batch(data);
});
