"""The IoT prototypes' parts: wire format, the device's queue, the gateway's store, retries, configuration files."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ibepsk import keys
from ibepsk.iot.config import ConfigError, Pkcs11Key, load_device_file, load_gateway_file
from ibepsk.iot.device import RetryPolicy
from ibepsk.iot.protocol import (
    Ack,
    GatewayError,
    LineBuffer,
    ProtocolError,
    Reading,
    decode_gateway_message,
    device_name,
)
from ibepsk.iot.provisioning import create_device_ca, provision_key_file, write_device_file, write_gateway_file
from ibepsk.iot.queue import ReadingQueue
from ibepsk.iot.store import ReadingStore
from ibepsk.keys import TAMasterKey

from pki import issue, make_ca

# --- wire format -----------------------------------------------------------------------------------


def test_reading_round_trip() -> None:
    reading = Reading("sensor-1", "00ff", 7, 1764262800.125, {"t": [21.5, None, True, "x"]})
    line = reading.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert Reading.decode(line.rstrip(b"\n")) == reading


@pytest.mark.parametrize(
    "line",
    [
        b"[1, 2]",
        b'{"device": "d", "queue": "q", "seq": 1, "at": 1}',
        b'{"device": "d", "queue": "q", "seq": 1, "at": 1, "value": 1, "extra": 0}',
        b'{"device": "", "queue": "q", "seq": 1, "at": 1, "value": 1}',
        b'{"device": "d", "queue": "q", "seq": true, "at": 1, "value": 1}',
        b'{"device": "d", "queue": "q", "seq": 9223372036854775808, "at": 1, "value": 1}',
        b'{"device": "d", "queue": "q", "seq": 1, "at": Infinity, "value": 1}',
        b'{"device": "d", "queue": "q", "seq": 1, "at": 1, "value": NaN}',
        b'{"device": "d", "queue": "q", "seq": 1' + b"1" * 5000 + b', "at": 1, "value": 1}',
        b"\xff\xfe",
        b"[" * 100_000,
    ],
    ids=[
        "array", "no-value", "extra-field", "empty-device", "bool-seq", "seq-overflow", "infinite-time", "nan-value",
        "huge-integer", "not-utf8", "deep-nesting",
    ],
)  # fmt: skip
def test_malformed_readings(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        Reading.decode(line)


def test_gateway_messages() -> None:
    assert decode_gateway_message(Ack((3, 4)).encode().strip()) == Ack((3, 4))
    assert decode_gateway_message(GatewayError("no").encode().strip()) == GatewayError("no")
    for line in (b'{"ack": [0]}', b'{"ack": 3}', b'{"error": 1}', b'{"ack": [], "error": "x"}'):
        with pytest.raises(ProtocolError):
            decode_gateway_message(line)


def test_line_buffer_joins_chunks_and_bounds_lines() -> None:
    lines = LineBuffer(limit=10)
    assert lines.feed(b"ab") == []
    assert lines.feed(b"c\nde\n\nf") == [b"abc", b"de", b""]
    assert lines.pending == 1
    with pytest.raises(ProtocolError, match="longer than 10 bytes"):
        lines.feed(b"0123456789")


def test_device_name_is_the_common_name() -> None:
    ca = make_ca()
    assert device_name(issue(ca, "sensor-7", server=False).certificate) == "sensor-7"
    assert device_name(ca.certificate) == "ibepsk test CA"


# --- the device's queue ------------------------------------------------------------------------------


def test_queue_keeps_readings_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "device.queue"
    with ReadingQueue(path) as queue:
        queue_id = queue.queue_id
        for value in ("a", "b", "c"):
            queue.put(value, at=1.0)
        assert queue.acknowledge([2, 99]) == 1
    with ReadingQueue(path) as reopened:
        assert reopened.queue_id == queue_id
        assert [(r.seq, r.value) for r in reopened.pending()] == [(1, "a"), (3, "c")]
        assert [r.seq for r in reopened.pending(limit=1)] == [1]


def test_sequence_numbers_never_repeat(tmp_path: Path) -> None:
    with ReadingQueue(tmp_path / "device.queue") as queue:
        first = queue.put(1)
        queue.acknowledge([first.seq])
        assert len(queue) == 0
        assert queue.put(2).seq == first.seq + 1, "an emptied queue goes on counting"


def test_each_queue_has_its_own_id(tmp_path: Path) -> None:
    with ReadingQueue(tmp_path / "a.queue") as one, ReadingQueue(tmp_path / "b.queue") as other:
        assert one.queue_id != other.queue_id and len(one.queue_id) == 16


def test_queue_refuses_what_json_cannot_carry(tmp_path: Path) -> None:
    with ReadingQueue(tmp_path / "device.queue") as queue:
        for value in (float("nan"), {1, 2}, b"bytes"):
            with pytest.raises(ValueError):
                queue.put(value)  # type: ignore[arg-type]
        assert len(queue) == 0


# --- the gateway's store ------------------------------------------------------------------------------


def test_store_keeps_each_reading_once(tmp_path: Path) -> None:
    with ReadingStore(tmp_path / "gateway.sqlite") as store:
        first = [Reading("ignored", "q1", seq, 1.0, seq) for seq in (1, 2)]
        assert (store.add("sensor-1", first, early=True).stored, store.add("sensor-1", first).duplicates) == (2, 2)
        # The same seq from another queue of the device, or from another device, is another reading.
        result = store.add("sensor-1", [Reading("x", "q2", 1, 1.0, "new queue")])
        other = store.add("sensor-2", [Reading("x", "q1", 1, 1.0, "other device")])
        assert (result.stored, other.stored) == (1, 1)
        rows = [(r.device, r.queue, r.seq, r.early) for r in store.readings()]
        assert rows == [("sensor-1", "q1", 1, True), ("sensor-1", "q1", 2, True), ("sensor-1", "q2", 1, False),
                        ("sensor-2", "q1", 1, False)]  # fmt: skip
        assert [r.value for r in store.readings("sensor-2")] == ["other device"]


# --- retries ---------------------------------------------------------------------------------------------


def test_backoff_grows_to_its_bound_with_jitter() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=8.0, multiplier=2.0)
    delays = policy.delays(random.Random(1))
    waits = [next(delays) for _ in range(8)]
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert all(ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))
    assert len(set(waits[3:])) == 5, "jitter: devices that failed together spread out"


@pytest.mark.parametrize(
    "fields", [{"initial_delay": 0}, {"initial_delay": 5, "max_delay": 1}, {"multiplier": 0.5}, {"max_attempts": 0}]
)
def test_retry_policy_refuses_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**fields)  # type: ignore[arg-type]


# --- configuration files ---------------------------------------------------------------------------------


@pytest.fixture()
def factory(tmp_path: Path, ta: TAMasterKey) -> Path:
    """What provisioning leaves in a directory: TA parameters, the gateway key, a device CA, a device."""
    (tmp_path / "ta").mkdir()
    keys.write_key_file(tmp_path / "ta" / "public.pem", ta.public)
    keys.write_key_file(tmp_path / "gw.example.key", ta.extract("gw.example"))
    ca = create_device_ca(tmp_path)
    certificate, key = provision_key_file(ca, tmp_path, "sensor-1")
    write_device_file(
        tmp_path / "sensor-1.toml", gateway="127.0.0.1:4443", gateway_name="gw.example",
        ta=tmp_path / "ta" / "public.pem", certificate=certificate, key=key,
    )  # fmt: skip
    write_gateway_file(
        tmp_path / "gateway.toml", listen="127.0.0.1:4443", identity_keys=[tmp_path / "gw.example.key"],
        ta=tmp_path / "ta" / "public.pem", device_ca=tmp_path / "device-ca.crt",
    )  # fmt: skip
    return tmp_path


def test_provisioned_files_load(factory: Path, ta: TAMasterKey) -> None:
    device = load_device_file(factory / "sensor-1.toml")
    assert device.device.gateway == ("127.0.0.1", 4443) and device.device.gateway_name == "gw.example"
    assert device.device.ta_public.fingerprint == ta.public.fingerprint
    assert device.queue == factory / "sensor-1.queue" and device.pkcs11 is None
    assert device_name(device.open_signer().certificate_chain[0]) == "sensor-1"
    assert (factory / "sensor-1.key").stat().st_mode & 0o777 == 0o600
    assert (factory / "device-ca.key").stat().st_mode & 0o777 == 0o600
    gateway = load_gateway_file(factory / "gateway.toml")
    assert gateway.listen == ("127.0.0.1", 4443)
    assert [key.identity for key in gateway.gateway.identity_keys] == ["gw.example"]
    assert gateway.gateway.database == factory / "readings.sqlite" and gateway.gateway.early_data == 4096


def test_provisioning_never_overwrites_a_key(factory: Path) -> None:
    ca = create_device_ca(factory / "ta")
    with pytest.raises(FileExistsError):
        provision_key_file(ca, factory, "sensor-1")


def test_a_token_device_file(factory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = Pkcs11Key(Path("/no/such/module.so"), "sensor-token", "device-p256", "SENSOR_PIN")
    write_device_file(
        factory / "token.toml", gateway="gw:1", gateway_name="gw.example", ta=factory / "ta" / "public.pem",
        certificate=factory / "sensor-1.crt", key=token,
    )  # fmt: skip
    loaded = load_device_file(factory / "token.toml")
    assert loaded.pkcs11 == token and loaded.key_file is None
    monkeypatch.delenv("SENSOR_PIN", raising=False)
    with pytest.raises(ConfigError, match="set the PKCS#11 user PIN in the environment variable SENSOR_PIN"):
        loaded.open_signer()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda text: text + "colour = 1\n", "unknown key 'colour'", id="unknown-key"),
        pytest.param(lambda text: text.replace('name = "gw.example"\n', ""), "missing 'name'", id="missing"),
        pytest.param(lambda text: text.replace('"127.0.0.1:4443"', "4443"), "'address' must be a str", id="type"),
        pytest.param(lambda text: text.replace("127.0.0.1:4443", "nowhere"), "is not HOST:PORT", id="address"),
        pytest.param(lambda text: text.replace('"ta/public.pem"', '"gw.example.key"'), "'ta'", id="not-public"),
        pytest.param(
            lambda text: text + '\n[device.pkcs11]\nmodule = "m.so"\ntoken = "t"\nkey = "k"\n',
            "give either 'key' (a key file) or a [device.pkcs11] table",
            id="two-keys",
        ),
        pytest.param(lambda text: text.replace("max_delay = 60.0", "max_delay = 0.5"), "initial_delay", id="retry"),
        pytest.param(lambda text: text + "[[", "not TOML", id="syntax"),
    ],
)
def test_device_file_mistakes(factory: Path, edit: Callable[[str], str], message: str) -> None:
    path = factory / "sensor-1.toml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_device_file(path)


def test_gateway_file_checks_keys_against_the_ta(factory: Path) -> None:
    keys.write_key_file(factory / "stranger.key", TAMasterKey.generate().extract("gw.example"))
    path = factory / "gateway.toml"
    path.write_text(path.read_text().replace('"gw.example.key"', '"stranger.key"'))
    with pytest.raises(ConfigError, match="'identity_keys'"):
        load_gateway_file(path)
