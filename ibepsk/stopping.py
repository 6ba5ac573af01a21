"""How a server stops: shared by ``ibepsk serve``, the IoT gateway and their --help (which must stay light)."""

#: How long a stopping server lets connections in progress finish before it cuts them off.
SHUTDOWN_GRACE_SECONDS = 5.0
#: What --help says about stopping a server.
STOPPING_HELP = (
    f"Ctrl-C or SIGTERM stops it: it stops listening and gives connections in progress "
    f"{SHUTDOWN_GRACE_SECONDS:g} seconds to finish before cutting them off."
)
