//! The catalogue through nats-py (PyPI, pinned in scripts/test and
//! natrium_conformance::clients::NATS_PY_VERSION): clients/python/scenario.py.
//! nats-py headers are a dict: repeated keys cannot be published and a
//! received repeated key keeps its last value (`headers_multi_value` checks
//! exactly that, with a raw HPUB carrying the repeated key).

use natrium_conformance::clients::*;
use natrium_conformance::*;

const LIB: ClientLib = ClientLib::Python;

include!("catalogue.rs");
