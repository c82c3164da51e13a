"""Make and check copy identifiers and access codes.

A copy identifier is 14 random Crockford base32 characters (70 bits from
:mod:`secrets`) followed by 2 check characters, printed in groups of four:
``K7QF-2M9X-R4TD-W8ZN``. The alphabet has no I, L, O or U, and reading is
forgiving: lower case, missing dashes, spaces, O for 0 and I or L for 1 are
accepted.

The check is a weighted sum modulo the prime 1021. Give the 16 characters the
values ``v[0..15]`` and the weights ``2, 3, ..., 15`` to the data characters
and ``32, 1`` to the two check characters (which together spell the number
``32 * v[14] + v[15]``, at most 1023). The check characters are chosen so that
``sum(w[i] * v[i])`` is 0 modulo 1021; a valid identifier satisfies it.

* A single mistyped character changes the sum by ``w * d`` with ``d`` in
  1..31 and ``w`` in {1, 2..15, 32}; both factors are below 1021 and 1021 is
  prime, so the product is never 0 modulo 1021 and the error is caught.
* Swapping two adjacent different characters ``a`` and ``b`` changes the sum
  by ``(a - b) * (w[i] - w[i+1])``. Neighbouring weights differ by 1 (data),
  by 17 (last data character and first check character) or by 31 (the two
  check characters): never 0 modulo 1021, so the swap is caught.
* Any other error slips through with a chance of about 1 in 1021.

An access code is 8 random Crockford characters (40 bits) printed beside the
QR code as ``XXXX-XXXX``. It is stored only as a salted scrypt digest; the cost
is modest (a few milliseconds) because lookups are rate-limited elsewhere and
40 bits cannot be protected by the hash alone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from protocol.errors import IdentifierError

logger = logging.getLogger(__name__)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ALIASES = {"O": "0", "I": "1", "L": "1"}
VALUES = {char: index for index, char in enumerate(ALPHABET)}

ID_DATA_LENGTH = 14
ID_LENGTH = ID_DATA_LENGTH + 2
ID_GROUP = 4
CHECK_PRIME = 1021
ID_WEIGHTS = (*range(2, 2 + ID_DATA_LENGTH), 32, 1)

ACCESS_CODE_LENGTH = 8
SCRYPT_N = 2**10
SCRYPT_R = 8
SCRYPT_P = 1
DIGEST_SCHEME = "scrypt"


def new_copy_id() -> str:
    """Return a fresh copy identifier in canonical, grouped form."""
    data = _random_symbols(ID_DATA_LENGTH)
    return _group(data + _check_symbols(data))


def parse_copy_id(text: str) -> str:
    """Return the canonical form of a typed copy identifier.

    Raises:
        IdentifierError: the text has the wrong length, a character outside
            the alphabet, or fails the check (a typing mistake).
    """
    symbols = _clean(text, "copy identifier")
    if len(symbols) != ID_LENGTH:
        raise IdentifierError(
            f"a copy identifier has {ID_LENGTH} characters, not {len(symbols)}; "
            "type it again from the printed copy"
        )
    if _weighted_sum(symbols) != 0:
        raise IdentifierError(
            "the copy identifier fails its check: a character is mistyped or "
            "two are swapped; type it again from the printed copy"
        )
    return _group(symbols)


def is_valid_copy_id(text: str) -> bool:
    """Return whether ``text`` reads as a valid copy identifier."""
    try:
        parse_copy_id(text)
    except IdentifierError:
        return False
    return True


def new_access_code() -> str:
    """Return a fresh access code in canonical form ``XXXX-XXXX``."""
    return _group(_random_symbols(ACCESS_CODE_LENGTH))


def normalize_access_code(text: str) -> str:
    """Return the canonical form of a typed access code.

    Raises:
        IdentifierError: the text has the wrong length or a bad character.
    """
    symbols = _clean(text, "access code")
    if len(symbols) != ACCESS_CODE_LENGTH:
        raise IdentifierError(
            f"an access code has {ACCESS_CODE_LENGTH} characters, not "
            f"{len(symbols)}; type it again from beside the QR code"
        )
    return _group(symbols)


def hash_access_code(code: str, salt: bytes) -> str:
    """Return a salted scrypt digest of an access code, parameters included."""
    if len(salt) < 8:
        raise IdentifierError("an access code salt must have at least 8 bytes")
    digest = _scrypt(normalize_access_code(code), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{DIGEST_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${digest.hex()}"


def check_access_code(code: str, salt: bytes, digest: str) -> bool:
    """Return whether ``code`` matches a digest from :func:`hash_access_code`.

    A code that does not even parse, or a digest in an unknown format,
    does not match.
    """
    try:
        scheme, n, r, p, stored = digest.split("$")
        params = int(n), int(r), int(p)
        expected = bytes.fromhex(stored)
        normalized = normalize_access_code(code)
    except (ValueError, IdentifierError):
        return False
    if scheme != DIGEST_SCHEME or params != (SCRYPT_N, SCRYPT_R, SCRYPT_P):
        logger.warning("access code digest has unexpected parameters %s", params)
        return False
    actual = _scrypt(normalized, salt, *params)
    return hmac.compare_digest(actual, expected)


def _scrypt(code: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(code.encode("ascii"), salt=salt, n=n, r=r, p=p, dklen=32)


def _random_symbols(count: int) -> str:
    value = secrets.randbits(5 * count)
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in range(count))


def _check_symbols(data: str) -> str:
    partial = sum(w * VALUES[c] for w, c in zip(ID_WEIGHTS, data, strict=False))
    check = -partial % CHECK_PRIME
    return ALPHABET[check // 32] + ALPHABET[check % 32]


def _weighted_sum(symbols: str) -> int:
    total: int = sum(w * VALUES[c] for w, c in zip(ID_WEIGHTS, symbols, strict=True))
    return total % CHECK_PRIME


def _clean(text: str, what: str) -> str:
    symbols = []
    for char in text.strip().upper():
        if char in "- ":
            continue
        char = ALIASES.get(char, char)
        if char not in VALUES:
            raise IdentifierError(
                f"{char!r} cannot appear in a {what}; it uses only the digits "
                "and the letters A-Z without I, L, O and U"
            )
        symbols.append(char)
    return "".join(symbols)


def _group(symbols: str) -> str:
    return "-".join(symbols[i : i + ID_GROUP] for i in range(0, len(symbols), ID_GROUP))
