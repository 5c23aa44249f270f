//! Signed tokens (JWT) that say which namespaces a client may subscribe to and publish
//! to: the verifying key ([`JwtKey`]), the signing key ([`SigningKey`], for programs that
//! hand tokens out), the claims, namespace coverage, and why a token is refused.
//!
//! # The token
//!
//! A JWS in compact form, signed with HS256 (a shared secret) or with the private half of
//! an RS256, ES256 or EdDSA key pair. Its claims:
//!
//! ```json
//! {"exp": 1767225600, "nbf": 1767222000, "iat": 1767222000,
//!  "sse": {"subscribe": ["/users/42", "/public"], "publish": ["/users/42"]}}
//! ```
//!
//! `exp` is required; `nbf` and `iat` are checked when present (a token issued or valid
//! only in the future is refused), all with the configured clock leeway. Each entry of
//! `sse.subscribe` and `sse.publish` covers itself and every namespace below it on a
//! segment boundary (`/users/42` covers `/users/42/inbox`, never `/users/420`; `/` covers
//! everything). Other claims (`sub`, `aud`, `iss`, ...) are carried but not checked.
//!
//! # Algorithms are the key's
//!
//! The key decides the one algorithm accepted: a secret accepts HS256 only, an RSA public
//! key RS256 only, a P-256 key ES256 only, an Ed25519 key EdDSA only. A token whose header
//! names another algorithm (including `none`, which is not even parsed as an algorithm) is
//! refused before any signature is checked, so no key can be misused as another kind
//! (the classic "RSA public key as HMAC secret" confusion).
//!
//! # Cost
//!
//! A token is verified once, when a stream opens or a publish request arrives; a stream
//! then keeps only its deadline (`exp` plus the leeway), which the registry's one-second
//! sweep enforces (`streams.rs`). Nothing is verified per event.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sse_core::Namespace;

use crate::error::{ApiError, ErrorCode};

/// The default clock leeway for `exp`, `nbf` and `iat`: 5 s.
pub const DEFAULT_JWT_LEEWAY: Duration = Duration::from_secs(5);

/// The key that verifies tokens, and with it the one algorithm accepted.
///
/// ```
/// use sse_hyper::{JwtKey, Server};
///
/// let key = JwtKey::hs256_secret("a long random secret").unwrap();
/// assert_eq!(key.algorithm(), "HS256");
/// let server = Server::builder().jwt(key).build();
/// # let _ = server;
/// ```
#[derive(Clone)]
pub struct JwtKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material: a secret in a log is a secret lost.
        f.debug_struct("JwtKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// A shared secret: tokens must be signed with HS256.
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] for an empty secret.
    pub fn hs256_secret(secret: impl AsRef<[u8]>) -> Result<JwtKey, JwtKeyError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(JwtKeyError::new("the JWT secret is empty"));
        }
        let key = DecodingKey::from_secret(secret)
            .map_err(|e| JwtKeyError::new(format!("the JWT secret cannot be used: {e}")))?;
        Ok(JwtKey {
            key,
            algorithm: Algorithm::HS256,
        })
    }

    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`): RSA → RS256,
    /// P-256 → ES256, Ed25519 → EdDSA.
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] when the text is not a PEM public key of one of those kinds (a
    /// private key is refused: the server needs only the public half).
    ///
    /// ```
    /// let pem = b"-----BEGIN PUBLIC KEY-----\n\
    ///     MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
    ///     -----END PUBLIC KEY-----\n";
    /// let key = sse_hyper::JwtKey::from_public_pem(pem).unwrap();
    /// assert_eq!(key.algorithm(), "EdDSA");
    /// ```
    pub fn from_public_pem(pem: &[u8]) -> Result<JwtKey, JwtKeyError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PRIVATE KEY-----") {
            return Err(JwtKeyError::new(
                "the JWT key is a private key; give the server the public key \
                 (openssl pkey -in private.pem -pubout)",
            ));
        }
        if !text.contains("PUBLIC KEY-----") {
            return Err(JwtKeyError::new(
                "the JWT key is not a PEM public key ('-----BEGIN PUBLIC KEY-----')",
            ));
        }
        let attempts = [
            (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem)),
            (Algorithm::ES256, DecodingKey::from_ec_pem(pem)),
            (Algorithm::RS256, DecodingKey::from_rsa_pem(pem)),
        ];
        attempts
            .into_iter()
            .find_map(|(algorithm, key)| key.ok().map(|key| JwtKey { key, algorithm }))
            .ok_or_else(|| {
                JwtKeyError::new("the JWT key is not an RSA, P-256 or Ed25519 public key")
            })
    }

    /// Reads [`from_public_pem`](JwtKey::from_public_pem) from a file.
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] naming the file when it cannot be read or holds no usable key.
    pub fn from_public_pem_file(path: impl AsRef<Path>) -> Result<JwtKey, JwtKeyError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| JwtKeyError::new(format!("cannot read {}: {e}", path.display())))?;
        JwtKey::from_public_pem(&pem)
            .map_err(|e| JwtKeyError::new(format!("{}: {}", path.display(), e.message)))
    }

    /// The one algorithm this key accepts, as a JWT header names it (`HS256`, `RS256`,
    /// `ES256`, `EdDSA`).
    pub fn algorithm(&self) -> &'static str {
        algorithm_name(self.algorithm)
    }
}

