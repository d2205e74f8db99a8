//! Options from the config file. STUB: the real one lands on the `config` branch.
use std::fmt;
use std::path::{Path, PathBuf};

pub struct Options {
    pub engine: natrium_engine::Config,
    pub host: String,
    pub port: i32,
    pub debug: bool,
    pub trace: bool,
    pub logfile: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub jetstream: bool,
    pub store_dir: Option<PathBuf>,
    pub warnings: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            engine: natrium_engine::Config::default(),
            host: "0.0.0.0".into(),
            port: 4222,
            debug: false,
            trace: false,
            logfile: None,
            pid_file: None,
            jetstream: false,
            store_dir: None,
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct ConfigError(String);
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

pub fn load_file(path: &Path) -> Result<Options, ConfigError> {
    Err(ConfigError(format!(
        "{}: config files not supported yet",
        path.display()
    )))
}
