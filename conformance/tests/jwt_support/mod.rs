//! Operator, account and user JWTs for the conformance tests: the same
//! helpers the core's auth tests use, included from there so there is one copy.
#![allow(dead_code)]

#[path = "../../../core/tests/auth_support/jwt.rs"]
mod shared;

pub use shared::*;
