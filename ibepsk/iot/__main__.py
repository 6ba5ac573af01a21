"""``python -m ibepsk.iot {device,gateway,provision} ...``: the IoT prototypes' command lines."""

import sys

from .apps import MAINS

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MAINS:
        print(f"usage: python -m ibepsk.iot {{{','.join(MAINS)}}} ...", file=sys.stderr)
        sys.exit(2)
    sys.exit(MAINS[sys.argv[1]](sys.argv[2:]))
