//! The natrium binary's library half: the NATS config file format and the mapping
//! from flags and config files to the engine's [`natrium_engine::Config`].

pub mod conf;
pub mod config;
