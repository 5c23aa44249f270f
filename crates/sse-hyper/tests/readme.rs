//! The README's table of error codes is the API's: every [`ErrorCode`] has its row with
//! its status, and the table names no code the API does not have.

use sse_hyper::ErrorCode;

const README: &str = include_str!("../../../README.md");

/// The `(status, code)` pairs of the README's error table: rows of the form
/// "| `400` | `invalid_namespace` | ... |".
fn table_rows() -> Vec<(u16, String)> {
    README
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let status = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let code = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let status = status.parse().ok()?;
            code.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
                .then(|| (status, code.to_owned()))
        })
        .collect()
}

#[test]
fn the_readme_lists_every_error_code_with_its_status() {
    let rows = table_rows();
    for code in ErrorCode::ALL {
        assert!(
            rows.contains(&(code.status().as_u16(), code.as_str().to_owned())),
            "README.md's error table lacks the row | `{}` | `{code}` |",
            code.status().as_u16()
        );
    }
}

#[test]
fn the_readme_lists_no_code_the_api_lacks() {
    let rows = table_rows();
    assert!(!rows.is_empty(), "README.md has no error table");
    for (status, code) in rows {
        assert!(
            ErrorCode::ALL
                .iter()
                .any(|c| c.as_str() == code && c.status().as_u16() == status),
            "README.md lists `{status}` `{code}`, which the API does not answer"
        );
    }
}
