//! `ssectl token`: prints a signed token (JWT) that lets its bearer subscribe to and
//! publish to namespaces, for a server started with `--jwt-secret` or `--jwt-key`.

use std::path::PathBuf;

use clap::Args;
use sse_core::Namespace;
use sse_hyper::SigningKey;

/// Options of `ssectl token`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("signing_key").required(true).args(["secret", "key"]))]
pub struct TokenArgs {
    /// Sign with HS256 and this shared secret (the server's --jwt-secret).
    #[arg(long, env = "SSE_JWT_SECRET", hide_env_values = true)]
    secret: Option<String>,

    /// Sign with this PKCS#8 PEM private key, with its algorithm (RS256, ES256 for
    /// P-256, EdDSA for Ed25519); the server has the public key (--jwt-key).
    #[arg(long)]
    key: Option<PathBuf>,

    /// A namespace the token may subscribe to, with everything below it (repeat for
    /// more).
    #[arg(long = "subscribe", value_name = "NS")]
    subscribe: Vec<String>,

    /// A namespace the token may publish to, with everything below it (repeat for more).
    #[arg(long = "publish", value_name = "NS")]
    publish: Vec<String>,

    /// How long the token is valid (e.g. 1h, 15m, 30s).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: std::time::Duration,
}

/// Prints the token on standard output.
pub fn run(args: TokenArgs) -> Result<(), String> {
    let subscribe = namespaces(&args.subscribe, "--subscribe")?;
    let publish = namespaces(&args.publish, "--publish")?;
    if subscribe.is_empty() && publish.is_empty() {
        return Err("a token needs at least one --subscribe or --publish namespace".into());
    }
    if args.ttl.is_zero() {
        return Err("--ttl: a token valid for no time is of no use".into());
    }
    let key = match (&args.secret, &args.key) {
        (Some(secret), _) => SigningKey::hs256_secret(secret),
        (None, Some(path)) => SigningKey::from_private_pem_file(path),
        (None, None) => return Err("give --secret or --key".into()),
    }
    .map_err(|e| e.to_string())?;
    let token = key
        .sign(&subscribe, &publish, args.ttl)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

fn namespaces(texts: &[String], flag: &str) -> Result<Vec<Namespace>, String> {
    texts
        .iter()
        .map(|text| Namespace::parse(text).map_err(|e| format!("{flag} {text:?}: {e}")))
        .collect()
}
