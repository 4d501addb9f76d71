from movinet_pi.cli import main

raise SystemExit(main())
