"""Lower layers load without the higher ones: checked in a fresh interpreter, where nothing is imported yet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def modules_after(code: str) -> set[str]:
    """The ibepsk and tlslite modules a fresh interpreter has loaded after running ``code``."""
    report = "import json, sys; print(json.dumps([m for m in sys.modules if m.startswith(('ibepsk', 'tlslite'))]))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ["ibepsk.ibe", "ibepsk.keys", "ibepsk.epochs"])
def test_ibe_and_keys_load_no_tlslite(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert not {name for name in loaded if name.startswith("tlslite")}
    assert "ibepsk.tls" not in loaded


def test_top_level_names_still_import() -> None:
    loaded = modules_after("from ibepsk import TLSConnection, accelerate_tlslite; import ibepsk; ibepsk.HandshakeMode")
    assert {"ibepsk.tls", "tlslite"} <= loaded


def test_cli_help_loads_neither_tlslite_nor_the_server() -> None:
    loaded = modules_after("from ibepsk.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert "ibepsk.cli" in loaded
    assert not {name for name in loaded if name.startswith(("tlslite", "ibepsk.server", "ibepsk.aio", "ibepsk.tls"))}


@pytest.mark.parametrize("module", ["ibepsk.demo", "ibepsk.iot.gateway", "ibepsk.bench", "ibepsk.bench_tls"])
def test_demo_iot_and_bench_do_not_need_the_command_line_glue(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert not {"ibepsk.cli", "ibepsk.endpoints"} & loaded
