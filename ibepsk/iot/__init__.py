"""IoT prototypes on ibepsk: a device that sends readings over IBE-PSK + 0-RTT and authenticates after the
handshake with a certificate (its key in a file or a PKCS#11 token), and a gateway that serves many of them.

See docs/iot.md and examples/README.md.
"""

from .device import Delivery, Device, DeviceConfig, GatewayUnreachableError, RetryPolicy
from .gateway import Gateway, GatewayConfig, GatewayStats
from .protocol import Ack, Reading
from .queue import ReadingQueue
from .store import ReadingStore

__all__ = [
    "Ack",
    "Delivery",
    "Device",
    "DeviceConfig",
    "Gateway",
    "GatewayConfig",
    "GatewayStats",
    "GatewayUnreachableError",
    "Reading",
    "ReadingQueue",
    "ReadingStore",
    "RetryPolicy",
]
