//! Names the commit in `ssectl --version`: sets `SSECTL_VERSION` to the package version
//! followed by the short commit id, with `-dirty` when tracked files had changes when the
//! script ran, e.g. `0.1.0 (a202581-dirty)`. Outside a git checkout (a source archive, no `git`
//! installed) it is the package version alone.
//!
//! Cargo runs this again when the checkout's `HEAD`, the branch it points to, the packed
//! refs or the index change (a commit, a checkout, `git add`), so the version follows the
//! commit being built.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let version = match commit(&manifest_dir) {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=SSECTL_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
    for path in git_files_to_watch(&manifest_dir) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Runs `git` in `dir`; its trimmed standard output, or `None` when it fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned())
}

/// The short commit id, with `-dirty` when tracked files differ from it.
fn commit(dir: &Path) -> Option<String> {
    let id = git(dir, &["rev-parse", "--short", "HEAD"])?;
    if id.is_empty() {
        return None;
    }
    // Without optional locks `git status` does not rewrite the index, which would make
    // Cargo run this script again on every build.
    let changes = git(
        dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    );
    Some(match changes {
        Some(changes) if !changes.is_empty() => format!("{id}-dirty"),
        _ => id,
    })
}

/// The files whose change means another commit (or another state of the index): `HEAD`,
/// the ref it names, `packed-refs` and `index`. Only those that exist: Cargo would run
/// the script on every build for a missing one.
fn git_files_to_watch(dir: &Path) -> Vec<PathBuf> {
    let absolute = |path: String| {
        let path = PathBuf::from(path);
        if path.is_absolute() {
            path
        } else {
            dir.join(path)
        }
    };
    let Some(git_dir) = git(dir, &["rev-parse", "--git-dir"]).map(absolute) else {
        return Vec::new();
    };
    let common_dir = git(dir, &["rev-parse", "--git-common-dir"])
        .map(absolute)
        .unwrap_or_else(|| git_dir.clone());
    let mut paths = vec![
        git_dir.join("HEAD"),
        git_dir.join("index"),
        common_dir.join("packed-refs"),
    ];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(common_dir.join(branch));
    }
    paths.retain(|path| path.exists());
    paths
}
