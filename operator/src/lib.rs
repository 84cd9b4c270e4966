//! The Room operator. Not built yet (see the operator issue).
#![forbid(unsafe_code)]
