//! Hierarchical namespaces: parsing, validation and segment-boundary matching.
//!
//! A namespace is an absolute path, `/` or `/seg(/seg)*`. Each segment is 1–128 bytes
//! of `A–Z a–z 0–9 - _ . ~` after percent-decoding, and is never `.` or `..`. A namespace
//! has at most [`MAX_SEGMENTS`] segments and [`MAX_LEN`] bytes. One trailing slash is
//! ignored, so `/pets/` is `/pets`.
//!
//! A subscription to `S` receives an event published to `M` when `M == S` or `M` lies
//! below `S` on a segment boundary: `/pets` contains `/pets/dogs`, never `/petsitters`.
//!
//! Because every allowed byte is an RFC 3986 "unreserved" character, the canonical text
//! of a namespace is also its URL path: it never needs escaping again.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// The most segments a namespace may have.
pub const MAX_SEGMENTS: usize = 32;
/// The most bytes one segment may have (after percent-decoding).
pub const MAX_SEGMENT_LEN: usize = 128;
/// The most bytes a whole namespace may have (after percent-decoding, slashes included).
pub const MAX_LEN: usize = 1024;

/// A validated, canonical namespace such as `/` or `/pets/cats/persian`.
///
/// Cloning is cheap (a reference count). Ordering and equality are those of the canonical
/// text.
///
/// ```
/// use sse_core::Namespace;
///
/// let pets = Namespace::parse("/pets/").unwrap();
/// assert_eq!(pets.as_str(), "/pets");
/// assert!(pets.contains(&Namespace::parse("/pets/cats/persian").unwrap()));
/// assert!(!pets.contains(&Namespace::parse("/petsitters").unwrap()));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// The root namespace `/`, which contains every other namespace.
    pub fn root() -> Namespace {
        Namespace(Arc::from("/"))
    }

    /// Parses a namespace from a URL path, percent-decoding each segment.
    ///
    /// Returns an error naming the rule broken: an empty segment (`//`), `.` or `..`, a
    /// byte outside `A–Z a–z 0–9 - _ . ~` (including an escaped `/` such as `%2F`),
    /// a malformed percent escape, or a namespace that is too long or too deep.
    pub fn parse(path: &str) -> Result<Namespace, NamespaceError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(NamespaceError::new(NamespaceRule::NotAbsolute, path));
        };
        if rest.is_empty() {
            return Ok(Namespace::root());
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            // The input was "//": an empty segment followed by the ignored trailing slash.
            return Err(NamespaceError::new(NamespaceRule::EmptySegment, path));
        }
        // Without escapes the canonical text is the input's own (less a trailing slash),
        // so it is checked in place and copied once; with them it is decoded first.
        let decoding = rest.contains('%');
        let mut decoded = String::new();
        let mut length = 0;
        for (index, raw) in rest.split('/').enumerate() {
            if index == MAX_SEGMENTS {
                return Err(NamespaceError::new(NamespaceRule::TooManySegments, path));
            }
            let segment = if decoding {
                decoded.push('/');
                let start = decoded.len();
                decode_segment(raw, &mut decoded)
                    .map_err(|rule| NamespaceError::new(rule, path))?;
                &decoded[start..]
            } else if raw.bytes().all(is_segment_byte) {
                raw
            } else {
                return Err(NamespaceError::new(NamespaceRule::InvalidCharacter, path));
            };
            if segment.is_empty() {
                return Err(NamespaceError::new(NamespaceRule::EmptySegment, path));
            }
            if segment == "." || segment == ".." {
                return Err(NamespaceError::new(NamespaceRule::DotSegment, path));
            }
            if segment.len() > MAX_SEGMENT_LEN {
                return Err(NamespaceError::new(NamespaceRule::SegmentTooLong, path));
            }
            length += 1 + segment.len();
            if length > MAX_LEN {
                return Err(NamespaceError::new(NamespaceRule::TooLong, path));
            }
        }
        let canonical = if decoding {
            decoded.as_str()
        } else {
            &path[..1 + rest.len()]
        };
        Ok(Namespace(Arc::from(canonical)))
    }

    /// The canonical text, e.g. `/pets/dogs`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root namespace `/`.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// Whether an event published to `other` reaches a subscriber of `self`: `other` is
    /// `self` or lies below it on a segment boundary.
    pub fn contains(&self, other: &Namespace) -> bool {
        contains_str(self.as_str(), other.as_str())
    }

    /// The segments, outermost first; empty for `/`.
    ///
    /// ```
    /// # use sse_core::Namespace;
    /// let ns = Namespace::parse("/pets/dogs").unwrap();
    /// assert_eq!(ns.segments().collect::<Vec<_>>(), ["pets", "dogs"]);
    /// ```
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').skip(1).filter(|s| !s.is_empty())
    }

    /// How many segments the namespace has (`/` has 0).
    pub fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.0.bytes().filter(|&b| b == b'/').count()
        }
    }

    /// The outermost of `namespaces`, sorted: duplicates and every namespace that another
    /// one contains are dropped. A subscription to the result receives exactly what a
    /// subscription to all of them would, and no event matches two of its namespaces.
    ///
    /// ```
    /// # use sse_core::Namespace;
    /// let list: Vec<Namespace> = ["/a/b", "/x", "/a", "/a"].iter().map(|s| s.parse().unwrap()).collect();
    /// let outer = Namespace::outermost(&list);
    /// assert_eq!(outer.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["/a", "/x"]);
    /// ```
    pub fn outermost(namespaces: &[Namespace]) -> Vec<Namespace> {
        let mut sorted = namespaces.to_vec();
        // Sorting puts an ancestor before its descendants ("/a" < "/a/b"), though not
        // always next to them ("/a" < "/a-b" < "/a/b"), so compare with every kept one.
        sorted.sort();
        sorted.dedup();
        let mut kept: Vec<Namespace> = Vec::with_capacity(sorted.len());
        for namespace in sorted {
            if !kept.iter().any(|outer| outer.contains(&namespace)) {
                kept.push(namespace);
            }
        }
        kept
    }

    /// The namespace itself, then each ancestor up to and including `/`, as canonical
    /// text. These are exactly the namespaces whose subscribers receive an event published
    /// here. No allocation: each item borrows from `self`.
    ///
    /// ```
    /// # use sse_core::Namespace;
    /// let ns = Namespace::parse("/pets/cats/persian").unwrap();
    /// let all: Vec<&str> = ns.self_and_ancestors().collect();
    /// assert_eq!(all, ["/pets/cats/persian", "/pets/cats", "/pets", "/"]);
    /// ```
    pub fn self_and_ancestors(&self) -> SelfAndAncestors<'_> {
        SelfAndAncestors {
            remaining: Some(self.as_str()),
        }
    }
}

