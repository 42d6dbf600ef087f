//! Fuzz target `decoders`: see `stowaway::fuzzing::decoders`.

fn main() {
    stowaway_fuzz::main("decoders", stowaway::fuzzing::decoders);
}
