"""``python -m meter`` runs the ``meter`` command."""

import sys

from meter.cli import main

sys.exit(main())
