"""patches/0018: tlslite-ng's CustomNameExtension raises (and swallows) an AttributeError for each field it sets."""

from __future__ import annotations

from pathlib import Path

from patch_support import patched_tlslite, run_python

# A ClientHello with SNI, supported groups and ALPN (the latter two CustomNameExtensions), written and parsed
# back; how many failed attribute lookups that costs, and whether the bytes survive.
SCENARIO = """
    from tlslite.extensions import ALPNExtension, CustomNameExtension, SNIExtension, SupportedGroupsExtension
    from tlslite.messages import ClientHello
    from tlslite.utils.codec import Parser

    failed = []
    stock_getattr = CustomNameExtension.__getattr__

    def counting_getattr(extension, name):
        try:
            return stock_getattr(extension, name)
        except AttributeError:
            failed.append(name)
            raise

    CustomNameExtension.__getattr__ = counting_getattr
    extensions = [
        SNIExtension().create(bytearray(b"localhost")),
        SupportedGroupsExtension().create([29, 23]),
        ALPNExtension().create([bytearray(b"h2")]),
    ]
    hello = ClientHello().create((3, 3), bytearray(32), bytearray(0), [0x1301], extensions=extensions)
    raw = hello.write()
    parsed = ClientHello().parse(Parser(raw[1:]))
    print(parsed.write() == raw, len(failed))
"""


def _outcome(path_entry: Path | None = None) -> tuple[str, int]:
    result = run_python(SCENARIO, path_entry)
    words = result.stdout.split()
    assert len(words) == 2, result.stderr
    return words[0], int(words[1])


def test_stock_tlslite_fails_a_lookup_per_extension_field() -> None:
    same_bytes, failed_lookups = _outcome()
    assert same_bytes == "True"
    assert failed_lookups > 0  # for each field TLSExtension.__init__ sets on a CustomNameExtension


def test_patch_sets_fields_without_failed_lookups(tmp_path: Path) -> None:
    same_bytes, failed_lookups = _outcome(patched_tlslite("0018-extensions-setattr-without-hasattr.patch", tmp_path))
    assert (same_bytes, failed_lookups) == ("True", 0)
