//! The codec: STUN/TURN messages, ChannelData, the PROXY protocol header and the fuzz targets'
//! inputs, decoded and written again against the RFC vectors, real captures, an independent
//! implementation and property tests. Sans-IO: no socket, no feature needed.

#[path = "../support/mod.rs"]
mod support;

mod captures;
mod codec_props;
mod differential;
mod differential_stun_rs;
mod fuzz_corpus;
mod fuzz_findings;
mod proxy_props;
mod rfc5769;
mod strategies;
