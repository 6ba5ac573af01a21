"""A threshold TA in the library: sharing, partial keys, combination, refresh, files; properties under hypothesis."""

from __future__ import annotations

import dataclasses
import secrets
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibepsk import keys, threshold
from ibepsk.ibe import available_backends, get_backend
from ibepsk.ibe.backend import GROUP_ORDER, PairingBackend
from ibepsk.ibe.encoding import decode_g1, decode_g2, encode_g1, encode_g2
from ibepsk.ibe.shamir import combine_g2, lagrange_at_zero, on_one_polynomial_g1, split_secret
from ibepsk.keys import IdentityKey, KeyMismatchError, PartialIdentityKey
from ibepsk.threshold import ThresholdTA

PROPERTY = settings(max_examples=12, deadline=None)
IDENTITY = "gateway.example"


@st.composite
def dealt(draw: st.DrawFn) -> tuple[ThresholdTA, list[int]]:
    """A fresh T-of-N TA (N ≤ 5) and its share indexes in a random order."""
    shares = draw(st.integers(2, 5))
    ta = threshold.deal(draw(st.integers(2, shares)), shares)
    return ta, draw(st.permutations(range(1, shares + 1)))


def partials_of(ta: ThresholdTA, indexes: list[int], identity: str = IDENTITY) -> list[PartialIdentityKey]:
    return [ta.shares[index - 1].extract(identity) for index in indexes]


def combine_unchecked(partials: list[PartialIdentityKey], public: keys.TAPublicParams) -> IdentityKey:
    """Lagrange in G2 with no check at all: what an attacker holding these partial keys could compute."""
    backend = get_backend()
    point = combine_g2(backend, {p.index: decode_g2(backend, p.key) for p in partials})
    return IdentityKey(partials[0].identity, encode_g2(backend, point), public.fingerprint)


@PROPERTY
@given(dealt(), st.data())
def test_any_t_of_n_partials_give_the_same_key(setup: tuple[ThresholdTA, list[int]], data: st.DataObject) -> None:
    ta, order = setup
    t = ta.public.sharing.threshold
    other_order = data.draw(st.permutations(order))
    first = threshold.combine(ta.public, partials_of(ta, order[:t]))
    assert threshold.combine(ta.public, partials_of(ta, other_order[:t])) == first
    assert threshold.combine(ta.public, partials_of(ta, order)) == first  # more than T: the same key
    first.verify(ta.public.public)


@PROPERTY
@given(dealt())
def test_t_minus_1_partials_give_nothing_usable(setup: tuple[ThresholdTA, list[int]]) -> None:
    ta, order = setup
    partials = partials_of(ta, order[: ta.public.sharing.threshold - 1])
    with pytest.raises(threshold.NotEnoughPartialKeysError, match="this TA needs"):
        threshold.combine(ta.public, partials)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        combine_unchecked(partials, ta.public.public).verify(ta.public.public)


def _tamper(partial: PartialIdentityKey, how: str, ta: ThresholdTA) -> PartialIdentityKey:
    backend = get_backend()
    if how == "scaled":
        point = backend.g2_mul(decode_g2(backend, partial.key), 2 + secrets.randbelow(GROUP_ORDER - 2))
        return dataclasses.replace(partial, key=encode_g2(backend, point))
    if how == "other identity":
        return dataclasses.replace(partial, key=ta.shares[partial.index - 1].extract("intruder.example").key)
    if how == "other index":
        other = partial.index % ta.public.sharing.shares + 1
        return dataclasses.replace(partial, key=ta.shares[other - 1].extract(partial.identity).key)
    # "foreign": a share of another TA with the same T and N, relabelled as ours
    foreign = threshold.deal(ta.public.sharing.threshold, ta.public.sharing.shares).shares[partial.index - 1]
    return dataclasses.replace(foreign.extract(partial.identity), ta_fingerprint=ta.public.fingerprint)


