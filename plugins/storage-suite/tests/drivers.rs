//! The storage conformance suite (`berth-conformance`, the one `berth plugin test` runs)
//! against every first-party driver, through the ABI. Needs root (mounts, owners, device
//! nodes).

use berth_storage_suite::plugin_path;

fn conforms(driver: &str) {
    if !berth_testkit::require_root() {
        return;
    }
    let report = berth_conformance::run(&plugin_path(driver), "{}", None)
        .unwrap_or_else(|e| panic!("loading {driver}: {e}"));
    eprintln!("{}", report.table());
    assert_eq!(report.name, driver);
    assert!(report.outcomes.len() >= 7, "{}", report.table());
    assert!(report.all_passed(), "{}", report.table());
}

#[test]
fn overlayfs_passes_the_storage_suite() {
    conforms("overlayfs")
}

#[test]
fn vfs_passes_the_storage_suite() {
    conforms("vfs")
}
