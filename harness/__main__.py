"""``python -m planrun``."""

from planrun.cli import console_main

raise SystemExit(console_main())
