//! The fuzz targets' inputs replayed with the suite: every file of `fuzz/regressions/<target>/`
//! (inputs that once crashed a target, kept once fixed) and of `fuzz/corpus/<target>/` (the
//! seeds) through the target's function in `stowaway::fuzzing`, built plainly. A regression
//! that comes back fails here, without AFL++ or the fuzz crate's instrumented build.

use std::path::Path;

#[test]
fn every_fuzz_regression_and_seed_runs_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    stowaway::fuzzing::warm_up();
    let mut failures = Vec::new();
    for &(name, target) in stowaway::fuzzing::TARGETS {
        let dirs = [
            fuzz.join("regressions").join(name),
            fuzz.join("corpus").join(name),
        ];
        let replayed = stowaway::fuzzing::replay(target, &dirs).unwrap();
        assert!(replayed.inputs > 0, "no seed for the fuzz target {name}");
        failures.extend(replayed.panicked);
    }
    assert!(failures.is_empty(), "fuzz inputs that panic: {failures:?}");
}
