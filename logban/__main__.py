from logban.cli import main

raise SystemExit(main())
