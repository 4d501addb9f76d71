"""``python -m movinet_pi``: the same as the ``movinet-pi`` command."""

from movinet_pi.cli import main

raise SystemExit(main())
