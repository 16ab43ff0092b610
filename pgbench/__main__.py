from pgbench.cli import main

raise SystemExit(main())
