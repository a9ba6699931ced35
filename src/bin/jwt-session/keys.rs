//! `keygen` and `jwks`.

use std::path::Path;
use std::process::ExitCode;

use jwt_session::generate_key;
use jwt_session::{Algorithm, Keyring};

use crate::{CliError, JwksArgs, KeyAlg, KeygenArgs};

pub(crate) fn keygen(args: &KeygenArgs) -> Result<ExitCode, CliError> {
    let (alg, default_prefix) = match args.alg {
        KeyAlg::Eddsa => (Algorithm::EdDSA, "ed25519-"),
        KeyAlg::Hs256 => (Algorithm::HS256, "hs256-"),
    };
    let prefix = args.prefix.as_deref().unwrap_or(default_prefix);
    let dir = &args.dir;
    if dir.exists() && !dir.is_dir() {
        return Err(CliError(format!("{} is not a directory", dir.display())));
    }
    // Generate first: a bad prefix must not leave an empty directory behind.
    let generated = generate_key(alg, prefix).map_err(|e| CliError(format!("keygen: {e}")))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError(format!("creating {}: {e}", dir.display())))?;
    generated
        .write_to(dir)
        .map_err(|e| CliError(format!("keygen: {e}")))?;
    let kid = generated.key.kid();
    println!("{kid}");
    let private = count_private_keys(dir);
    if private > 1 && !dir.join("SIGNER").exists() {
        eprintln!(
            "jwt-session: note: {} now holds {private} private keys; name the signer in {} \
             (e.g. `echo {kid} > {}`) or it will not load",
            dir.display(),
            dir.join("SIGNER").display(),
            dir.join("SIGNER").display(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn count_private_keys(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            (name.ends_with(".pem") && !name.ends_with(".pub.pem")) || name.ends_with(".hs256")
        })
        .count()
}

/// Load a key directory, with the directory in the error.
pub(crate) fn load(dir: &Path) -> Result<Keyring, CliError> {
    Keyring::load_dir(dir)
        .map_err(|e| CliError(format!("cannot load keys from {}: {e}", dir.display())))
}

pub(crate) fn jwks(args: &JwksArgs) -> Result<ExitCode, CliError> {
    let ring = load(&args.keys)?;
    let jwks = ring.jwks();
    let text = serde_json::to_string_pretty(&jwks)
        .map_err(|e| CliError(format!("serializing the JWK Set: {e}")))?;
    println!("{text}");
    if jwks["keys"].as_array().is_some_and(Vec::is_empty) {
        eprintln!(
            "jwt-session: note: {} holds no public key (HMAC keys are never exported)",
            args.keys.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
