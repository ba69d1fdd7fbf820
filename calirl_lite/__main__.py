"""``python -m calirl_lite …`` is the same as the ``calirl`` command."""

from .cli import main

raise SystemExit(main())
