//! Fuzz target `detector`: see `stowaway::fuzzing::detector`.

fn main() {
    stowaway_fuzz::main("detector", stowaway::fuzzing::detector);
}
