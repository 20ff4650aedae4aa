"""Fixtures for planrun's own tests (the ``planrunner`` fixture lives in planrun.testing)."""

pytest_plugins = ["planrun.testing"]
