//! The criterion results: the mean time of every benchmark criterion has saved.

use std::path::Path;

use serde_json::{json, Value};

/// Mean times of every criterion benchmark found under `dir`, in nanoseconds.
pub(super) fn criterion_results(dir: &Path) -> Value {
    let mut results = Vec::new();
    collect_criterion(dir, &mut results);
    results.sort_by(|a: &Value, b: &Value| a["id"].as_str().cmp(&b["id"].as_str()));
    Value::Array(results)
}

fn collect_criterion(dir: &Path, results: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "new") {
            let read = |name: &str| -> Option<Value> {
                serde_json::from_str(&std::fs::read_to_string(path.join(name)).ok()?).ok()
            };
            if let (Some(benchmark), Some(estimates)) =
                (read("benchmark.json"), read("estimates.json"))
            {
                results.push(json!({
                    "id": benchmark["full_id"],
                    "mean_ns": estimates["mean"]["point_estimate"],
                }));
            }
        } else if path.is_dir() {
            collect_criterion(&path, results);
        }
    }
}
