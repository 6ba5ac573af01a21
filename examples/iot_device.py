#!/usr/bin/env python3
"""The IoT device prototype (see examples/README.md); the code is in ibepsk/iot/."""

import sys

from ibepsk.iot.apps import device_main

if __name__ == "__main__":
    sys.exit(device_main())
