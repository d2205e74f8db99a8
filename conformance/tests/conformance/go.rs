//! The catalogue through nats.go 1.22 (Debian golang-github-nats-io-go-nats-dev):
//! clients/go/src/natrium-conformance/scenario/main.go.

use natrium_conformance::clients::*;
use natrium_conformance::*;

const LIB: ClientLib = ClientLib::Go;

include!("catalogue.rs");
