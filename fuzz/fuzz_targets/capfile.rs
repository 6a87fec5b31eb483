//! The capture-file decoder over arbitrary bytes: every step until an error or the end, fed
//! whole and in small chunks (the two must agree).
#![no_main]

use ashiato_wire::capfile::{Decoder, Step};
use libfuzzer_sys::fuzz_target;

/// Decodes `data` fed `chunk` bytes at a time; returns the frames' (ts, len) or the error.
fn run(data: &[u8], chunk: usize) -> Result<Vec<(u64, usize)>, String> {
    let mut d = Decoder::new();
    let mut fed = 0usize;
    let mut frames = Vec::new();
    loop {
        let start = d.offset() as usize;
        let at_eof = fed == data.len();
        let (step, used) = d
            .step(&data[start..fed], at_eof)
            .map_err(|e| e.to_string())?;
        assert!(used <= fed - start);
        match step {
            Step::Frame(f) => frames.push((f.ts_nanos, f.data.len())),
            Step::Skip => assert!(used > 0),
            Step::NeedMore => {
                assert_eq!(used, 0);
                fed = (fed + chunk).min(data.len());
            }
            Step::End => return Ok(frames),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = run(data, data.len().max(1));
    let chunked = run(data, 7);
    assert_eq!(whole, chunked);
});
