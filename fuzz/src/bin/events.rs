//! Fuzz target `events`: see `stowaway::fuzzing::registry_event`.

fn main() {
    stowaway_fuzz::main("events", stowaway::fuzzing::registry_event);
}
