//! Writing small JSON answers directly into bytes, for the replies on hot paths (a
//! single publish), where building them through a serializer costs more than the rest
//! of the answer. The output is byte for byte what `serde_json` writes for the same
//! values, so clients see no difference.

/// Appends `text` as a JSON string (quoted and escaped as `serde_json` escapes it:
/// `"`, `\` and control characters; everything else, non-ASCII included, as is).
pub(crate) fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    // Ids and namespaces nearly never need an escape: one quick scan settles it.
    if !bytes.iter().any(|&byte| needs_escape(byte)) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain_from = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0x00..=0x1F => &[],
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain_from..at]);
        plain_from = at + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xF)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Appends `number` in decimal, as JSON writes an unsigned integer (and HTTP a length).
pub(crate) fn push_unsigned(out: &mut Vec<u8>, number: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> String {
        let mut out = Vec::new();
        push_string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let every_ascii: String = (0u8..=0x7F).map(char::from).collect();
        for text in [
            "",
            "plain",
            "/pets/dogs",
            "quote \" and \\ backslash",
            "\u{1}\u{1f}\u{7f}",
            "tab\there, bell\u{7}",
            "é, ü, 日本, 🐕",
            "\"",
            "ends with \\",
            &every_ascii,
        ] {
            assert_eq!(
                string(text),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for number in [0, 7, 10, 99, 100, 4096, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            push_unsigned(&mut out, number);
            assert_eq!(out, number.to_string().as_bytes());
        }
    }
}
