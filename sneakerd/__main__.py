"""`python -m sneakerd`: the operator CLI (`sneakerd.cli.main`), as the `sneakerd` script."""

import sys

from sneakerd.cli import main

sys.exit(main())