/// A key that signs tokens, for programs that hand them out (`ssectl token` is one).
///
/// ```
/// use std::time::Duration;
/// use sse_core::Namespace;
/// use sse_hyper::SigningKey;
///
/// let key = SigningKey::hs256_secret("a long random secret").unwrap();
/// let token = key
///     .sign(&[Namespace::parse("/users/42").unwrap()], &[], Duration::from_secs(3600))
///     .unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// ```
#[derive(Clone)]
pub struct SigningKey {
    key: EncodingKey,
    algorithm: Algorithm,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A shared secret: tokens are signed with HS256.
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] for an empty secret.
    pub fn hs256_secret(secret: impl AsRef<[u8]>) -> Result<SigningKey, JwtKeyError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(JwtKeyError::new("the JWT secret is empty"));
        }
        let key = EncodingKey::from_secret(secret)
            .map_err(|e| JwtKeyError::new(format!("the JWT secret cannot be used: {e}")))?;
        Ok(SigningKey {
            key,
            algorithm: Algorithm::HS256,
        })
    }

    /// A PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`; RSA also as
    /// `RSA PRIVATE KEY`): tokens are signed with the key's algorithm (RS256, ES256 for
    /// P-256, EdDSA for Ed25519).
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] when the text is not such a key.
    pub fn from_private_pem(pem: &[u8]) -> Result<SigningKey, JwtKeyError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("BEGIN EC PRIVATE KEY") {
            return Err(JwtKeyError::new(
                "the key is in SEC1 form; convert it to PKCS#8 \
                 (openssl pkcs8 -topk8 -nocrypt -in key.pem)",
            ));
        }
        if !text.contains("PRIVATE KEY-----") {
            return Err(JwtKeyError::new(
                "signing needs a PEM private key ('-----BEGIN PRIVATE KEY-----')",
            ));
        }
        let attempts = [
            (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem)),
            (Algorithm::ES256, EncodingKey::from_ec_pem(pem)),
            (Algorithm::RS256, EncodingKey::from_rsa_pem(pem)),
        ];
        attempts
            .into_iter()
            .find_map(|(algorithm, key)| key.ok().map(|key| SigningKey { key, algorithm }))
            .ok_or_else(|| JwtKeyError::new("the key is not an RSA, P-256 or Ed25519 private key"))
    }

    /// Reads [`from_private_pem`](SigningKey::from_private_pem) from a file.
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] naming the file when it cannot be read or holds no usable key.
    pub fn from_private_pem_file(path: impl AsRef<Path>) -> Result<SigningKey, JwtKeyError> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| JwtKeyError::new(format!("cannot read {}: {e}", path.display())))?;
        SigningKey::from_private_pem(&pem)
            .map_err(|e| JwtKeyError::new(format!("{}: {}", path.display(), e.message)))
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> &'static str {
        algorithm_name(self.algorithm)
    }

    /// A token valid from now for `ttl` that lets its bearer subscribe to `subscribe` and
    /// publish to `publish` (each with everything below it).
    ///
    /// # Errors
    ///
    /// [`JwtKeyError`] when signing fails (a key the crypto library refuses).
    pub fn sign(
        &self,
        subscribe: &[Namespace],
        publish: &[Namespace],
        ttl: Duration,
    ) -> Result<String, JwtKeyError> {
        let now = unix_seconds(SystemTime::now());
        let claims = Claims {
            exp: Some(now.saturating_add(ttl.as_secs())),
            nbf: Some(now),
            iat: Some(now),
            sse: SseClaims {
                subscribe: subscribe.iter().map(Namespace::to_string).collect(),
                publish: publish.iter().map(Namespace::to_string).collect(),
            },
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|e| JwtKeyError::new(format!("cannot sign the token: {e}")))
    }
}

/// A key that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtKeyError {
    message: String,
}

impl JwtKeyError {
    fn new(message: impl Into<String>) -> JwtKeyError {
        JwtKeyError {
            message: message.into(),
        }
    }
}

