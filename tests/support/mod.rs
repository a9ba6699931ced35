//! Helpers shared by several test binaries, each of which uses only part of them (hence
//! `dead_code` is allowed here): [`harness`], the in-process HTTP harness (routes,
//! requests, replies, clients); [`cli`], running the built `jwt-session` binary (the
//! `cli` feature); and locating the example server that `server.rs` and `browser.rs` run
//! as a child process.
#![allow(dead_code)]

#[cfg(feature = "cli")]
pub(crate) mod cli;
#[cfg(feature = "redis")]
pub(crate) mod fleet;
pub(crate) mod harness;
pub(crate) mod logs;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/` of the running test binary (`target/<profile>/deps/<test>`).
pub(crate) fn target_dir() -> PathBuf {
    profile_dir().parent().expect("target dir").to_path_buf()
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Build (usually a no-op: `cargo test` builds examples) and locate the example server,
/// `target/<profile>/examples/server`, once per test binary.
pub(crate) fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let profile_dir = profile_dir();
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let mut cargo = Command::new(env!("CARGO"));
        // The features this test binary was built with, so `cargo test --features …`
        // does not rebuild the example without them (and with them, e.g. Redis).
        let features: Vec<&str> = [
            ("redis", cfg!(feature = "redis")),
            ("metrics", cfg!(feature = "metrics")),
            ("cli", cfg!(feature = "cli")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        cargo
            .args(["build", "--example", "server", "--quiet"])
            .args(["--features", &features.join(",")])
            .arg("--target-dir")
            .arg(target_dir())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        let status = cargo.status().expect("run cargo build --example server");
        assert!(status.success(), "cargo build --example server: {status}");
        let bin = profile_dir
            .join("examples")
            .join(format!("server{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "example server not at {}", bin.display());
        bin
    })
}
