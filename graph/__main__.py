"""``python -m graph``: the command line (see graph/cli.py)."""

import os
import sys

from graph.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
