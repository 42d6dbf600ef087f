//! Fuzz target `admission`: see `stowaway::fuzzing::admission_review`.

fn main() {
    stowaway_fuzz::main("admission", stowaway::fuzzing::admission_review);
}
