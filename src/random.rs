//! Unpredictable bits for the sans-IO core: transaction IDs of the server's own indications (RFC
//! 8489 §5 wants them cryptographically random), RESERVATION-TOKENs and CONNECTION-IDs (RFC 8656
//! §7.2, RFC 6062 §5: whoever guesses one takes a reserved port or a peer connection).
//!
//! A ChaCha8 generator per thread, all keyed by one process key from the OS, each on its own
//! stream: no lock, no allocation and no syscall per call (a 256-byte block every 21 transaction
//! IDs). The key comes from `getrandom` with the `runtime` feature; without it (the fuzz build) from
//! the OS-seeded keys of std's `RandomState`.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use chacha20::ChaCha8Rng;
use chacha20::rand_core::{Rng as _, SeedableRng as _};

/// The process key every thread's generator is keyed with.
fn process_key() -> [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        #[cfg(feature = "runtime")]
        if getrandom::fill(&mut key).is_ok() {
            return key;
        }
        // std seeds RandomState from the OS (getrandom(2) on Linux): 128 bits of it, spread out.
        use std::hash::{BuildHasher as _, Hasher as _};
        let state = std::collections::hash_map::RandomState::new();
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            let mut h = state.build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        key
    })
}

thread_local! {
    static RNG: RefCell<ChaCha8Rng> = RefCell::new({
        static STREAMS: AtomicU64 = AtomicU64::new(0);
        let mut rng = ChaCha8Rng::from_seed(process_key());
        rng.set_stream(STREAMS.fetch_add(1, Relaxed));
        rng
    });
}

/// Fills `out` with unpredictable bytes.
pub fn fill(out: &mut [u8]) {
    RNG.with(|rng| rng.borrow_mut().fill_bytes(out));
}

/// 64 unpredictable bits.
pub fn u64() -> u64 {
    RNG.with(|rng| rng.borrow_mut().next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_draw_different_bits() {
        let here: Vec<u64> = (0..4).map(|_| u64()).collect();
        let there: Vec<u64> = std::thread::spawn(|| (0..4).map(|_| u64()).collect()).join().unwrap();
        assert_ne!(here, there);
        let mut all = here.clone();
        all.extend(&there);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8);
    }
}
