"""``python -m ota_orchestrators.simulated_device CONFIG.json [--kill-at POINT] [--pause-at POINT]``."""

import sys

from ota_orchestrators.simulated_device import main

sys.exit(main())
