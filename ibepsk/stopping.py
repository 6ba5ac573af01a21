"""How a server stops, and how a connection ends: shared by ``ibepsk serve`` (threaded and asyncio), the IoT
gateway, ``ibepsk.asyncio`` and their --help (which must stay light)."""

#: Seconds an ending connection waits for its peer: for its close_notify (or EOF) after sending ours, or, after an
#: alert, until it has closed (what it still sends is read and dropped, so that it reads the alert, not a reset).
CLOSE_TIMEOUT = 5.0

#: How long a stopping server lets connections in progress finish before it cuts them off.
SHUTDOWN_GRACE_SECONDS = 5.0
#: What --help says about stopping a server.
STOPPING_HELP = (
    f"Ctrl-C or SIGTERM stops it: it stops listening and gives connections in progress "
    f"{SHUTDOWN_GRACE_SECONDS:g} seconds to finish before cutting them off."
)
