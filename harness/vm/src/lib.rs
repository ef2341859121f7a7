//! VM tier runner: builds a flake's VM checks on a bounded pool. See issue 5.