/// Whether the canonical namespace `outer` contains the canonical namespace `inner`.
pub(crate) fn contains_str(outer: &str, inner: &str) -> bool {
    if outer == "/" {
        return true;
    }
    match inner.strip_prefix(outer) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Appends the percent-decoded `raw` segment to `out`, checking every decoded byte.
fn decode_segment(raw: &str, out: &mut String) -> Result<(), NamespaceRule> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
            let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(NamespaceRule::BadPercentEncoding);
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            bytes[i - 1]
        };
        if !is_segment_byte(byte) {
            return Err(NamespaceRule::InvalidCharacter);
        }
        out.push(char::from(byte));
    }
    Ok(())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn is_segment_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({:?})", &*self.0)
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Namespace {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Namespace {
    type Err = NamespaceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Namespace::parse(s)
    }
}

/// Iterator over a namespace and its ancestors; see [`Namespace::self_and_ancestors`].
#[derive(Debug, Clone)]
pub struct SelfAndAncestors<'a> {
    remaining: Option<&'a str>,
}

impl<'a> Iterator for SelfAndAncestors<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let current = self.remaining?;
        self.remaining = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(cut) => Some(&current[..cut]),
            None => None,
        };
        Some(current)
    }
}

/// The rule a rejected namespace broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NamespaceRule {
    /// It does not begin with `/`.
    NotAbsolute,
    /// It has an empty segment, as in `/a//b`.
    EmptySegment,
    /// A segment is `.` or `..`.
    DotSegment,
    /// A segment holds a byte outside `A–Z a–z 0–9 - _ . ~` (after percent-decoding).
    InvalidCharacter,
    /// A `%` is not followed by two hexadecimal digits.
    BadPercentEncoding,
    /// A segment is longer than [`MAX_SEGMENT_LEN`] bytes.
    SegmentTooLong,
    /// The namespace has more than [`MAX_SEGMENTS`] segments.
    TooManySegments,
    /// The namespace is longer than [`MAX_LEN`] bytes.
    TooLong,
}

