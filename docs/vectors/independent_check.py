#!/usr/bin/env python3
"""Independent check of the TrustMesh wire protocol v1 test vectors.

Written from docs/protocol.md and docs/vectors/frames.json alone (no reference
source was consulted), to show that the specification suffices to interoperate.

It implements:
  * did:key derivation (§2.2) with its own base58btc, and the strict reverse
    direction (DID -> key) with the canonical-form checks of §2.2;
  * a strict MessagePack decoder for the body (§4, §7 rule 5a), with the
    weighted work budget of §4 rule 11 counted over the decoded value;
  * Ed25519 verification of "trustmesh/v1\\n" || body (§5): the public-key
    rules K1-K3 (y < p; decodes to a point; [8]A is not the neutral element,
    computed here with its own point arithmetic), S < L, and the cofactorless
    equation with R compared as bytes, which is what the `cryptography`
    package (OpenSSL) checks;
  * the receiver rules of §7 in order, including the bounded replay memory and
    its floor.

Then it checks every vector of frames.json as §12 describes.

Usage: python3 docs/vectors/independent_check.py [path-to-frames.json]
Prints one line per failing check, then "N passed, M failed".
Exit status: 0 if M == 0, 1 otherwise, 2 if `cryptography` is missing.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
except ImportError:  # pragma: no cover - environment dependent
    sys.stderr.write(
        "independent_check.py: the Python package `cryptography` is missing; "
        "install it (pip install cryptography) to run this check\n"
    )
    sys.exit(2)


# --------------------------------------------------------------------------
# Constants (Appendix A)
# --------------------------------------------------------------------------

FRAME_VERSION = 0x01
HEADER_LEN = 97
MIN_FRAME = 98
DEFAULT_MAX_FRAME = 1048576
DEFAULT_WINDOW_MS = 30000
SIGNING_PREFIX = b"trustmesh/v1\n"
assert SIGNING_PREFIX.hex() == "74727573746d6573682f76310a"
MULTICODEC_ED25519_PUB = b"\xed\x01"
DID_PREFIX = "did:key:"
MAX_NESTING = 32
# §4 rule 11: the work budget and the weights of the item count.
MAX_ITEMS = 32768
WEIGHT_CONTAINER = 3
WEIGHT_BIN = 10
IAT_MAX = 2**53 - 1


class Reject(Exception):
    """A receiver rejection with one reason code (§8)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------
# §2.2 base58btc and did:key
# --------------------------------------------------------------------------

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    digits = []
    while n > 0:
        n, r = divmod(n, 58)
        digits.append(B58_ALPHABET[r])
    leading = 0
    for byte in data:
        if byte != 0:
            break
        leading += 1
    return "1" * leading + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        if ch not in B58_INDEX:
            raise ValueError(f"character {ch!r} outside the base58btc alphabet")
        n = n * 58 + B58_INDEX[ch]
    leading = 0
    for ch in text:
        if ch != "1":
            break
        leading += 1
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * leading + body