impl fmt::Display for JwtKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JwtKeyError {}

/// A key with the checks every token goes through (its algorithm, `exp` required,
/// `nbf`, the leeway): what a configured server verifies with.
#[derive(Clone)]
pub(crate) struct Verifier {
    key: JwtKey,
    validation: Validation,
    leeway: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("key", &self.key)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Verifier {
    pub(crate) fn new(key: JwtKey, leeway: Duration) -> Verifier {
        let mut validation = Validation::new(key.algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // No audience is configured, so a token naming one is not refused for it.
        validation.validate_aud = false;
        // Whole seconds, as JWT times are; a part of a second counts as one.
        let seconds = leeway.as_secs() + u64::from(leeway.subsec_nanos() > 0);
        validation.leeway = seconds;
        Verifier {
            key,
            validation,
            leeway: Duration::from_secs(seconds),
        }
    }

    pub(crate) fn key(&self) -> &JwtKey {
        &self.key
    }

    /// Checks `token` (signature, algorithm, times) and gives what it grants.
    pub(crate) fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed {
            reason: "it is not a signed JWT with a supported algorithm ('none' is refused)",
        })?;
        if header.alg != self.key.algorithm {
            return Err(TokenError::WrongAlgorithm {
                token: algorithm_name(header.alg),
                key: self.key.algorithm(),
            });
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key.key, &self.validation)
            .map_err(|e| TokenError::from_kind(e.kind()))?;
        let claims = data.claims;
        let exp = claims.exp.ok_or(TokenError::NoExpiry)?;
        let now = unix_seconds(SystemTime::now());
        // RFC 7519: valid only *before* exp (the library also accepts the second of exp
        // itself), so a stream ended at its deadline cannot reopen with the same token.
        if now >= exp.saturating_add(self.leeway.as_secs()) {
            return Err(TokenError::Expired);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway.as_secs()))
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(Grant {
            subscribe: parse_namespaces(&claims.sse.subscribe, "sse.subscribe")?,
            publish: parse_namespaces(&claims.sse.publish, "sse.publish")?,
            // Accepted until exp plus the leeway; the stream lives exactly as long.
            expires_at: UNIX_EPOCH + Duration::from_secs(exp) + self.leeway,
        })
    }
}

/// What a verified token allows, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) subscribe: Vec<Namespace>,
    pub(crate) publish: Vec<Namespace>,
    /// When the token stops being accepted: `exp` plus the leeway.
    pub(crate) expires_at: SystemTime,
}

/// What a client may do with a namespace under a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Subscribe,
    Publish,
}

impl Grant {
    /// Refuses with 403 unless the token covers every one of `namespaces` for `action`.
    pub(crate) fn check<'a>(
        &self,
        action: Action,
        namespaces: impl IntoIterator<Item = &'a Namespace>,
    ) -> Result<(), ApiError> {
        let (granted, verb, claim) = match action {
            Action::Subscribe => (&self.subscribe, "subscribing to", "sse.subscribe"),
            Action::Publish => (&self.publish, "publishing to", "sse.publish"),
        };
        match namespaces.into_iter().find(|asked| !covers(granted, asked)) {
            None => Ok(()),
            Some(asked) => Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the token does not allow {verb} {asked} (its {claim} does not cover it)"),
            )),
        }
    }
}

/// Whether one of `granted` covers `asked`: equal to it, or above it on a segment
/// boundary (`/users/42` covers `/users/42/x`, never `/users/420`).
pub(crate) fn covers(granted: &[Namespace], asked: &Namespace) -> bool {
    granted.iter().any(|entry| entry.contains(asked))
}

/// Why a token was refused; every reason is a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    Missing,
    Malformed {
        reason: &'static str,
    },
    InvalidClaim {
        claim: String,
    },
    WrongAlgorithm {
        token: &'static str,
        key: &'static str,
    },
    BadSignature,
    Expired,
    NotYetValid,
    NoExpiry,
}

