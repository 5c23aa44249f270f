//! Property tests: what the encoder writes, a conforming decoder reads back exactly; and
//! namespace matching and parsing obey their laws.

use proptest::prelude::*;
use sse_core::{Decoder, Event, EventError, Namespace};

/// Text with plenty of line breaks, spaces, NULs, colons and non-ASCII characters.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\r".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just(" ".to_owned()),
            Just(":".to_owned()),
            Just("\0".to_owned()),
            Just("data: x".to_owned()),
            Just("\u{FEFF}".to_owned()),
            any::<char>().prop_map(String::from),
            "[a-z]{1,8}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// What a client reads back for data written with any mix of line breaks: the lines
/// joined with LF.
fn normalise_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z]{1,3}"
}

fn namespace() -> impl Strategy<Value = Namespace> {
    prop::collection::vec(segment(), 0..5).prop_map(|segs| {
        let text: String = segs.iter().map(|s| format!("/{s}")).collect();
        Namespace::parse(if text.is_empty() { "/" } else { &text }).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The same namespace spelled with and without percent-escapes parses alike: to the
    /// same canonical text, or to the same broken rule.
    #[test]
    fn escaped_and_plain_spellings_of_a_namespace_parse_alike(
        segments in prop::collection::vec("[a-zA-Z0-9._~ !%-]{0,140}", 0..36),
        trailing_slash: bool,
        escape_mask: u64,
    ) {
        let mut plain = format!("/{}", segments.join("/"));
        if trailing_slash {
            plain.push('/');
        }
        let plain = plain.replace('%', "!");
        let escaped: String = plain
            .bytes()
            .enumerate()
            .map(|(i, byte)| {
                if byte != b'/' && escape_mask & (1 << (i % 64)) != 0 {
                    format!("%{byte:02X}")
                } else {
                    char::from(byte).to_string()
                }
            })
            .collect();
        let outcome = |text: &str| Namespace::parse(text).map_err(|e| e.rule());
        prop_assert_eq!(outcome(&plain), outcome(&escaped), "{} vs {}", plain, escaped);
    }

    #[test]
    fn encoded_event_decodes_to_the_same_fields(
        data in tricky_text(),
        event in tricky_text(),
        id in tricky_text(),
        retry in proptest::option::of(any::<u64>()),
        split in any::<prop::sample::Index>(),
    ) {
        let mut outgoing = Event::new(data.clone()).with_event(event.clone()).with_id(id.clone());
        if let Some(retry) = retry {
            outgoing = outgoing.with_retry(retry);
        }
        match outgoing.encode() {
            Err(EventError::InvalidEventType) => prop_assert!(event.contains(['\r', '\n'])),
            Err(EventError::InvalidId) => prop_assert!(id.contains(['\r', '\n', '\0'])),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            Ok(encoded) => {
                let bytes = encoded.as_bytes();
                // Fed in two arbitrary reads: the decoder must not care where reads split.
                let (a, b) = bytes.split_at(split.index(bytes.len() + 1));
                let mut decoder = Decoder::new();
                let mut events = decoder.decode(a).unwrap();
                events.extend(decoder.decode(b).unwrap());
                prop_assert_eq!(events.len(), 1, "exactly one event, no injected ones");
                let decoded = &events[0];
                prop_assert_eq!(&decoded.data, &normalise_line_breaks(&data));
                let expected_type = if event.is_empty() { "message" } else { event.as_str() };
                prop_assert_eq!(decoded.event_type.as_str(), expected_type);
                prop_assert_eq!(&decoded.last_event_id, &id);
                prop_assert_eq!(decoder.retry(), retry);
            }
        }
    }

    #[test]
    fn a_stream_of_encoded_events_decodes_event_by_event(
        payloads in prop::collection::vec(tricky_text(), 1..8),
        chunk in 1usize..64,
    ) {
        let mut stream = Vec::new();
        for (i, data) in payloads.iter().enumerate() {
            let event = Event::new(data.clone()).with_id(i.to_string()).encode().unwrap();
            stream.extend_from_slice(event.as_bytes());
        }
        let mut decoder = Decoder::new();
        let mut events = Vec::new();
        for piece in stream.chunks(chunk) {
            events.extend(decoder.decode(piece).unwrap());
        }
        prop_assert_eq!(events.len(), payloads.len());
        for (i, (event, data)) in events.iter().zip(&payloads).enumerate() {
            prop_assert_eq!(&event.data, &normalise_line_breaks(data));
            prop_assert_eq!(event.last_event_id.clone(), i.to_string());
        }
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut decoder = Decoder::new().with_max_event_size(256);
        let _ = decoder.decode(&bytes);
    }

    #[test]
    fn namespace_parse_never_panics(text in "\\PC{0,64}|[/%.a-z2F]{0,32}") {
        let _ = Namespace::parse(&text);
    }

    #[test]
    fn canonical_text_reparses_to_the_same_namespace(ns in namespace()) {
        prop_assert_eq!(Namespace::parse(ns.as_str()).unwrap(), ns.clone());
        let with_slash = format!("{}/", ns.as_str());
        if !ns.is_root() {
            prop_assert_eq!(Namespace::parse(&with_slash).unwrap(), ns);
        }
    }

    #[test]
    fn containment_is_reflexive_antisymmetric_and_transitive(
        a in namespace(), b in namespace(), c in namespace()
    ) {
        prop_assert!(a.contains(&a));
        if a.contains(&b) && b.contains(&a) {
            prop_assert_eq!(&a, &b);
        }
        if a.contains(&b) && b.contains(&c) {
            prop_assert!(a.contains(&c));
        }
    }

    #[test]
    fn containment_is_exactly_being_an_ancestor(a in namespace(), b in namespace()) {
        let is_ancestor = b.self_and_ancestors().any(|anc| anc == a.as_str());
        prop_assert_eq!(a.contains(&b), is_ancestor);
        prop_assert!(Namespace::root().contains(&b));
    }

    #[test]
    fn segment_prefix_is_not_containment(seg in segment(), suffix in "[a-z]{1,3}") {
        let short = Namespace::parse(&format!("/{seg}")).unwrap();
        let longer = Namespace::parse(&format!("/{seg}{suffix}")).unwrap();
        prop_assert!(!short.contains(&longer));
        prop_assert!(!longer.contains(&short));
    }

    #[test]
    fn two_namespaces_containing_a_third_are_nested(a in namespace(), b in namespace(), m in namespace()) {
        // The law that lets the hub deliver each event to a subscription at most once.
        if a.contains(&m) && b.contains(&m) {
            prop_assert!(a.contains(&b) || b.contains(&a));
        }
    }
}
