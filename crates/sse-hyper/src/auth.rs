//! Static bearer tokens: where a request carries one, and comparing it with the
//! configured token without leaking either through timing.

use http::{header, HeaderMap, HeaderValue};
use subtle::{ConstantTimeEq, ConstantTimeLess};

/// The value of a request's (first) `Authorization` header.
pub(crate) fn authorization(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
}

/// The token of an `Authorization: Bearer <token>` header, given its value. The scheme
/// is matched without regard to case (RFC 9110 §11.1); anything else, or no header,
/// gives `None`.
pub(crate) fn bearer_token(authorization: Option<&[u8]>) -> Option<&[u8]> {
    let (scheme, token) = authorization?.split_at_checked(b"Bearer ".len())?;
    scheme
        .eq_ignore_ascii_case(b"Bearer ")
        .then(|| token.trim_ascii())
        .filter(|token| !token.is_empty())
}

/// Whether `given` equals `expected`, in time that depends on the length of `given` only:
/// neither the token nor its length can be learned by timing many guesses.
pub(crate) fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let same_length = (given.len() as u64).ct_eq(&(expected.len() as u64));
    // Compare every given byte against the expected token repeated: the loop runs as
    // long as the guess, whatever the token's length.
    let mut same_bytes = subtle::Choice::from(1);
    for (index, byte) in given.iter().enumerate() {
        same_bytes &= byte.ct_eq(&expected[index % expected.len()]);
    }
    // An empty guess compares no bytes; the length check already refuses it.
    let non_empty = 0u64.ct_lt(&(given.len() as u64));
    bool::from(same_length & same_bytes & non_empty)
}

/// Whether an `Authorization` header's value carries `expected` as its bearer token.
pub(crate) fn bearer_matches(authorization: Option<&[u8]>, expected: &str) -> bool {
    bearer_token(authorization).is_some_and(|given| token_matches(given, expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &'static str) -> Option<&'static [u8]> {
        Some(value.as_bytes())
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR t0k"] {
            assert!(bearer_matches(with_authorization(value), "t0k"), "{value}");
        }
        assert!(!bearer_matches(with_authorization("Basic t0k"), "t0k"));
        assert!(!bearer_matches(with_authorization("Bearer"), "t0k"));
        assert!(!bearer_matches(with_authorization("Bearer "), "t0k"));
        assert!(!bearer_matches(authorization(&HeaderMap::new()), "t0k"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert!(bearer_matches(authorization(&headers), "t0k"));
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches(b"t0k", b"t0k"));
        assert!(!token_matches(b"t0", b"t0k"));
        assert!(
            !token_matches(b"t0kt0k", b"t0k"),
            "a repetition is not the token"
        );
        assert!(!token_matches(b"t0kx", b"t0k"));
        assert!(!token_matches(b"T0K", b"t0k"));
        assert!(!token_matches(b"", b"t0k"));
        assert!(!token_matches(b"", b""), "an empty token matches nothing");
    }
}
