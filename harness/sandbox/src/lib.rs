//! Sandbox tier: checks a rendered configuration with the real programs. See issue 4.
