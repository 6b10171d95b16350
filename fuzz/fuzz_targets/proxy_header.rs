#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchback::fuzzing::proxy_header(data));
