"""``python -m cec.cli``: the same as the ``cec`` console script."""

from __future__ import annotations

import sys

from cec.cli import main

sys.exit(main())
