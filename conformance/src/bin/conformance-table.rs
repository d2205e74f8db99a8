//! Rewrites the results table in conformance/README.md from the result files
//! the scenario tests wrote (see `natrium_conformance::results`).
//!
//! Usage: conformance-table [README path]   (default: conformance/README.md)

use natrium_conformance::results;

fn main() {
    let readme = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| natrium_conformance::workspace_dir().join("conformance/README.md"));
    let dir = results::results_dir();
    let res = results::read_results(&dir);
    if res.is_empty() {
        eprintln!(
            "conformance-table: no results in {}; run the tests first",
            dir.display()
        );
        std::process::exit(1);
    }
    let table = results::render_table(&res);
    let text = std::fs::read_to_string(&readme)
        .unwrap_or_else(|e| panic!("read {}: {e}", readme.display()));
    let Some(new) = results::replace_table(&text, &table) else {
        eprintln!(
            "conformance-table: markers {} / {} not found in {}",
            results::TABLE_START,
            results::TABLE_END,
            readme.display()
        );
        std::process::exit(1);
    };
    if new != text {
        std::fs::write(&readme, new).unwrap_or_else(|e| panic!("write {}: {e}", readme.display()));
    }
    let failed = res.values().filter(|ok| !**ok).count();
    println!(
        "conformance-table: {} results ({failed} failed) -> {}",
        res.len(),
        readme.display()
    );
}
