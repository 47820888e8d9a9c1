//! Mosaic: a GraphQL backend-for-frontend gateway over REST services, declared in SDL.
//!
//! The pipeline reads in one direction: [`config`] (the user's files) → [`plan`] (validated,
//! compiled) → [`backend`] (the call path) → [`exec`] and [`runtime`] (the executors) → [`server`]
//! (HTTP) → [`cli`]. [`layers`] lists every module's place; a test keeps uses running down it.

pub mod auth;
pub mod backend;
pub mod cli;
pub mod coalesce;
pub mod config;
pub mod exec;
pub mod import;
pub mod layers;
pub mod plan;
pub mod redis_link;
pub mod response;
pub mod runtime;
pub mod server;
pub mod telemetry;
