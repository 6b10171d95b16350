//! Builds the XDP program of the kernel fast path (`bpf/channel_relay.c`, issue #19) with clang,
//! only when the `xdp` feature is on; without it this does nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_XDP").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=bpf/channel_relay.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("channel_relay.o");
    // <asm/types.h> and friends live under the multiarch directory on Debian.
    let multiarch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .args(["-c", "bpf/channel_relay.c", "-o"])
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("the `xdp` feature: {clang} could not build bpf/channel_relay.c ({s})"),
        Err(e) => panic!(
            "the `xdp` feature needs clang with the BPF target and libbpf's headers \
             (Debian: apt-get install clang llvm libbpf-dev): running {clang}: {e}"
        ),
    }
}
