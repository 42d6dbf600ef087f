//! Fuzz target `manifest`: see `stowaway::fuzzing::manifest`.

fn main() {
    stowaway_fuzz::main("manifest", stowaway::fuzzing::manifest);
}