@PROPERTY
@given(dealt(), st.sampled_from(["scaled", "other identity", "other index", "foreign"]), st.data())
def test_a_tampered_or_foreign_partial_is_always_detected(
    setup: tuple[ThresholdTA, list[int]], how: str, data: st.DataObject
) -> None:
    ta, order = setup
    partials = partials_of(ta, order[: ta.public.sharing.threshold])
    victim = data.draw(st.integers(0, len(partials) - 1))
    partials[victim] = _tamper(partials[victim], how, ta)
    names = [f"p{p.index}.key" for p in partials]
    with pytest.raises(threshold.BadPartialKeyError) as caught:
        threshold.combine(ta.public, partials, names=names)
    assert caught.value.bad == (f"{names[victim]} (index {partials[victim].index})",)


def test_a_partial_from_another_ta_is_named_as_such() -> None:
    ours, theirs = threshold.deal(2, 3), threshold.deal(2, 3)
    partials = [ours.shares[0].extract(IDENTITY), theirs.shares[1].extract(IDENTITY)]
    with pytest.raises(threshold.MixedPartialKeysError, match=r"partial key 2 \(index 2\) is from TA .*, not from TA"):
        threshold.combine(ours.public, partials)


def test_every_bad_partial_is_named() -> None:
    ta = threshold.deal(2, 3)
    good, *rest = partials_of(ta, [1, 2, 3])
    bad = [_tamper(partial, "scaled", ta) for partial in rest]
    with pytest.raises(threshold.BadPartialKeyError) as caught:
        threshold.combine(ta.public, [good, *bad], names=["a.key", "b.key", "c.key"])
    assert caught.value.bad == ("b.key (index 2)", "c.key (index 3)")


def test_mixed_identities_and_repeated_indexes_are_refused() -> None:
    ta = threshold.deal(2, 3)
    mixed = [ta.shares[0].extract("a.example"), ta.shares[1].extract("b.example")]
    with pytest.raises(threshold.MixedPartialKeysError, match="partial keys for different identities"):
        threshold.combine(ta.public, mixed)
    twice = partials_of(ta, [2, 2])
    with pytest.raises(threshold.MixedPartialKeysError, match=r"repeats the share index of partial key 1 \(index 2\)"):
        threshold.combine(ta.public, twice)


@PROPERTY
@given(dealt())
def test_refresh_keeps_ppub_and_the_keys_it_issues(setup: tuple[ThresholdTA, list[int]]) -> None:
    ta, order = setup
    t = ta.public.sharing.threshold
    refreshed = threshold.refresh(ta)
    assert refreshed.public.public == ta.public.public
    assert refreshed.public.sharing.generation == ta.public.sharing.generation + 1
    assert set(refreshed.public.share_keys).isdisjoint(ta.public.share_keys)
    before = threshold.combine(ta.public, partials_of(ta, order[:t]))
    assert threshold.combine(refreshed.public, partials_of(refreshed, order[-t:])) == before


@PROPERTY
@given(dealt(), st.data())
def test_old_and_new_shares_never_combine(setup: tuple[ThresholdTA, list[int]], data: st.DataObject) -> None:
    ta, order = setup
    t = ta.public.sharing.threshold
    refreshed = threshold.refresh(ta)
    old_count = data.draw(st.integers(1, t - 1))
    old = partials_of(ta, order[:old_count])
    new = partials_of(refreshed, order[old_count:t])
    with pytest.raises(threshold.MixedPartialKeysError, match="shares from different refresh generations"):
        threshold.combine(refreshed.public, old + new)
    # Even relabelled as the new generation, the old shares' partial keys give no key.
    relabelled = [dataclasses.replace(partial, sharing=refreshed.public.sharing) for partial in old]
    with pytest.raises(threshold.BadPartialKeyError):
        threshold.combine(refreshed.public, relabelled + new)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        combine_unchecked(relabelled + new, ta.public.public).verify(ta.public.public)