def agent_id_from_public_key(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return "z" + b58encode(MULTICODEC_ED25519_PUB + public_key)


def did_from_public_key(public_key: bytes) -> str:
    return DID_PREFIX + agent_id_from_public_key(public_key)


def public_key_from_did(did: str) -> bytes:
    """DID -> key with every canonical-form check of §2.2 (raises ValueError)."""
    if not isinstance(did, str) or not did.startswith(DID_PREFIX + "z"):
        raise ValueError("does not start with did:key:z")
    raw = b58decode(did[len(DID_PREFIX) + 1:])
    if len(raw) != 34 or raw[:2] != MULTICODEC_ED25519_PUB:
        raise ValueError("does not decode to 34 bytes starting ed 01")
    key = raw[2:]
    if did_from_public_key(key) != did:
        raise ValueError("does not re-encode to the identical string")
    if ed25519_key_refused(key):
        raise ValueError("names a public key that §5 refuses")
    return key


# --------------------------------------------------------------------------
# §4 / §7 rule 5a: strict MessagePack decoder
# --------------------------------------------------------------------------


class MsgpackError(Exception):
    pass


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        # Declared lengths are checked against what is left before anything
        # is read or allocated (§11 "Parsing").
        if n < 0 or n > len(self.buf) - self.pos:
            raise MsgpackError(
                f"truncated: need {n} bytes at offset {self.pos}, "
                f"{len(self.buf) - self.pos} left"
            )
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big", signed=False)

    def sint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big", signed=True)


def _decode_str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise MsgpackError(f"invalid UTF-8 in str: {exc}") from None


def _decode_value(r: _Reader, depth: int):
    """Decode one value. `depth` is the level of the container holding it
    (0 for the top-level value). A map/array decoded here is at depth + 1."""
    b = r.u8()
    # positive fixint
    if b <= 0x7F:
        return b
    # fixmap
    if 0x80 <= b <= 0x8F:
        return _decode_map(r, b & 0x0F, depth + 1)
    # fixarray
    if 0x90 <= b <= 0x9F:
        return _decode_array(r, b & 0x0F, depth + 1)
    # fixstr
    if 0xA0 <= b <= 0xBF:
        return _decode_str(r.take(b & 0x1F))
    # negative fixint
    if b >= 0xE0:
        return b - 0x100
    if b == 0xC0:
        return None
    if b == 0xC1:
        raise MsgpackError("the never-used byte 0xc1")
    if b == 0xC2:
        return False
    if b == 0xC3:
        return True
    if b == 0xC4:
        return bytes(r.take(r.uint(1)))
    if b == 0xC5:
        return bytes(r.take(r.uint(2)))
    if b == 0xC6:
        return bytes(r.take(r.uint(4)))
    if b in (0xC7, 0xC8, 0xC9) or 0xD4 <= b <= 0xD8:
        raise MsgpackError(f"ext type (0x{b:02x}) is not allowed")
    if b == 0xCA:
        return struct.unpack(">f", r.take(4))[0]
    if b == 0xCB:
        return struct.unpack(">d", r.take(8))[0]
    if b == 0xCC:
        return r.uint(1)
    if b == 0xCD:
        return r.uint(2)
    if b == 0xCE:
        return r.uint(4)
    if b == 0xCF:
        return r.uint(8)
    if b == 0xD0:
        return r.sint(1)
    if b == 0xD1:
        return r.sint(2)
    if b == 0xD2:
        return r.sint(4)
    if b == 0xD3:
        return r.sint(8)
    if b == 0xD9:
        return _decode_str(r.take(r.uint(1)))
    if b == 0xDA:
        return _decode_str(r.take(r.uint(2)))
    if b == 0xDB:
        return _decode_str(r.take(r.uint(4)))
    if b == 0xDC:
        return _decode_array(r, r.uint(2), depth + 1)
    if b == 0xDD:
        return _decode_array(r, r.uint(4), depth + 1)
    if b == 0xDE:
        return _decode_map(r, r.uint(2), depth + 1)
    if b == 0xDF:
        return _decode_map(r, r.uint(4), depth + 1)
    raise MsgpackError(f"unreachable type byte 0x{b:02x}")  # pragma: no cover


def _check_level(level: int) -> None:
    if level > MAX_NESTING:
        raise MsgpackError(f"nesting level {level} exceeds {MAX_NESTING}")


def _decode_array(r: _Reader, count: int, level: int) -> list:
    _check_level(level)
    out = []
    for _ in range(count):  # every element consumes >= 1 byte, so truncation ends this
        out.append(_decode_value(r, level))
    return out


def _decode_map(r: _Reader, count: int, level: int) -> dict:
    _check_level(level)
    out: dict = {}
    for _ in range(count):
        start = r.pos
        key_first = r.buf[start] if start < len(r.buf) else None
        key = _decode_value(r, level)
        if type(key) is not str or key_first is None or not (
            0xA0 <= key_first <= 0xBF or key_first in (0xD9, 0xDA, 0xDB)
        ):
            raise MsgpackError("map key is not a str")
        if key in out:
            raise MsgpackError(f"map key {key!r} occurs more than once")
        out[key] = _decode_value(r, level)
    return out


def item_count(value) -> int:
    """§4 rule 11: every value weighs 1, a map or array 3, a bin 10; every map key 1."""
    if isinstance(value, dict):
        return WEIGHT_CONTAINER + sum(1 + item_count(v) for v in value.values())
    if isinstance(value, list):
        return WEIGHT_CONTAINER + sum(item_count(v) for v in value)
    if isinstance(value, bytes):
        return WEIGHT_BIN
    return 1


def decode_body(body: bytes) -> dict:
    """Rule 5a: one well-formed MessagePack map, nothing after it, within the work budget."""
    if not body:
        raise MsgpackError("empty body")
    first = body[0]
    if not (0x80 <= first <= 0x8F or first in (0xDE, 0xDF)):
        raise MsgpackError(f"first byte 0x{first:02x} is not a map header")
    r = _Reader(body)
    value = _decode_value(r, 0)
    if r.pos != len(body):
        raise MsgpackError(f"{len(body) - r.pos} byte(s) after the map")
    assert isinstance(value, dict)
    items = item_count(value)
    if items > MAX_ITEMS:
        raise MsgpackError(f"{items} items exceed the work budget of {MAX_ITEMS}")
    return value


# --------------------------------------------------------------------------
# §5 Ed25519 verification
# --------------------------------------------------------------------------

ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = (-121665 * pow(121666, ED_P - 2, ED_P)) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def ed25519_point_decodes(enc: bytes) -> bool:
    """RFC 8032 §5.1.3 point decoding: True iff `enc` encodes a curve point."""
    if len(enc) != 32:
        return False
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    x_0 = enc[31] >> 7
    if y >= ED_P:
        return False
    u = (y * y - 1) % ED_P
    v = (ED_D * y * y + 1) % ED_P
    x = (u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P)) % ED_P
    vx2 = (v * x * x) % ED_P
    if vx2 == u:
        pass
    elif vx2 == (-u) % ED_P:
        x = (x * ED_SQRT_M1) % ED_P
    else:
        return False
    if x == 0 and x_0 == 1:
        return False
    return True


