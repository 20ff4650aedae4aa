"""``python -m planrun``."""

from planrun.console import script

script()
