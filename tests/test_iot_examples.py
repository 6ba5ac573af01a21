"""The IoT examples as examples/README.md runs them: provisioning, the gateway and a device, as processes."""

from __future__ import annotations

from pathlib import Path

from ibepsk.iot.store import ReadingStore

from iot_support import GATEWAY_NAME, GatewayProcess, provision_factory, run_example


def test_readme_walkthrough(tmp_path: Path) -> None:
    provision_factory(tmp_path)
    gateway = GatewayProcess(tmp_path / "gateway.toml")
    try:
        provisioned = run_example(
            "provision.py", "device", str(tmp_path), "sensor-1",
            "--gateway", f"127.0.0.1:{gateway.port}", "--gateway-name", GATEWAY_NAME,
        )  # fmt: skip
        assert provisioned.returncode == 0, provisioned.stderr
        assert (tmp_path / "sensor-1.key").stat().st_mode & 0o777 == 0o600
        device = run_example(
            "iot_device.py", "--config", str(tmp_path / "sensor-1.toml"),
            "--value", '{"temperature_c": 19.5}', "--readings", "2", "--interval", "0",
        )  # fmt: skip
    finally:
        log = gateway.stop()
    assert device.returncode == 0, device.stderr
    first, *later = device.stdout.splitlines()
    assert first.startswith("delivered 1 reading (ibe-psk, 0-RTT accepted, certificate signed)"), first
    assert len(later) == 2
    assert all(line.startswith("delivered 1 reading (resumption, no 0-RTT, identity restored") for line in later)
    assert "stopped (all connections finished); 3 readings stored (1 from 0-RTT data), 0 duplicates" in log, log
    assert gateway.process.returncode == 0
    with ReadingStore(tmp_path / "readings.sqlite") as store:
        readings = store.readings()
    assert [(r.device, r.seq) for r in readings] == [("sensor-1", 1), ("sensor-1", 2), ("sensor-1", 3)]
    assert readings[0].value == {"temperature_c": 19.5}
    assert all(isinstance(r.value, dict) and set(r.value) == {"temperature_c"} for r in readings[1:])


def test_a_missing_config_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "sensor-9.toml"
    result = run_example("iot_device.py", "--config", str(missing))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"iot_device: error: {missing}: No such file or directory"]
