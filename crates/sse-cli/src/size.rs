//! Sizes in bytes as people write them on a command line: `1048576`, `64MiB`, `512k`.

use std::fmt;
use std::str::FromStr;

/// A number of bytes, parsed from a plain number or a number with a unit: `B`;
/// `KiB`, `MiB`, `GiB` (or `K`, `M`, `G`) for powers of 1024; `kB`, `MB`, `GB` for powers
/// of 1000. Units ignore case; a space may separate them from the number. Displayed in
/// the largest binary unit that divides it exactly, so defaults read `64MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("kb", 1000),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("mb", 1_000_000),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("gb", 1_000_000_000),
];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (number, unit) = text.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a size: start with a number of bytes"))?;
        let unit = unit.trim().to_ascii_lowercase();
        let (_, scale) = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(|| {
                format!("{text:?}: unknown unit {unit:?}; use B, KiB, MiB, GiB, kB, MB or GB")
            })?;
        number
            .checked_mul(*scale)
            .and_then(|bytes| usize::try_from(bytes).ok())
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if bytes >= scale && bytes.is_multiple_of(scale) {
                return write!(f, "{}{unit}", bytes / scale);
            }
        }
        write!(f, "{bytes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<usize, String> {
        text.parse::<ByteSize>().map(|size| size.0)
    }

    #[test]
    fn plain_numbers_and_units_parse() {
        assert_eq!(parse("1048576"), Ok(1 << 20));
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("64 mib"), Ok(64 << 20));
        assert_eq!(parse("512k"), Ok(512 << 10));
        assert_eq!(parse("2MB"), Ok(2_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("10B"), Ok(10));
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        assert!(parse("MiB").unwrap_err().contains("start with a number"));
        assert!(parse("5 furlongs").unwrap_err().contains("unknown unit"));
        assert!(parse("-5").is_err());
        assert!(parse("99999999999GiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn display_reads_back_as_the_same_size() {
        for bytes in [0, 1, 1000, 1024, 4 << 20, 64 << 20, (1 << 30) + 1] {
            let shown = ByteSize(bytes).to_string();
            assert_eq!(parse(&shown), Ok(bytes), "{shown}");
        }
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
    }
}