def test_refresh_needs_every_share_once() -> None:
    ta = threshold.deal(2, 3)
    with pytest.raises(threshold.MixedPartialKeysError, match="each of the 3 shares exactly once"):
        threshold.refresh(ThresholdTA(ta.public, ta.shares[:2]))
    stranger = threshold.deal(2, 3).shares[2]
    with pytest.raises(threshold.MixedPartialKeysError, match="is from TA"):
        threshold.refresh(ThresholdTA(ta.public, (*ta.shares[:2], stranger)))


def test_the_master_secret_is_in_no_share_or_public_file(tmp_path: Path) -> None:
    ta = threshold.deal(3, 4)
    written = []
    for number, obj in enumerate((ta.public, *ta.shares)):
        path = tmp_path / f"{number}.key"
        keys.write_key_file(path, obj)
        written.append(path.read_text())
    # What T shares rebuild, and nothing else: s = Σ λ_i·s_i, proven right by s·P1 == Ppub.
    chosen = ta.shares[:3]
    lambdas = lagrange_at_zero([share.index for share in chosen])
    master = sum(lam * share.secret for lam, share in zip(lambdas, chosen, strict=True)) % GROUP_ORDER
    backend = get_backend()
    assert encode_g1(backend, backend.g1_mul(backend.g1_generator(), master)) == ta.public.public.public_key
    master_pem = keys.TAMasterKey(master, ta.public.public).to_pem()
    master_body = "".join(master_pem.split("\n\n", 1)[1].splitlines()[:-1])
    assert all(master_body not in text for text in written)
    assert all(str(master) not in repr(obj) for obj in (ta, *ta.shares))


def test_files_round_trip_with_the_right_modes(tmp_path: Path) -> None:
    ta = threshold.deal(2, 3)
    partial = ta.shares[1].extract("gätewäy")
    for name, obj, mode in (
        ("threshold.pem", ta.public, 0o644),
        ("share-2.key", ta.shares[1], 0o600),
        ("partial.key", partial, 0o600),
    ):
        keys.write_key_file(tmp_path / name, obj)
        assert keys.read_key_file(tmp_path / name) == obj
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
    assert keys.load_public_params(tmp_path / "threshold.pem") == ta.public.public  # clients need only Ppub
    assert "Identity-UTF8-Base64" in (tmp_path / "partial.key").read_text()


def test_secrets_stay_out_of_repr_and_describe() -> None:
    ta = threshold.deal(2, 3)
    share, partial = ta.shares[0], ta.shares[0].extract(IDENTITY)
    for text in (repr(ta), repr(share), share.describe(), repr(partial), partial.describe()):
        assert str(share.secret) not in text and hex(share.secret)[2:] not in text
        assert partial.key.hex() not in text and repr(partial.key) not in text


def _mangled(pem: str, old: str, new: str) -> str:
    assert old in pem
    return pem.replace(old, new)


def test_corrupted_threshold_files_are_refused() -> None:
    ta = threshold.deal(2, 3)
    share_pem = ta.shares[0].to_pem()
    body_line = share_pem.splitlines()[-2]
    flipped = body_line[:5] + ("A" if body_line[5] != "A" else "B") + body_line[6:]
    with pytest.raises(keys.KeyFileError, match="does not match its Share-Fingerprint"):
        keys.parse_key(_mangled(share_pem, body_line, flipped))
    with pytest.raises(keys.KeyFileError, match=r"share index 4 is not one of 1\.\.3"):
        keys.parse_key(_mangled(share_pem, "Share-Index: 1", "Share-Index: 4"))
    with pytest.raises(keys.KeyFileError, match="'Generation' is not a whole number"):
        keys.parse_key(_mangled(share_pem, "Generation: 0", "Generation: -1"))
    with pytest.raises(keys.KeyFileError, match="threshold 4 is more than the 3 shares"):
        keys.parse_key(_mangled(share_pem, "Threshold: 2", "Threshold: 4"))
    p1, p2, p3 = ta.public.share_keys
    foreign = threshold.deal(2, 3).public.share_keys[2]
    for share_keys in ((p1, p2, foreign), (p1, p2, p2), (p2, p1, p3)):
        with pytest.raises(keys.KeyFileError, match="do not fit one sharing"):
            keys.parse_key(dataclasses.replace(ta.public, share_keys=share_keys).to_pem())
    with pytest.raises(keys.KeyFileError, match="wrong length for 4 shares"):
        keys.parse_key(_mangled(ta.public.to_pem(), "Shares: 3", "Shares: 4"))


