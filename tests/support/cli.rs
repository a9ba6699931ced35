//! Running the operator's CLI, the built `jwt-session` binary (the `cli` feature), and
//! what its runs are checked for.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// One run of `jwt-session`: its exit code and output.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// `jwt-session args…`, with no input.
pub(crate) fn run(args: &[&str]) -> Run {
    run_with(args, None)
}

/// `jwt-session args…`, with `stdin` as its input when given.
pub(crate) fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Run {
    run_env(args, stdin, &[])
}

/// As [`run_with`], with extra environment variables. Never a panic of the binary.
pub(crate) fn run_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jwt-session"));
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn jwt-session");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let run = Run {
        code: status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "jwt-session panicked on {args:?}: {}",
        run.stderr
    );
    run
}

/// Exit code 2 with exactly one line on stderr, mentioning `needle`.
#[track_caller]
pub(crate) fn assert_usage_error(r: &Run, needle: &str) {
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", r.stderr);
    assert!(lines[0].starts_with("jwt-session: "), "{:?}", lines[0]);
    assert!(
        r.stderr.contains(needle),
        "stderr {:?} should mention {needle:?}",
        r.stderr
    );
}
