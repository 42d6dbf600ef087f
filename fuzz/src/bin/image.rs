//! Fuzz target `image`: see `stowaway::fuzzing::image`.

fn main() {
    stowaway_fuzz::main("image", stowaway::fuzzing::image);
}
