"""``python -m mlbacktest``: the ``mlbacktest`` command (see :mod:`mlbacktest.cli`)."""

import sys

from mlbacktest.cli import main

if __name__ == "__main__":
    sys.exit(main())
