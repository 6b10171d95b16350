//! Interop with other implementations' clients against an in-process switchback (`runtime`):
//! coturn's `turnutils_uclient` and WebRTC in headless Chromium. Without the tools each test prints
//! `SKIP: …` (and fails under `CI=true`).

#[path = "../support/mod.rs"]
mod support;

mod chromium;
mod uclient;
