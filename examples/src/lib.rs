//! Shared helpers for the workspace examples (see `examples/examples/`).
