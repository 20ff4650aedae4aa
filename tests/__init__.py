"""planrun test suite."""
