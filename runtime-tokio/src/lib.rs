//! Drives the natrium engine with tokio.