impl NamespaceRule {
    /// A stable machine-readable name for the rule, e.g. `empty_segment`.
    pub fn code(self) -> &'static str {
        match self {
            NamespaceRule::NotAbsolute => "not_absolute",
            NamespaceRule::EmptySegment => "empty_segment",
            NamespaceRule::DotSegment => "dot_segment",
            NamespaceRule::InvalidCharacter => "invalid_character",
            NamespaceRule::BadPercentEncoding => "bad_percent_encoding",
            NamespaceRule::SegmentTooLong => "segment_too_long",
            NamespaceRule::TooManySegments => "too_many_segments",
            NamespaceRule::TooLong => "too_long",
        }
    }

    /// A sentence a person can act on.
    pub fn description(self) -> String {
        match self {
            NamespaceRule::NotAbsolute => "a namespace must begin with '/'".into(),
            NamespaceRule::EmptySegment => {
                "a namespace may not contain an empty segment ('//')".into()
            }
            NamespaceRule::DotSegment => "a namespace segment may not be '.' or '..'".into(),
            NamespaceRule::InvalidCharacter => {
                "a namespace segment may only contain A-Z a-z 0-9 - _ . ~ (after percent-decoding)"
                    .into()
            }
            NamespaceRule::BadPercentEncoding => {
                "a '%' in a namespace must be followed by two hexadecimal digits".into()
            }
            NamespaceRule::SegmentTooLong => {
                format!("a namespace segment may be at most {MAX_SEGMENT_LEN} bytes long")
            }
            NamespaceRule::TooManySegments => {
                format!("a namespace may have at most {MAX_SEGMENTS} segments")
            }
            NamespaceRule::TooLong => format!("a namespace may be at most {MAX_LEN} bytes long"),
        }
    }
}

/// A namespace was rejected; says which rule was broken and by what input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceError {
    rule: NamespaceRule,
    input: String,
}

impl NamespaceError {
    fn new(rule: NamespaceRule, input: &str) -> NamespaceError {
        // Keep error messages bounded even for absurd inputs.
        const SHOWN: usize = 200;
        let input = match input.char_indices().nth(SHOWN) {
            Some((cut, _)) => format!("{}...", &input[..cut]),
            None => input.to_owned(),
        };
        NamespaceError { rule, input }
    }

    /// The rule that was broken.
    pub fn rule(&self) -> NamespaceRule {
        self.rule
    }

    /// The rejected input (shortened when very long).
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for NamespaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid namespace {:?}: {}",
            self.input,
            self.rule.description()
        )
    }
}

