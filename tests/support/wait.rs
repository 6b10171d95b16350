//! Bounded waiting: a whole test under a timeout, and polling a condition until a deadline (never a
//! fixed sleep standing in for the condition).

use std::time::{Duration, Instant};

/// Upper bound on any one in-process test ([`bounded`]).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for one expected answer, datagram or state change ([`eventually`]).
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// Runs a test body with [`TEST_TIMEOUT`].
#[cfg(feature = "runtime")]
pub async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_TIMEOUT, body).await.expect("the test did not finish within its timeout");
}

/// Polls `cond` every 10 ms until it holds, failing after [`RECV_TIMEOUT`] (async tests).
#[cfg(feature = "runtime")]
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that is itself async (connecting, a request).
#[cfg(feature = "runtime")]
pub async fn eventually_async<F: std::future::Future<Output = bool>>(what: &str, mut cond: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `cond` until it returns `Some`, failing after `timeout` (blocking tests); returns the value.
pub fn poll_until<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = cond() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// [`poll_until`] for a plain condition.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    poll_until(what, timeout, || cond().then_some(()))
}
