"""What docs/openapi.json says in words because JSON Schema cannot, taught to schemathesis.

scripts/schemathesis loads this file (SCHEMATHESIS_HOOKS). Each rule here is one the spec
states in a description or a `format`; the fuzzer would otherwise call the server's refusals of
such requests mismatches.
"""

import schemathesis
from hypothesis import strategies as st

BECH32_ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values):
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(generators):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def bech32(hrp, data):
    """BIP 173 bech32 (what age's recipients are) of `data` bytes under `hrp`."""
    words, accumulator, bits = [], 0, 0
    for byte in data:
        accumulator = accumulator << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            words.append(accumulator >> bits & 31)
    if bits:
        words.append(accumulator << (5 - bits) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _bech32_polymod(expanded + words + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_ALPHABET[w] for w in words + checksum)


# `format: age-recipient`: a reviewer's public key. A bech32 checksum is beyond a pattern; any
# 32 bytes make an X25519 recipient the server takes.
schemathesis.openapi.format(
    "age-recipient",
    st.binary(min_size=32, max_size=32).map(lambda key: bech32("age", key)),
)


def _plain_integers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_integers(v) for v in value]
    return value


@schemathesis.hook
def map_case(context, case):
    """The spec's integers are written as integers (`3`, not `3.0`), as its description of
    integers says: JSON Schema counts `3.0` as an integer, the server's JSON reader does not.
    Only schema-valid cases are rewritten; an invalid one keeps what makes it invalid."""
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and case.body is not None:
        case.body = _plain_integers(case.body)
    return case
