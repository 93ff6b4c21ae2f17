"""Run the command line: ``python -m stale_tokens --help``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
