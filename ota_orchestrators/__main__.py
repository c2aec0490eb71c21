"""``python -m ota_orchestrators`` runs the ``ota`` command."""

import sys

from ota_orchestrators.cli import main

sys.exit(main())
