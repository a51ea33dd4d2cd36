//! Deterministic simulator and checkers (being written).
