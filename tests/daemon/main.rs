//! The `switchback` binary as users run it (`cli`): flags and configuration, signals (reload,
//! drain), the HTTP faces (token service, health, metrics, admin), tokens end to end, coturn
//! configuration import, systemd packaging, the web example, RFC 7635 OAuth; the token service and
//! TURN on one TLS port (`api-on-tls`).

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod api_on_tls;
mod cli;
mod deploy;
mod drain;
mod fleet_nonce;
mod http_api;
mod http_health;
mod import_coturn;
mod load_tool;
mod metrics;
mod oauth;
mod packaging;
mod reload;
mod token_flow;
mod usage;
mod web_example;