impl TokenError {
    fn from_kind(kind: &ErrorKind) -> TokenError {
        match kind {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::MissingRequiredClaim(_) => TokenError::NoExpiry,
            ErrorKind::InvalidClaimFormat(claim) => TokenError::InvalidClaim {
                claim: claim.clone(),
            },
            ErrorKind::Json(_) => TokenError::Malformed {
                reason: "its claims are not the JSON expected \
                         (exp a number, sse.subscribe and sse.publish lists of namespaces)",
            },
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
                TokenError::Malformed {
                    reason: "it is not three base64url parts",
                }
            }
            // The key was checked when configured; anything else is a token this key
            // cannot have signed.
            _ => TokenError::BadSignature,
        }
    }

    /// The 401 answer, for `what` (such as "subscribing").
    pub(crate) fn into_api_error(self, what: &str) -> ApiError {
        let detail = match self {
            TokenError::Missing => format!(
                "{what} requires a token: 'Authorization: Bearer <token>' (or ?token=<token> \
                 on an event stream)"
            ),
            TokenError::Malformed { reason } => format!("the token is malformed: {reason}"),
            TokenError::InvalidClaim { claim } => {
                format!("the token is malformed: its {claim} claim is not valid")
            }
            TokenError::WrongAlgorithm { token, key } => {
                format!("the token is signed with {token}, but this server accepts {key} only")
            }
            TokenError::BadSignature => {
                "the token's signature does not verify with the configured key".to_owned()
            }
            TokenError::Expired => "the token has expired (exp)".to_owned(),
            TokenError::NotYetValid => "the token is not valid yet (nbf or iat)".to_owned(),
            TokenError::NoExpiry => "the token has no exp claim, which is required".to_owned(),
        };
        ApiError::new(ErrorCode::Unauthorized, detail)
    }
}

/// The claims this server reads; others are ignored.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    // Optional here so that a token without it is refused for that, by name, rather
    // than as unreadable JSON (it is required: see `Verifier::new`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_numeric_date"
    )]
    exp: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_numeric_date"
    )]
    nbf: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_numeric_date"
    )]
    iat: Option<u64>,
    #[serde(default)]
    sse: SseClaims,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SseClaims {
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
}

/// A JWT NumericDate: seconds since the epoch, possibly with a fraction (dropped).
fn numeric_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    if seconds.is_finite() && seconds >= 0.0 && seconds < u64::MAX as f64 {
        Ok(seconds as u64)
    } else {
        Err(serde::de::Error::custom("not a NumericDate"))
    }
}

fn optional_numeric_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    numeric_date(deserializer).map(Some)
}

