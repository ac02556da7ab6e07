//! The `postured` binary (wired to the CLI once the library is complete).
fn main() {}
