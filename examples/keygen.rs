//! Make a real signing key without openssl.
//!
//! ```text
//! cargo run --example keygen -- DIR [--alg eddsa|hs256] [--prefix PREFIX]
//! ```
//!
//! Writes `<kid>.pem` + `<kid>.pub.pem` (EdDSA) or `<kid>.hs256` into `DIR` (created if
//! missing; existing files are never overwritten) and prints the `kid`.

use std::process::ExitCode;

use jwt_session::Algorithm;
use jwt_session::keys::generate;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut alg = Algorithm::EdDSA;
    let mut prefix = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--alg" => match args
                .next()
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("eddsa" | "ed25519") => alg = Algorithm::EdDSA,
                Some("hs256") => alg = Algorithm::HS256,
                other => return fail(&format!("--alg must be eddsa or hs256, not {other:?}")),
            },
            "--prefix" => prefix = args.next(),
            "-h" | "--help" => {
                eprintln!("usage: keygen DIR [--alg eddsa|hs256] [--prefix PREFIX]");
                return ExitCode::SUCCESS;
            }
            _ if dir.is_none() && !arg.starts_with('-') => dir = Some(arg),
            _ => return fail(&format!("unexpected argument {arg:?}")),
        }
    }
    let Some(dir) = dir else {
        return fail("usage: keygen DIR [--alg eddsa|hs256] [--prefix PREFIX]");
    };
    let prefix = prefix.unwrap_or_else(|| match alg {
        Algorithm::HS256 => "hs256-".into(),
        _ => "ed25519-".into(),
    });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(&format!("creating {dir}: {e}"));
    }
    match generate(alg, &prefix).and_then(|generated| {
        generated.write_to(&dir)?;
        Ok(generated.key.kid().to_owned())
    }) {
        Ok(kid) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{kid}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("keygen: {message}");
    ExitCode::from(2)
}