fn parse_namespaces(entries: &[String], claim: &'static str) -> Result<Vec<Namespace>, TokenError> {
    entries
        .iter()
        .map(|entry| Namespace::parse(entry))
        .collect::<Result<_, _>>()
        .map_err(|_| TokenError::InvalidClaim {
            claim: claim.to_owned(),
        })
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "an unsupported algorithm",
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ns(text: &str) -> Namespace {
        Namespace::parse(text).unwrap()
    }

    fn verifier() -> Verifier {
        Verifier::new(JwtKey::hs256_secret("s3cret").unwrap(), DEFAULT_JWT_LEEWAY)
    }

    fn signed(claims: serde_json::Value, algorithm: Algorithm, secret: &[u8]) -> String {
        let key = EncodingKey::from_secret(secret).unwrap();
        jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap()
    }

    fn now() -> u64 {
        unix_seconds(SystemTime::now())
    }

    #[test]
    fn a_valid_token_grants_its_namespaces_until_exp_plus_leeway() {
        let exp = now() + 60;
        let token = signed(
            serde_json::json!({"exp": exp, "sse": {"subscribe": ["/users/42", "/public/"], "publish": ["/users/42"]}}),
            Algorithm::HS256,
            b"s3cret",
        );
        let grant = verifier().verify(&token).unwrap();
        assert_eq!(grant.subscribe, [ns("/users/42"), ns("/public")]);
        assert_eq!(grant.publish, [ns("/users/42")]);
        assert_eq!(
            grant.expires_at,
            UNIX_EPOCH + Duration::from_secs(exp) + DEFAULT_JWT_LEEWAY
        );
        assert!(grant
            .check(Action::Subscribe, &[ns("/users/42/inbox"), ns("/public")])
            .is_ok());
        let refused = grant
            .check(Action::Subscribe, &[ns("/users/42"), ns("/users/420")])
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Forbidden);
        assert!(refused.detail().contains("/users/420"), "{refused}");
        assert!(grant.check(Action::Publish, &[ns("/public")]).is_err());
    }

    #[test]
    fn every_refusal_names_its_reason() {
        let exp = now() + 60;
        let cases = [
            ("not-a-token".to_owned(), "malformed"),
            ("a.b.c".to_owned(), "malformed"),
            (
                signed(serde_json::json!({"exp": exp}), Algorithm::HS256, b"other"),
                "signature",
            ),
            (
                signed(serde_json::json!({"exp": exp}), Algorithm::HS384, b"s3cret"),
                "HS384",
            ),
            (
                signed(
                    serde_json::json!({"exp": now() - 60}),
                    Algorithm::HS256,
                    b"s3cret",
                ),
                "expired",
            ),
            (
                signed(
                    serde_json::json!({"exp": exp, "nbf": now() + 60}),
                    Algorithm::HS256,
                    b"s3cret",
                ),
                "not valid yet",
            ),
            (
                signed(
                    serde_json::json!({"exp": exp, "iat": now() + 60}),
                    Algorithm::HS256,
                    b"s3cret",
                ),
                "not valid yet",
            ),
            (
                signed(serde_json::json!({"sse": {}}), Algorithm::HS256, b"s3cret"),
                "no exp",
            ),
            (
                signed(
                    serde_json::json!({"exp": exp, "sse": {"subscribe": ["/a//b"]}}),
                    Algorithm::HS256,
                    b"s3cret",
                ),
                "sse.subscribe",
            ),
            (
                signed(
                    serde_json::json!({"exp": exp, "sse": {"publish": "/a"}}),
                    Algorithm::HS256,
                    b"s3cret",
                ),
                "malformed",
            ),
        ];
        for (token, reason) in cases {
            let error = verifier()
                .verify(&token)
                .unwrap_err()
                .into_api_error("subscribing");
            assert_eq!(error.code(), ErrorCode::Unauthorized);
            assert!(error.detail().contains(reason), "{reason}: {error}");
            assert!(!error.detail().contains("s3cret"), "never the secret");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine as _;
        let encode = |json: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
        };
        let header = encode(serde_json::json!({"alg": "none", "typ": "JWT"}));
        let claims = encode(serde_json::json!({"exp": now() + 60, "sse": {"subscribe": ["/"]}}));
        for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            let error = verifier().verify(&token).unwrap_err();
            assert!(
                matches!(error, TokenError::Malformed { .. }),
                "{token}: {error:?}"
            );
        }
    }

    #[test]
    fn the_leeway_accepts_a_token_just_expired() {
        let token = signed(
            serde_json::json!({"exp": now() - 2}),
            Algorithm::HS256,
            b"s3cret",
        );
        assert!(verifier().verify(&token).is_ok(), "within 5 s of exp");
        let strict = Verifier::new(JwtKey::hs256_secret("s3cret").unwrap(), Duration::ZERO);
        assert_eq!(strict.verify(&token).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn keys_are_refused_in_the_wrong_role_or_shape() {
        assert!(JwtKey::hs256_secret("").is_err());
        assert!(SigningKey::hs256_secret("").is_err());
        let error = JwtKey::from_public_pem(
            b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("private key"), "{error}");
        assert!(JwtKey::from_public_pem(b"not pem").is_err());
        assert!(SigningKey::from_private_pem(b"-----BEGIN PUBLIC KEY-----\n").is_err());
        let debug = format!("{:?}", JwtKey::hs256_secret("s3cret").unwrap());
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn what_the_signing_key_signs_the_verifier_accepts() {
        let token = SigningKey::hs256_secret("s3cret")
            .unwrap()
            .sign(&[ns("/a")], &[ns("/b")], Duration::from_secs(60))
            .unwrap();
        let grant = verifier().verify(&token).unwrap();
        assert_eq!(
            (grant.subscribe, grant.publish),
            (vec![ns("/a")], vec![ns("/b")])
        );
    }

    /// Verifying is what a stream pays once when it opens. Run with
    /// `cargo test --release -p sse-hyper jwt::tests::verification_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn verification_cost() {
        let token = SigningKey::hs256_secret("s3cret")
            .unwrap()
            .sign(
                &[ns("/users/42"), ns("/public")],
                &[ns("/users/42")],
                Duration::from_secs(60),
            )
            .unwrap();
        let verifier = verifier();
        let rounds = 100_000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(verifier.verify(std::hint::black_box(&token)).unwrap());
        }
        println!("HS256: {:?} per verification", started.elapsed() / rounds);
    }

    /// Namespaces built from segments that are prefixes of one another, so that near
    /// misses (`/a` against `/ab`) come up often.
    fn namespace() -> impl Strategy<Value = Namespace> {
        let segment = proptest::sample::select(vec!["a", "ab", "b", "a.b", "a-", "~"]);
        proptest::collection::vec(segment, 0..4)
            .prop_map(|segments| ns(&format!("/{}", segments.join("/"))))
    }

    proptest! {
        #[test]
        fn coverage_is_segment_wise(granted in namespace(), asked in namespace()) {
            let granted_segments: Vec<&str> = granted.segments().collect();
            let asked_segments: Vec<&str> = asked.segments().collect();
            let expected = asked_segments.starts_with(&granted_segments);
            prop_assert_eq!(covers(std::slice::from_ref(&granted), &asked), expected);
        }
    }
}
