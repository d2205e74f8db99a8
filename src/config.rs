//! Options from the config file. STUB: lands on the `config` branch.
