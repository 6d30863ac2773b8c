"""PII normalization and SHA-256 hashing: the one place matching keys are turned into hashes.

Hashing happens in-process, before anything is queued, written or logged, so plaintext
email, phone and external_id never leave this module except as a 64-character SHA-256
hex digest. The rules (see ``docs/pii.md`` for the why and the published vectors):

* email: whitespace removed, Unicode NFC, ``str.lower``; exactly one ``@`` and a dot in
  the domain, else :class:`PIIError`. No Gmail dot or ``+tag`` rewriting; no punycode.
* phone: parsed with ``phonenumbers`` (the default region only applies when the number
  has no country code), must be a *possible* number with its area code, extension
  dropped; hashed as the E.164 digits without ``+``. Impossible numbers and numbers
  without any country information give ``None`` (the caller drops them with a warning
  built from :func:`phone_problem`); ``+`` is never prepended to bare digits.
* external_id: trimmed, case kept.
* pre-hashed: after trimming, 64 hex characters pass through lowercased. The SHA-256 of
  the empty string and 32-hex MD5 digests (email, phone) raise :class:`PIIError`.
* empty or whitespace-only values give ``None``: the empty string is never hashed.

Everything here is pure: no I/O, no settings read. Error messages and
:func:`phone_problem` texts are fixed strings that never contain the value.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import cache, lru_cache

import phonenumbers

from roasproof.errors import RoasproofError

__all__ = [
    "EMPTY_SHA256",
    "PIIError",
    "hash_email",
    "hash_external_id",
    "hash_phone",
    "is_phone_region",
    "is_sha256",
    "looks_like_md5",
    "normalize_email",
    "normalize_external_id",
    "normalize_phone",
    "phone_problem",
    "sha256_hex",
    "valid_fbc",
    "valid_fbp",
]

#: SHA-256 of the empty string: a "hash" that matches nobody, so it is rejected.
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Compiled once at import: these run inside every track() call.
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")
# Meta's cookie shape fb.<subdomain index>.<creation time in ms>.<value>. The value is
# the fbclid (URL-safe base64) or fbp's random number, optionally followed by the
# ".<appendix>" Meta's capi-param-builder adds; anything else earns a 400 from Meta.
_FB_COOKIE_RE = re.compile(r"fb\.[0-9]\.[0-9]{13}\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
_FB_COOKIE_MAX = 500
# The hashers below call these directly rather than through sha256_hex and _prehashed:
# they run three times in every track() call.
_sha256 = hashlib.sha256
_DIGEST_LENGTHS = (32, 64)  # the only lengths _prehashed can answer for (MD5, SHA-256)

_E164 = phonenumbers.PhoneNumberFormat.E164
_IS_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)

# Fixed texts: PIIError messages and phone_problem() results never include the value.
_MSG_EMPTY_HASH = (
    "is the SHA-256 of an empty string, which matches nobody; "
    "send the value itself or the SHA-256 of the normalized value"
)
_MSG_MD5 = (
    "looks like an MD5 hash (32 hex characters), which the ad platforms do not accept; "
    "send the value itself or its SHA-256"
)
_MSG_EMAIL = (
    "is not an email address: it needs exactly one @ and a domain with a dot "
    "(name@example.com); send the address itself or its SHA-256"
)
_PHONE_EMPTY = "is empty"
_PHONE_NO_COUNTRY = (
    "has no country code and no default region: write it with its country code "
    "(+1 650 555 1212) or set default_phone_region (for example 'US')"
)
_PHONE_BAD_REGION = (
    "has no country code and the default region is not an ISO 3166-1 alpha-2 code "
    "phonenumbers knows: fix default_phone_region (for example 'US')"
)
_PHONE_BAD_COUNTRY_CODE = "has a country code that does not exist: check the digits after +"
_PHONE_UNPARSABLE = "is not a phone number: write it as +<country code> <number>"
_PHONE_IMPOSSIBLE = (
    "is not a possible phone number for its country (wrong length, or missing the area "
    "code): write it in full with its country code"
)


class PIIError(RoasproofError, ValueError):
    """A PII value that must be rejected rather than hashed.

    Raised for values no ad platform can match (an MD5 digest, the hash of an empty
    string, an email address without exactly one ``@`` or a dotted domain). The message
    says what is wrong and how to fix it; it never contains the value, so it is safe to
    log, show or put into an :class:`~roasproof.InvalidEvent`.
    """


def sha256_hex(text: str) -> str:
    """Return the lowercase hex SHA-256 of ``text`` encoded as UTF-8."""
    return _sha256(text.encode()).hexdigest()


def is_sha256(value: str) -> bool:
    """Whether ``value``, trimmed, is 64 hex characters other than the empty-string hash."""
    value = value.strip()
    return _SHA256_RE.fullmatch(value) is not None and value.lower() != EMPTY_SHA256


def looks_like_md5(value: str) -> bool:
    """Whether ``value``, trimmed, is 32 hex characters: an MD5 digest (or a bare UUID)."""
    return _MD5_RE.fullmatch(value.strip()) is not None


def _prehashed(value: str, *, reject_md5: bool) -> str | None:
    """Return a trimmed pre-hash lowercased, None if ``value`` is not one, or raise.

    Called with the already trimmed value. Email and phone reject MD5 look-alikes
    (32 hex is never an address or a number); external_id does not, because a
    UUID's ``.hex`` is a common, legitimate customer id.
    """
    if _SHA256_RE.fullmatch(value):
        lowered = value.lower()
        if lowered == EMPTY_SHA256:
            raise PIIError(_MSG_EMPTY_HASH)
        return lowered
    if reject_md5 and _MD5_RE.fullmatch(value):
        raise PIIError(_MSG_MD5)
    return None


def normalize_email(value: str) -> str | None:
    """Return the normalized address that gets hashed, or None when ``value`` is blank.

    Whitespace anywhere is removed (copy-paste artifacts), then Unicode NFC and
    ``str.lower``; the result is NFC again, so normalizing twice equals once. Raises
    :class:`PIIError` without exactly one ``@``, an empty local part or a domain made
    of dot-separated non-empty labels.
    """
    text = "".join(value.split())
    if not text:
        return None
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    local, at, domain = text.partition("@")
    if not (local and at and "." in domain) or "@" in domain:
        raise PIIError(_MSG_EMAIL)
    if domain[0] == "." or domain[-1] == "." or ".." in domain:  # an empty label
        raise PIIError(_MSG_EMAIL)
    return text


def hash_email(value: str) -> str | None:
    """Return the SHA-256 hex of the normalized address, a pre-hash as given, or None."""
    trimmed = value.strip()
    if not trimmed:
        return None
    if len(trimmed) in _DIGEST_LENGTHS:
        prehashed = _prehashed(trimmed, reject_md5=True)
        if prehashed is not None:
            return prehashed
    normalized = normalize_email(trimmed)
    return None if normalized is None else _sha256(normalized.encode()).hexdigest()


def is_phone_region(region: str) -> bool:
    """Whether ``region`` (any case) is a region code phonenumbers can parse numbers for."""
    return region.strip().upper() in _REGIONS


# Parsing is the costly step: phonenumbers.parse takes about 14-35 us warm, and the first
# number of each region also loads that region's metadata (0.6-1 ms). Numbers already in
# E.164, grouped or not, take a fast path of about 1 us (see _fast_e164), tried before the
# cache: it costs no more than a cache hit, and most numbers are new to the cache anyway.
# The others are cached (a hit costs under 1 us; one customer's number recurs across an
# order's events). The cache keys are plaintext phone numbers held in process memory only
# (bounded, never written or logged); acceptable because the caller's process held them
# in the first place.
def _phone_digits(value: str, region: str | None) -> tuple[str | None, str | None]:
    """:func:`_parse_phone`, with E.164 numbers answered before the cache."""
    digits = _fast_e164(value.strip())
    return (digits, None) if digits is not None else _parse_phone(value, region)


@lru_cache(maxsize=4096)
def _parse_phone(value: str, region: str | None) -> tuple[str | None, str | None]:
    """Return ``(E.164 digits without '+', None)`` or ``(None, problem text)``.

    Callers go through :func:`_phone_digits`, which tries the E.164 fast path first.
    """
    text = value.strip()
    if not text:
        return None, _PHONE_EMPTY
    return _full_parse(text, region)


# Most numbers arrive already in E.164 ("+4930901820"): for those, parse() only splits off
# the country code and checks the length, at a fraction of its cost when done directly
# with phonenumbers' own metadata. Anything parse() could treat differently goes to it:
# a national part starting with 0 (Italian leading zeros) or matching the country's
# national_prefix_for_parsing (parse strips "8" in Belarus, carrier codes in China even
# after +), and every number that is not possible (parse then says why).
def _country_code_prefixes() -> dict[str, str]:
    """Every three-digit start of an E.164 number -> the country code parse() reads off it."""
    codes = {str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    out: dict[str, str] = {}
    for start in map(str, range(100, 1000)):
        # parse() takes the shortest prefix that is a known code (at most 3 digits).
        code = next((start[:size] for size in (1, 2, 3) if start[:size] in codes), None)
        if code is not None:
            out[start] = code
    return out


_COUNTRY_CODE_OF = _country_code_prefixes()
_NATIONAL_LENGTHS = range(2, 18)  # national parts outside this range go to parse()


@cache
def _country_rules(country_code: str) -> tuple[re.Pattern[str] | None, frozenset[int]]:
    """The country code's national_prefix_for_parsing (compiled), its possible lengths.

    Whether a number is possible depends only on its country code and the length of
    its national number (phonenumbers checks the main region's possible lengths), so
    is_possible_number_with_reason is asked once per length, here, not per number.
    """
    code = int(country_code)
    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    lengths = frozenset(
        length
        for length in _NATIONAL_LENGTHS
        if phonenumbers.is_possible_number_with_reason(
            phonenumbers.PhoneNumber(country_code=code, national_number=int("1" * length))
        )
        == _IS_POSSIBLE
    )
    # "0", most countries' pattern, can only match a national part _fast_e164 already
    # sent to parse() for its leading zero: no need to try it.
    return (re.compile(pattern) if pattern and pattern != "0" else None), lengths


# A number with its country code, maybe written for people, "+49 30 901820" or
# "+1 (650) 555-1212": parse() drops the spaces, hyphens, dots and parentheses between
# the groups, and reads the digits left. (The plain path's schema uses the same pattern.)
_GROUPED = re.compile(r"\+[0-9]+(?:[ ().\-]{1,3}[0-9]+)*")
_SEPARATORS = str.maketrans("", "", " ().-")


def _fast_e164(text: str) -> str | None:
    """The digits of an E.164 ``text`` that parse() would keep as is, else None (ask parse).

    The digits may be grouped with spaces, hyphens, dots or parentheses, as people write
    them: parse() reads the same digits.
    """
    if text[:1] != "+":
        return None
    digits = text[1:]
    if not (digits.isascii() and digits.isdigit()):
        if _GROUPED.fullmatch(text) is None:
            return None
        digits = digits.translate(_SEPARATORS)
    # 3 to 20 digits, the first not 0 (no country code starts with 0, and fewer than 3
    # digits find none): the E.164 shape.
    if len(digits) > 20:
        return None
    country_code = _COUNTRY_CODE_OF.get(digits[:3])
    if country_code is None:
        return None
    national = digits[len(country_code) :]
    if national.startswith("0"):
        return None
    prefix, lengths = _country_rules(country_code)
    if len(national) not in lengths or (prefix is not None and prefix.match(national)):
        return None
    return digits


def _full_parse(text: str, region: str | None) -> tuple[str | None, str | None]:
    """:func:`_parse_phone` through ``phonenumbers.parse`` (any format, with the reasons)."""
    if region is not None:
        region = region.strip().upper() or None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type != phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return None, _PHONE_UNPARSABLE
        if "+" in text or "\uff0b" in text:
            return None, _PHONE_BAD_COUNTRY_CODE
        if region is None:
            return None, _PHONE_NO_COUNTRY
        if region not in _REGIONS:
            return None, _PHONE_BAD_REGION
        return None, _PHONE_UNPARSABLE
    if phonenumbers.is_possible_number_with_reason(number) != _IS_POSSIBLE:
        return None, _PHONE_IMPOSSIBLE
    e164 = phonenumbers.format_number(number, _E164)
    # Leading zeros kept after a stripped trunk prefix ("+49 0000 0") can format to an
    # E.164 that parses to a different number; a hash of it would match nobody, and
    # normalizing would not be idempotent. Real leading-zero numbers (Italy) are stable.
    if number.italian_leading_zero and not _is_fixed_point(e164):
        return None, _PHONE_IMPOSSIBLE
    return e164[1:], None


def _is_fixed_point(e164: str) -> bool:
    """Whether an E.164 string parses back to itself."""
    return phonenumbers.format_number(phonenumbers.parse(e164, None), _E164) == e164


def normalize_phone(value: str, region: str | None) -> str | None:
    """Return the E.164 digits without ``+`` (``16505551212``), or None if unusable.

    ``region`` (ISO 3166-1 alpha-2, any case) is used only when the number has no
    country code. None means blank, unparsable, impossible (including local numbers
    missing their area code) or without any country information; :func:`phone_problem`
    says which. Feed the result back as ``"+" + digits``: bare digits are never guessed.
    """
    return _phone_digits(value, region)[0]


def phone_problem(value: str, region: str | None) -> str | None:
    """Why :func:`hash_phone` would drop or reject ``value``, or None when it is usable.

    The text never contains the number; it completes a sentence such as
    ``"user_data.phone <text>"`` for the warning the caller logs.
    """
    trimmed = value.strip()
    if _SHA256_RE.fullmatch(trimmed):
        return _MSG_EMPTY_HASH if trimmed.lower() == EMPTY_SHA256 else None
    if _MD5_RE.fullmatch(trimmed):
        return _MSG_MD5
    return _phone_digits(value, region)[1]


def hash_phone(value: str, region: str | None) -> str | None:
    """Return the SHA-256 hex of the E.164 digits, a pre-hash as given, or None.

    None means the number is blank or unusable (see :func:`phone_problem`); the caller
    drops it with a warning. Raises :class:`PIIError` for MD5 and empty-string hashes.
    """
    trimmed = value.strip()
    if not trimmed:
        return None
    if len(trimmed) in _DIGEST_LENGTHS:
        prehashed = _prehashed(trimmed, reject_md5=True)
        if prehashed is not None:
            return prehashed
    digits = _phone_digits(trimmed, region)[0]
    return None if digits is None else _sha256(digits.encode()).hexdigest()


def normalize_external_id(value: str) -> str | None:
    """Return ``value`` trimmed (case and inner spaces kept), or None when blank."""
    return value.strip() or None


def hash_external_id(value: str) -> str | None:
    """Return the SHA-256 hex of the trimmed id, a pre-hash as given, or None when blank.

    A 32-hex id is hashed like any other (it is as likely a UUID as an MD5 digest).
    """
    trimmed = value.strip()
    if not trimmed:
        return None
    prehashed = _prehashed(trimmed, reject_md5=False) if len(trimmed) == 64 else None
    return prehashed if prehashed is not None else _sha256(trimmed.encode()).hexdigest()


def valid_fbc(value: str) -> bool:
    """Whether ``value`` has Meta's ``fb.<n>.<ms>.<fbclid>`` shape; checked as given."""
    return len(value) <= _FB_COOKIE_MAX and _FB_COOKIE_RE.fullmatch(value) is not None


def valid_fbp(value: str) -> bool:
    """Whether ``value`` has Meta's ``fb.<n>.<ms>.<random>`` shape; checked as given."""
    return len(value) <= _FB_COOKIE_MAX and _FB_COOKIE_RE.fullmatch(value) is not None
