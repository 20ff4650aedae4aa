"""``python -m planrun``."""

from planrun.cli import script

script()
