#!/usr/bin/env python3
"""The IoT gateway prototype (see examples/README.md); the code is in ibepsk/iot/."""

import sys

from ibepsk.iot.apps import gateway_main

if __name__ == "__main__":
    sys.exit(gateway_main())
