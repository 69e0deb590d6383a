"""`python -m hpstore`: the same as the `hpstore` command."""

from hpstore.cli import main

raise SystemExit(main())
