//! The criterion results: the mean time of every benchmark criterion has saved.

use std::path::Path;

use serde::Deserialize;

use super::report::CriterionMean;

/// The part of criterion's `benchmark.json` the report uses.
#[derive(Deserialize)]
struct BenchmarkFile {
    full_id: String,
}

/// The part of criterion's `estimates.json` the report uses.
#[derive(Deserialize)]
struct EstimatesFile {
    mean: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Mean times of every criterion benchmark found under `dir`, sorted by id. Benchmarks
/// whose files are missing or unreadable are left out.
pub(super) fn criterion_results(dir: &Path) -> Vec<CriterionMean> {
    let mut results = Vec::new();
    collect_criterion(dir, &mut results);
    results.sort_by(|a, b| a.id.cmp(&b.id));
    results
}

fn collect_criterion(dir: &Path, results: &mut Vec<CriterionMean>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(mean) = read_mean(&path) {
                results.push(mean);
            }
        } else if path.is_dir() {
            collect_criterion(&path, results);
        }
    }
}

/// The mean of the benchmark whose latest results are in `new_dir`.
fn read_mean(new_dir: &Path) -> Option<CriterionMean> {
    let benchmark: BenchmarkFile = read_json(&new_dir.join("benchmark.json"))?;
    let estimates: EstimatesFile = read_json(&new_dir.join("estimates.json"))?;
    Some(CriterionMean {
        id: benchmark.full_id,
        mean_ns: estimates.mean.point_estimate,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}
