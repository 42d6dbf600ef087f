//! Fuzz target `yaml`: see `stowaway::fuzzing::yaml_values`.

fn main() {
    stowaway_fuzz::main("yaml", stowaway::fuzzing::yaml_values);
}
