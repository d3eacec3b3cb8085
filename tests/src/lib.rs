//! Helpers shared by the workspace acceptance scenarios in `tests/tests/`.
