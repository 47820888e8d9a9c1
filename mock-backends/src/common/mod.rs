//! Pieces shared by every mock service: wire models, the deterministic seed,
//! fault injection, request statistics, JSON errors and the admin router.

pub mod error;
pub mod events;
pub mod faults;
pub mod models;
pub mod seed;
pub mod service;
pub mod stats;
pub mod time;

/// The bank name of every account the mock bank owns.
pub const OWN_BANK: &str = "Mosaic Bank";
