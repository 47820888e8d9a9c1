//! Mosaic: a GraphQL backend-for-frontend gateway over REST services, declared in SDL.
//!
//! The pipeline reads in one direction: [`config`] (the user's files) → [`plan`] (validated,
//! compiled) → runtime (schema and executors) → [`backend`] calls → response.

pub mod backend;
pub mod cli;
pub mod coalesce;
pub mod config;
pub mod exec;
pub mod plan;
pub mod redis_link;
pub mod response;
pub mod runtime;
pub mod server;
pub mod telemetry;