def _ed25519_decode(enc: bytes):
    """RFC 8032 §5.1.3: the affine point (x, y), or None."""
    if not ed25519_point_decodes(enc):
        return None
    y = int.from_bytes(enc, "little") & ((1 << 255) - 1)
    u = (y * y - 1) % ED_P
    v = (ED_D * y * y + 1) % ED_P
    x = (u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P)) % ED_P
    if (v * x * x) % ED_P != u:
        x = (x * ED_SQRT_M1) % ED_P
    if (x & 1) != (enc[31] >> 7):
        x = (-x) % ED_P
    return (x, y)


def _ed25519_add(p1, p2):
    """Affine twisted Edwards addition, -x^2 + y^2 = 1 + d x^2 y^2 (complete for Ed25519)."""
    (x1, y1), (x2, y2) = p1, p2
    t = (ED_D * x1 * x2 * y1 * y2) % ED_P
    x3 = ((x1 * y2 + y1 * x2) * pow(1 + t, ED_P - 2, ED_P)) % ED_P
    y3 = ((y1 * y2 + x1 * x2) * pow(1 - t, ED_P - 2, ED_P)) % ED_P
    return (x3, y3)


def ed25519_key_refused(public_key: bytes) -> bool:
    """§5 K1-K3: y not reduced, not a curve point, or of small order ([8]A = (0, 1))."""
    if len(public_key) != 32:
        return True
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    if y >= ED_P:  # K1
        return True
    point = _ed25519_decode(public_key)
    if point is None:  # K2
        return True
    for _ in range(3):  # K3: double three times
        point = _ed25519_add(point, point)
    return point == (0, 1)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    if ed25519_key_refused(public_key):  # §5 K1-K3
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= ED_L:  # §5 S1: S must be canonical
        return False
    if not ed25519_point_decodes(signature[:32]):  # S2 compares R as bytes: a non-point never matches
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_from_seed(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


# --------------------------------------------------------------------------
# §7 Receiver
# --------------------------------------------------------------------------


def _is_int(x) -> bool:
    return type(x) is int  # bool is not a MessagePack int


def _str_len_ok(x, lo: int, hi: int) -> bool:
    return type(x) is str and lo <= len(x.encode("utf-8")) <= hi


def _bin16(x) -> bool:
    return type(x) is bytes and len(x) == 16


class Receiver:
    def __init__(
        self,
        *,
        own_did: str | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME,
        window_ms: int = DEFAULT_WINDOW_MS,
        max_replay_entries: int | None = None,
    ):
        self.own_did = own_did
        self.max_frame_bytes = max_frame_bytes
        self.window_ms = window_ms
        self.max_replay_entries = max_replay_entries
        # (public key, id) -> iat of every accepted frame still remembered.
        self.memory: dict[tuple[bytes, bytes], int] = {}
        # (public key, id) -> signature of that frame: another frame with the same pair is equivocation.
        self.signatures: dict[tuple[bytes, bytes], bytes] = {}
        # The floor F of §7; None until something has been forgotten early.
        self.floor: int | None = None
        self.counters: dict[str, int] = {}

    # -- replay memory --------------------------------------------------
    def _below_floor(self, iat: int) -> bool:
        return self.floor is not None and iat <= self.floor

    def _expire(self, now: int) -> None:
        # An entry MAY be forgotten once iat < now - window (rule 9 then
        # rejects the frame anyway); doing so does not raise the floor.
        limit = now - self.window_ms
        for k in [k for k, iat in self.memory.items() if iat < limit]:
            del self.memory[k]
            del self.signatures[k]

    def _evict_oldest(self) -> None:
        oldest = min(self.memory.values())
        for k in [k for k, iat in self.memory.items() if iat == oldest]:
            del self.memory[k]
            del self.signatures[k]
        self.floor = oldest if self.floor is None else max(self.floor, oldest)

    # -- rules ------------------------------------------------------------
    def receive(self, frame: bytes, subject: str, now: int) -> dict:
        """Return the decoded body if accepted; raise Reject otherwise."""
        try:
            return self._receive(frame, subject, now)
        except Reject as rej:
            self.counters[rej.reason] = self.counters.get(rej.reason, 0) + 1
            raise

    def _receive(self, frame: bytes, subject: str, now: int) -> dict:
        # Rule 1: length only, nothing is read.
        if len(frame) > self.max_frame_bytes:
            raise Reject("too_large", f"{len(frame)} > {self.max_frame_bytes}")
        # Rule 2
        if len(frame) < MIN_FRAME:
            raise Reject("bad_frame", f"{len(frame)} bytes < {MIN_FRAME}")
        # Rule 3
        if frame[0] != FRAME_VERSION:
            raise Reject("bad_version", f"header version 0x{frame[0]:02x}")
        public_key = frame[1:33]
        signature = frame[33:97]
        body = frame[HEADER_LEN:]
        # Rule 3a: the subject's last token must name the header key, checked before
        # the (costly) signature check.
        last_token = subject.rsplit(".", 1)[-1]
        if last_token != agent_id_from_public_key(public_key):
            raise Reject("subject_mismatch", "the header key is not the sender the subject names")
        # Rule 4: before any parsing of the body.
        if not ed25519_verify(public_key, SIGNING_PREFIX + body, signature):
            raise Reject("bad_signature")
        # Rule 5a
        try:
            m = decode_body(body)
        except MsgpackError as exc:
            raise Reject("bad_frame", str(exc)) from None
        # Rule 5b
        if "v" not in m or not _is_int(m["v"]) or m["v"] != 1:
            raise Reject("bad_version", f"body v = {m.get('v', '<absent>')!r}")
        # Rule 5c
        problems = []
        if not _bin16(m.get("id")):
            problems.append("id")
        if not _str_len_ok(m.get("iss"), 1, 128):
            problems.append("iss")
        if not _str_len_ok(m.get("sub"), 1, 256):
            problems.append("sub")
        if "aud" in m and not _str_len_ok(m["aud"], 1, 128):
            problems.append("aud")
        if not _str_len_ok(m.get("typ"), 1, 128):
            problems.append("typ")
        iat = m.get("iat")
        if not (_is_int(iat) and 0 <= iat <= IAT_MAX):
            problems.append("iat")
        if "cor" in m and not _bin16(m["cor"]):
            problems.append("cor")
        if "data" not in m:
            problems.append("data")
        if problems:
            raise Reject("bad_frame", "bad field(s): " + ", ".join(problems))
        # Rule 6
        signer_did = did_from_public_key(public_key)
        if m["iss"] != signer_did:
            raise Reject("issuer_mismatch", f"iss {m['iss']!r} != {signer_did!r}")
        # Rule 7
        if m["sub"] != subject:
            raise Reject("subject_mismatch", f"sub {m['sub']!r} != arrival {subject!r}")
        last_token = subject.rsplit(".", 1)[-1]
        if last_token != signer_did[len(DID_PREFIX):]:
            raise Reject("subject_mismatch", f"last token {last_token!r} is not the signer")
        # Rule 8 (only for receivers that have an identity)
        if self.own_did is not None and "aud" in m and m["aud"] != self.own_did:
            raise Reject("audience_mismatch", f"aud {m['aud']!r}")
        # Rules 9, 10 (inclusive bounds)
        if iat < now - self.window_ms:
            raise Reject("stale", f"iat {iat} < {now} - {self.window_ms}")
        if iat > now + self.window_ms:
            raise Reject("future", f"iat {iat} > {now} + {self.window_ms}")
        # Rule 11
        if self._below_floor(iat):
            raise Reject("stale", f"iat {iat} <= floor {self.floor}")
        # Rule 12
        key = (bytes(public_key), bytes(m["id"]))
        if key in self.memory:
            if self.signatures[key] == bytes(signature):
                raise Reject("replay")
            raise Reject("equivocation", "another frame with this (key, id) was accepted")
        # Accept: remember, bounded memory raises the floor.
        self._expire(now)
        if self.max_replay_entries is not None:
            while self.memory and len(self.memory) >= self.max_replay_entries:
                self._evict_oldest()
            if self._below_floor(iat):
                raise Reject("stale", f"iat {iat} <= floor {self.floor} after eviction")
            if self.max_replay_entries <= 0:  # degenerate: cannot remember anything
                raise Reject("stale", "replay memory has no room")
        self.memory[key] = iat
        self.signatures[key] = bytes(signature)
        return m


# --------------------------------------------------------------------------
# Vector checks (§12)
# --------------------------------------------------------------------------

POSITIVE_FIELDS = {
    "name", "note", "seed_hex", "public_key_hex", "did", "subject", "domain",
    "body_hex", "signature_hex", "frame_hex", "now_ms", "receiver_did",
    "max_frame_bytes", "fields",
}
NEGATIVE_FIELDS = {
    "name", "note", "frame_hex", "subject", "now_ms", "reason",
    "max_frame_bytes", "receiver_did", "max_replay_entries", "preceded_by",
}
REASONS = {
    "too_large", "bad_frame", "bad_version", "bad_signature", "issuer_mismatch",
    "subject_mismatch", "audience_mismatch", "stale", "future", "replay",
    "equivocation", "unsolicited",
}


def to_json_like(x):
    """Decoded MessagePack value -> the representation used in `fields`."""
    if type(x) is bytes:
        return {"$bin": x.hex()}
    if type(x) is list:
        return [to_json_like(e) for e in x]
    if type(x) is dict:
        return {k: to_json_like(v) for k, v in x.items()}
    return x


def same(a, b) -> bool:
    """Strict structural equality: bool, int, float, str kept apart."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is float:
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def decoded_fields(m: dict) -> dict:
    out = {"v": m["v"], "id_hex": m["id"].hex(), "iss": m["iss"], "sub": m["sub"]}
    if "aud" in m:
        out["aud"] = m["aud"]
    out["typ"] = m["typ"]
    out["iat"] = m["iat"]
    if "cor" in m:
        out["cor_hex"] = m["cor"].hex()
    out["data"] = to_json_like(m["data"])
    return out


def make_receiver(vec: dict, defaults: dict) -> Receiver:
    return Receiver(
        own_did=vec.get("receiver_did"),
        max_frame_bytes=vec.get("max_frame_bytes", defaults.get("max_frame_bytes", DEFAULT_MAX_FRAME)),
        window_ms=defaults.get("window_ms", DEFAULT_WINDOW_MS),
        max_replay_entries=vec.get("max_replay_entries"),
    )


def check_signer(s: dict) -> list[str]:
    errs = []
    seed = bytes.fromhex(s["seed_hex"])
    pub = public_key_from_seed(seed)
    if pub.hex() != s["public_key_hex"]:
        errs.append(f"public key: expected {s['public_key_hex']}, got {pub.hex()}")
    did = did_from_public_key(pub)
    if did != s["did"]:
        errs.append(f"did: expected {s['did']}, got {did}")
    if "agent_id" in s and agent_id_from_public_key(pub) != s["agent_id"]:
        errs.append(f"agent_id: expected {s['agent_id']}, got {agent_id_from_public_key(pub)}")
    try:
        if public_key_from_did(s["did"]) != pub:
            errs.append("DID does not decode back to the public key")
    except ValueError as exc:
        errs.append(f"DID rejected by the strict decoder: {exc}")
    return errs


def check_positive(vec: dict, defaults: dict) -> list[str]:
    errs = []
    unknown = set(vec) - POSITIVE_FIELDS
    if unknown:
        errs.append(f"vector has fields §12 does not document: {sorted(unknown)}")
    seed = bytes.fromhex(vec["seed_hex"])
    pub = public_key_from_seed(seed)
    if pub.hex() != vec["public_key_hex"]:
        errs.append(f"public key: expected {vec['public_key_hex']}, got {pub.hex()}")
    did = did_from_public_key(bytes.fromhex(vec["public_key_hex"]))
    if did != vec["did"]:
        errs.append(f"did: expected {vec['did']}, got {did}")
    domain = vec["domain"].encode("utf-8")
    if domain != SIGNING_PREFIX:
        errs.append(f"domain: expected {SIGNING_PREFIX!r}, got {domain!r}")
    body = bytes.fromhex(vec["body_hex"])
    sig = bytes.fromhex(vec["signature_hex"])
    frame = bytes.fromhex(vec["frame_hex"])
    expect_frame = bytes([FRAME_VERSION]) + bytes.fromhex(vec["public_key_hex"]) + sig + body
    if frame != expect_frame:
        errs.append("frame_hex != 01 || public_key || signature || body")
    if not ed25519_verify(bytes.fromhex(vec["public_key_hex"]), SIGNING_PREFIX + body, sig):
        errs.append("signature does not verify over domain || body")
    resig = sign(seed, SIGNING_PREFIX + body)
    if resig != sig:
        errs.append(f"re-signing: expected {sig.hex()}, got {resig.hex()}")
    rx = make_receiver(vec, defaults)
    try:
        m = rx.receive(frame, vec["subject"], vec["now_ms"])
    except Reject as rej:
        errs.append(f"expected accepted, got {rej.reason} ({rej.detail})")
        return errs
    if "fields" in vec:
        got = decoded_fields(m)
        want = vec["fields"]
        if not same(got, want):
            for k in sorted(set(got) | set(want)):
                if k not in got or k not in want or not same(got[k], want[k]):
                    errs.append(
                        f"field {k}: expected {json.dumps(want.get(k, '<absent>'), ensure_ascii=False)}, "
                        f"got {json.dumps(got.get(k, '<absent>'), ensure_ascii=False)}"
                    )
    return errs


def check_negative(vec: dict, defaults: dict) -> list[str]:
    errs = []
    unknown = set(vec) - NEGATIVE_FIELDS
    if unknown:
        errs.append(f"vector has fields §12 does not document: {sorted(unknown)}")
    if vec["reason"] not in REASONS:
        errs.append(f"reason {vec['reason']!r} is not a §8 reason code")
    rx = make_receiver(vec, defaults)
    for i, fh in enumerate(vec.get("preceded_by", [])):
        try:
            rx.receive(bytes.fromhex(fh), vec["subject"], vec["now_ms"])
        except Reject as rej:
            errs.append(f"preceded_by[{i}]: expected accepted, got {rej.reason} ({rej.detail})")
            return errs
    try:
        rx.receive(bytes.fromhex(vec["frame_hex"]), vec["subject"], vec["now_ms"])
    except Reject as rej:
        if rej.reason != vec["reason"]:
            errs.append(f"expected {vec['reason']}, got {rej.reason} ({rej.detail})")
    else:
        errs.append(f"expected {vec['reason']}, got accepted")
    return errs


def self_tests() -> list[tuple[str, list[str]]]:
    """Spec examples that are not in frames.json (§2.2 example, §2.2 DID checks)."""
    out = []
    errs = []
    pub = public_key_from_seed(bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    if pub.hex() != "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a":
        errs.append(f"§2.2 example public key: got {pub.hex()}")
    if did_from_public_key(pub) != "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw":
        errs.append(f"§2.2 example did: got {did_from_public_key(pub)}")
    good = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
    bad = [
        "did:key:Z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw",  # wrong multibase
        "did:web:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw",
        "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMs0",  # '0' not in alphabet
        "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMs",  # 33 bytes
        "did:key:z1" + good[len("did:key:z"):],  # leading '1' = extra zero byte
        "did:key:z" + b58encode(b"\xec\x01" + pub),  # wrong multicodec
    ]
    for d in bad:
        try:
            public_key_from_did(d)
            errs.append(f"§2.2 strict DID decoder accepted {d!r}")
        except ValueError:
            pass
    # §2.2: the DID of a key §5 refuses (the neutral element, y = p + 1) is refused too.
    for key in (bytes.fromhex("01" + "00" * 31), bytes.fromhex("ee" + "ff" * 30 + "7f")):
        try:
            public_key_from_did(did_from_public_key(key))
            errs.append(f"§2.2 DID decoder accepted the refused key {key.hex()}")
        except ValueError:
            pass
    out.append(("self-test/did-key", errs))
    out.extend(external_suites())
    return out


# §5 against the two external suites beside the repository (../shared/vectors/ed25519),
# when present: Wycheproof's 151 tests, and the 12 "Taming the many EdDSAs" cases, of
# which §5 accepts exactly cases 2 and 3.
SPECCHECK_ACCEPTED = {2, 3}


def external_suites() -> list[tuple[str, list[str]]]:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                        "shared", "vectors", "ed25519")
    wyche = os.path.join(root, "wycheproof_ed25519_test.json")
    spec = os.path.join(root, "speccheck_cases.json")
    if not (os.path.exists(wyche) and os.path.exists(spec)):
        sys.stderr.write(f"independent_check.py: {root} is absent; external suites skipped\n")
        return []
    errs = []
    with open(wyche, encoding="utf-8") as fh:
        groups = json.load(fh)["testGroups"]
    count = 0
    for g in groups:
        pk = bytes.fromhex(g["publicKey"]["pk"])
        for t in g["tests"]:
            count += 1
            got = ed25519_verify(pk, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]))
            if got != (t["result"] == "valid"):
                errs.append(f"wycheproof tcId {t['tcId']}: expected {t['result']}, got {got}")
    if count != 151:
        errs.append(f"wycheproof: {count} tests, expected 151")
    out = [("self-test/wycheproof", errs)]
    errs = []
    with open(spec, encoding="utf-8") as fh:
        cases = json.load(fh)
    for i, c in enumerate(cases):
        got = ed25519_verify(bytes.fromhex(c["pub_key"]), bytes.fromhex(c["message"]),
                             bytes.fromhex(c["signature"]))
        if got != (i in SPECCHECK_ACCEPTED):
            errs.append(f"speccheck case {i}: got {'accepted' if got else 'refused'}")
    out.append(("self-test/speccheck", errs))
    return out


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "frames.json")
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    defaults = doc.get("defaults", {})
    results: list[tuple[str, list[str]]] = []
    results.extend(self_tests())
    for s in doc.get("signers", []):
        results.append((f"signer/{s.get('name')}", _guard(check_signer, s)))
    for vec in doc.get("positive", []):
        results.append((f"positive/{vec.get('name')}", _guard(check_positive, vec, defaults)))
    for vec in doc.get("negative", []):
        results.append((f"negative/{vec.get('name')}", _guard(check_negative, vec, defaults)))
    passed = failed = 0
    for name, errs in results:
        if errs:
            failed += 1
            for e in errs:
                print(f"FAIL {name}: {e}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def _guard(fn, *args) -> list[str]:
    # "Never crash" (§7): an exception here is a bug of this checker or a
    # malformed vector file, reported as a failure of that vector.
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001
        return [f"checker raised {type(exc).__name__}: {exc}"]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
