#!/usr/bin/env python3
"""Provisioning for the IoT prototypes: a device CA, gateway and device configurations (examples/README.md)."""

import sys

from ibepsk.iot.apps import provision_main

if __name__ == "__main__":
    sys.exit(provision_main())
