//! The `natrix` server binary.
fn main() {}
