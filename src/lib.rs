//! The natrium binary's library half: command-line flags, the NATS config file
//! format, the mapping from both to the engine's [`natrium_engine::Config`], and
//! nats-server-style logging.

pub mod cli;
pub mod conf;
pub mod config;
pub mod logging;