@given(dealt(), st.integers(0, 5), st.integers(1, GROUP_ORDER - 1))
@PROPERTY
def test_any_point_off_the_sharing_is_detected(setup: tuple[ThresholdTA, list[int]], which: int, shift: int) -> None:
    ta, _ = setup
    backend = get_backend()
    points = {0: decode_g1(backend, ta.public.public.public_key)}
    points.update({i: decode_g1(backend, key) for i, key in enumerate(ta.public.share_keys, start=1)})
    assert on_one_polynomial_g1(backend, points, ta.public.sharing.threshold)
    moved = which % len(points)
    points[moved] = backend.g1_add(points[moved], backend.g1_mul(backend.g1_generator(), shift))
    assert not on_one_polynomial_g1(backend, points, ta.public.sharing.threshold)


def test_sharing_bounds() -> None:
    for t, n, message in ((1, 3, "below 2"), (4, 3, "more than the 3 shares"), (2, 256, "more than 255")):
        with pytest.raises(ValueError, match=message):
            threshold.deal(t, n)
    with pytest.raises(ValueError, match="repeat"):
        lagrange_at_zero([1, 1])
    with pytest.raises(ValueError, match=r"1\.\.255"):
        lagrange_at_zero([0, 1])


@given(st.integers(0, GROUP_ORDER - 1), st.integers(2, 6), st.data())
def test_shamir_any_t_shares_interpolate_the_secret(secret: int, t: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(t, 8))
    shares = split_secret(secret, t, n)
    chosen = data.draw(st.permutations(range(1, n + 1)))[:t]
    lambdas = lagrange_at_zero(chosen)
    assert sum(lam * shares[i - 1] for lam, i in zip(lambdas, chosen, strict=True)) % GROUP_ORDER == secret


def _sums(backend: PairingBackend, a: int, b: int) -> tuple[bytes, bytes]:
    g1, g2 = backend.g1_generator(), backend.g2_generator()
    g1_sum = backend.g1_add(backend.g1_mul(g1, a), backend.g1_mul(g1, b))
    g2_sum = backend.g2_add(backend.g2_mul(g2, a), backend.g2_mul(g2, b))
    return encode_g1(backend, g1_sum), encode_g2(backend, g2_sum)


@pytest.mark.skipif(len(available_backends()) < 2, reason="pymcl is not installed")
def test_backends_agree_byte_for_byte_on_threshold_operations() -> None:
    ark, mcl = get_backend("arkworks"), get_backend("pymcl")
    a, b = secrets.randbelow(GROUP_ORDER), secrets.randbelow(GROUP_ORDER)
    assert _sums(ark, a, b) == _sums(mcl, a, b)
    ta = threshold.deal(3, 5, ark)
    for share in ta.shares:  # the same share secrets give the same share public keys on mcl
        assert keys.KeyShare.from_secret(share.index, share.secret, share.sharing, share.ta_fingerprint, mcl) == share
    partials_ark = [share.extract(IDENTITY, ark) for share in ta.shares]
    partials_mcl = [share.extract(IDENTITY, mcl) for share in ta.shares]
    assert partials_ark == partials_mcl
    key_ark = threshold.combine(ta.public, partials_ark[1:4], backend=ark)
    assert threshold.combine(ta.public, partials_mcl[1:4], backend=mcl) == key_ark
    assert threshold.refresh(ta, mcl).public.public == ta.public.public
