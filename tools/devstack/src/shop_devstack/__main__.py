"""`python -m shop_devstack ...`."""

from shop_devstack.cli import main

raise SystemExit(main())