impl std::error::Error for NamespaceError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::parse(s).unwrap()
    }

    fn rule_of(s: &str) -> NamespaceRule {
        Namespace::parse(s).unwrap_err().rule()
    }

    #[test]
    fn root_forms_are_all_root() {
        assert_eq!(ns("/").as_str(), "/");
        assert!(ns("/").is_root());
        assert_eq!(ns("/").depth(), 0);
    }

    #[test]
    fn one_trailing_slash_is_ignored() {
        assert_eq!(ns("/pets/"), ns("/pets"));
        assert_eq!(rule_of("/pets//"), NamespaceRule::EmptySegment);
        assert_eq!(rule_of("//"), NamespaceRule::EmptySegment);
    }

    #[test]
    fn every_allowed_character_is_accepted() {
        let all = "/ABCXYZabcxyz0189-_.~";
        assert_eq!(ns(all).as_str(), all);
    }

    #[test]
    fn percent_escapes_of_allowed_characters_decode_to_canonical_text() {
        assert_eq!(ns("/p%65ts/%7Ex").as_str(), "/pets/~x");
        assert_eq!(ns("/p%65ts"), ns("/pets"));
    }

    #[test]
    fn each_rule_is_named_when_broken() {
        assert_eq!(rule_of(""), NamespaceRule::NotAbsolute);
        assert_eq!(rule_of("pets"), NamespaceRule::NotAbsolute);
        assert_eq!(rule_of("/a//b"), NamespaceRule::EmptySegment);
        assert_eq!(rule_of("/a/./b"), NamespaceRule::DotSegment);
        assert_eq!(rule_of("/a/.."), NamespaceRule::DotSegment);
        assert_eq!(rule_of("/a/%2e%2E"), NamespaceRule::DotSegment);
        assert_eq!(rule_of("/a%2Fb"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/a%2fb"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/a b"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/a\nb"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/a%00"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/caf\u{e9}"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/caf%C3%A9"), NamespaceRule::InvalidCharacter);
        assert_eq!(rule_of("/a%2"), NamespaceRule::BadPercentEncoding);
        assert_eq!(rule_of("/a%zz"), NamespaceRule::BadPercentEncoding);
        assert_eq!(rule_of("/a?b"), NamespaceRule::InvalidCharacter);
    }

    #[test]
    fn segment_length_limit_is_128_bytes() {
        let ok = format!("/{}", "a".repeat(MAX_SEGMENT_LEN));
        assert!(Namespace::parse(&ok).is_ok());
        let long = format!("/{}", "a".repeat(MAX_SEGMENT_LEN + 1));
        assert_eq!(rule_of(&long), NamespaceRule::SegmentTooLong);
        // The limit applies after decoding: 128 escaped bytes are fine.
        let escaped = format!("/{}", "%61".repeat(MAX_SEGMENT_LEN));
        assert!(Namespace::parse(&escaped).is_ok());
    }

    #[test]
    fn depth_limit_is_32_segments() {
        let ok = "/a".repeat(MAX_SEGMENTS);
        assert_eq!(ns(&ok).depth(), MAX_SEGMENTS);
        let deep = "/a".repeat(MAX_SEGMENTS + 1);
        assert_eq!(rule_of(&deep), NamespaceRule::TooManySegments);
    }

    #[test]
    fn total_length_limit_is_1024_bytes() {
        // 8 segments of 127 bytes plus slashes = 1024 bytes exactly.
        let seg = "b".repeat(127);
        let ok = format!("/{seg}").repeat(8);
        assert_eq!(ok.len(), MAX_LEN);
        assert!(Namespace::parse(&ok).is_ok());
        let long = format!("{ok}/c");
        assert_eq!(rule_of(&long), NamespaceRule::TooLong);
    }

    #[test]
    fn subscriber_of_parent_receives_child_but_not_sibling_prefix() {
        assert!(ns("/pets").contains(&ns("/pets")));
        assert!(ns("/pets").contains(&ns("/pets/dogs")));
        assert!(ns("/pets").contains(&ns("/pets/cats/persian")));
        assert!(!ns("/pets").contains(&ns("/petsitters")));
        assert!(!ns("/pets/dogs").contains(&ns("/pets")));
        assert!(ns("/").contains(&ns("/anything/at/all")));
    }

    #[test]
    fn ancestors_end_at_root() {
        assert_eq!(ns("/").self_and_ancestors().collect::<Vec<_>>(), ["/"]);
        assert_eq!(
            ns("/a").self_and_ancestors().collect::<Vec<_>>(),
            ["/a", "/"]
        );
    }

    #[test]
    fn error_message_names_input_and_rule() {
        let err = Namespace::parse("/a//b").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/a//b"), "{text}");
        assert!(text.contains("empty segment"), "{text}");
        assert_eq!(err.rule().code(), "empty_segment");
    }

    #[test]
    fn error_for_huge_input_is_bounded() {
        let huge = format!("/{}", "a".repeat(100_000));
        let err = Namespace::parse(&huge).unwrap_err();
        assert!(err.to_string().len() < 400);
    }
}
