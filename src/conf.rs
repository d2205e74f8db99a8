//! NATS config file format. STUB: lands on the `config` branch.
