//! Helpers for conformance tests.
