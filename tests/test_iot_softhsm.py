"""The IoT device with its key in a SoftHSM2 token: provisioned into the token, signing there, as processes.

The device and provisioning run as processes with their own ``SOFTHSM2_CONF``
(SoftHSM2 reads it once per process), so this test never loads the module in
the test process and cannot disturb the in-process PKCS#11 tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ibepsk.iot.config import DEFAULT_PIN_VARIABLE
from ibepsk.iot.store import ReadingStore

from iot_support import GATEWAY_NAME, GatewayProcess, provision_factory, run_example
from softhsm_support import USER_PIN, init_token, softhsm_module

TOKEN = "ibepsk-iot-device"
KEY_LABEL = "device-p256"


@pytest.fixture()
def token_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh SoftHSM2 token directory; the environment the device's processes run with."""
    softhsm_module()  # skips, or fails under CI, when SoftHSM2 or python-pkcs11 is missing
    (tmp_path / "tokens").mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(config))
    init_token(TOKEN)
    return {**os.environ, "SOFTHSM2_CONF": str(config), DEFAULT_PIN_VARIABLE: USER_PIN}


def test_device_key_generated_in_the_token_answers_pha(tmp_path: Path, token_environment: dict[str, str]) -> None:
    factory = tmp_path / "factory"
    provision_factory(factory)
    gateway = GatewayProcess(factory / "gateway.toml")
    try:
        provisioned = run_example(
            "provision.py", "device", str(factory), "sensor-hsm",
            "--gateway", f"127.0.0.1:{gateway.port}", "--gateway-name", GATEWAY_NAME,
            "--pkcs11-module", str(softhsm_module()), "--token", TOKEN, "--key-label", KEY_LABEL,
            env=token_environment,
        )  # fmt: skip
        assert provisioned.returncode == 0, provisioned.stderr
        assert not (factory / "sensor-hsm.key").exists(), "the private key exists only inside the token"
        config = factory / "sensor-hsm.toml"
        wrong_pin = run_example(
            "iot_device.py", "--config", str(config), "--readings", "1",
            env={**token_environment, DEFAULT_PIN_VARIABLE: "99999999"},
        )  # fmt: skip
        device = run_example(
            "iot_device.py", "--config", str(config), "--readings", "2", "--interval", "0", env=token_environment
        )
    finally:
        log = gateway.stop()
    assert wrong_pin.returncode == 1
    assert wrong_pin.stderr.splitlines() == [
        f"iot_device: error: token {TOKEN!r} rejected the user PIN: wrong PIN (CKR_PIN_INCORRECT)"
    ]
    assert device.returncode == 0, device.stderr
    first, second = device.stdout.splitlines()
    assert first.startswith("delivered 1 reading (ibe-psk, 0-RTT accepted, certificate signed)"), first
    assert second.startswith("delivered 1 reading (resumption, no 0-RTT, identity restored from the ticket)")
    assert (
        "stopped (all connections finished); 2 readings stored (1 from 0-RTT data)" in log and "1 post-handshake" in log
    ), log
    assert gateway.process.returncode == 0
    with ReadingStore(factory / "readings.sqlite") as store:
        assert [(r.device, r.seq) for r in store.readings()] == [("sensor-hsm", 1), ("sensor-hsm", 2)]
