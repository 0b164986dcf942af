//! pg-boss's schema: installing it, checking its version, and comparing it with what it should be.

pub mod drift;
pub mod install;
pub mod migrate;
