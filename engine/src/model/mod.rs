//! What callers ask for, typed: options and requests parsed and validated once, here.

pub mod options;
pub mod queue;
