import sys

from sneakerd.cli import main

sys.exit(main())
