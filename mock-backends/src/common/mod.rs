//! Pieces shared by every mock service: wire models, the deterministic seed,
//! fault injection, request statistics, JSON errors, the admin router, the
//! event bus, cuttable connections and traces.

pub mod bus;
pub mod conn;
pub mod error;
pub mod events;
pub mod faults;
pub mod models;
pub mod seed;
pub mod service;
pub mod stats;
pub mod time;
pub mod traces;

/// The bank name of every account the mock bank owns.
pub const OWN_BANK: &str = "Mosaic Bank";
