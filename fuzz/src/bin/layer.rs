//! Fuzz target `layer`: see `stowaway::fuzzing::layer`.

fn main() {
    stowaway_fuzz::main("layer", stowaway::fuzzing::layer);
}
