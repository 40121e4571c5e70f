"""``python -m latentgeo.cli``."""

import sys

from latentgeo.cli import main

if __name__ == "__main__":
    sys.exit(main())
