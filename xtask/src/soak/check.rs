//! A soak check: one stated property of the server and whether a run found it to hold.

use serde::Serialize;

/// One stated property of the server and whether this run found it to hold.
#[derive(Debug, Serialize)]
pub(super) struct Check {
    pub(super) name: String,
    pub(super) passed: bool,
    /// What was measured.
    pub(super) detail: String,
}

impl Check {
    pub(super) fn new(name: &str, passed: bool, detail: String) -> Check {
        Check {
            name: name.to_owned(),
            passed,
            detail,
        }
    }
}
