"""``python -m mlbacktest``: see :mod:`mlbacktest.cli`."""

import sys

from mlbacktest.cli import main

sys.exit(main())
