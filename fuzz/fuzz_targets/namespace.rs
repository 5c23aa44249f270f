//! Namespace parsing. The input is one or two paths, separated by the first LF.
//!
//! Laws checked for any text:
//! - a namespace that parses is canonical: its text parses to itself, is `/` or
//!   `/seg(/seg)*` within the limits (segments of unreserved bytes, 1–128 bytes, never
//!   `.` or `..`, at most 32 segments and 1024 bytes);
//! - spelling it with every byte percent-escaped (upper- or lower-case hex), or with one
//!   trailing slash, gives the same namespace;
//! - depth, segments and `self_and_ancestors` agree; every ancestor contains it;
//! - `contains` is segment-prefix order, checked against the segment lists;
//! - `outermost` of the two keeps exactly those not contained in another;
//! - a refusal names a rule and its message does not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_core::{Namespace, MAX_LEN, MAX_SEGMENTS, MAX_SEGMENT_LEN};

fn is_segment_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

fn percent_escaped(namespace: &Namespace, upper: bool) -> String {
    let mut out = String::new();
    for segment in namespace.segments() {
        out.push('/');
        for byte in segment.bytes() {
            if upper {
                out.push_str(&format!("%{byte:02X}"));
            } else {
                out.push_str(&format!("%{byte:02x}"));
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn check_canonical(path: &str, namespace: &Namespace) {
    let text = namespace.as_str();
    assert_eq!(
        Namespace::parse(text).as_ref(),
        Ok(namespace),
        "canonical text of {path:?} does not parse to itself"
    );
    assert!(text.starts_with('/'));
    assert!(text.len() <= MAX_LEN);
    let segments: Vec<&str> = namespace.segments().collect();
    assert!(segments.len() <= MAX_SEGMENTS);
    assert_eq!(namespace.depth(), segments.len());
    assert_eq!(namespace.is_root(), segments.is_empty());
    if namespace.is_root() {
        assert_eq!(text, "/");
    } else {
        assert_eq!(text, format!("/{}", segments.join("/")));
    }
    for segment in &segments {
        assert!((1..=MAX_SEGMENT_LEN).contains(&segment.len()));
        assert!(*segment != "." && *segment != "..");
        assert!(segment.bytes().all(is_segment_byte), "{segment:?}");
    }
    for upper in [true, false] {
        let escaped = percent_escaped(namespace, upper);
        assert_eq!(
            Namespace::parse(&escaped).as_ref(),
            Ok(namespace),
            "{escaped:?}"
        );
    }
    if !path.ends_with('/') {
        assert_eq!(
            Namespace::parse(&format!("{path}/")).as_ref(),
            Ok(namespace),
            "one trailing slash is ignored"
        );
    }

    let ancestors: Vec<&str> = namespace.self_and_ancestors().collect();
    assert_eq!(ancestors.len(), segments.len() + 1);
    assert_eq!(ancestors.first(), Some(&text));
    assert_eq!(ancestors.last(), Some(&"/"));
    for ancestor in &ancestors {
        let ancestor = Namespace::parse(ancestor).expect("an ancestor is a namespace");
        assert!(ancestor.contains(namespace), "{ancestor} ⊉ {namespace}");
    }
}

/// `outer` contains `inner` when its segments are a prefix of `inner`'s.
fn contains_by_segments(outer: &Namespace, inner: &Namespace) -> bool {
    let outer: Vec<&str> = outer.segments().collect();
    let inner: Vec<&str> = inner.segments().collect();
    inner.starts_with(&outer)
}

fn check_pair(a: &Namespace, b: &Namespace) {
    assert_eq!(a.contains(b), contains_by_segments(a, b), "{a} ⊇ {b}?");
    assert_eq!(b.contains(a), contains_by_segments(b, a), "{b} ⊇ {a}?");
    assert_eq!(a.contains(b) && b.contains(a), a == b);
    let outer = Namespace::outermost(&[a.clone(), b.clone()]);
    let expected: Vec<&Namespace> = if a.contains(b) {
        vec![a]
    } else if b.contains(a) {
        vec![b]
    } else if a < b {
        vec![a, b]
    } else {
        vec![b, a]
    };
    assert_eq!(outer.iter().collect::<Vec<_>>(), expected);
}

fn parse_checked(path: &str) -> Option<Namespace> {
    match Namespace::parse(path) {
        Ok(namespace) => {
            check_canonical(path, &namespace);
            Some(namespace)
        }
        Err(error) => {
            assert!(!error.rule().code().is_empty());
            assert!(!error.to_string().is_empty());
            None
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let (first, second) = match text.split_once('\n') {
        Some((first, second)) => (first, Some(second)),
        None => (&*text, None),
    };
    let a = parse_checked(first);
    let b = second.and_then(parse_checked);
    if let (Some(a), Some(b)) = (&a, &b) {
        check_pair(a, b);
    }
});
