//! Abuse resistance (`runtime`): amplification, malformed input, the peer policy, quotas and
//! bandwidth limits, revocation, the PROXY protocol's trust rules.

#[path = "../support/mod.rs"]
mod support;

mod amplification;
mod peer_policy;
mod proxy_protocol;
mod quotas;
mod revocation;
mod robustness;
