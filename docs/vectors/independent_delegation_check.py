#!/usr/bin/env python3
"""Second implementation of TrustMesh delegation (docs/delegation.md), in Python.

Written from docs/delegation.md (and protocol.md §2 for did:key), without
importing or translating the TypeScript reference. It was written by the same
engineer as the reference, so it shows that the document is complete enough
to implement, not that two independent readers agree; an implementation by
someone who has not read the reference remains the stronger test.

It implements:
  * did:key of an Ed25519 public key (protocol.md §2.2) with its own base58btc;
  * the pattern grammar (§3.1), pattern and scope containment (§3.2, §3.3);
  * the token layout (§4.1), signing input (§4.2), hash (§4.3), decoding (§4.4);
  * chain verification in the order of §6.1, with attribution (§7).

Then it checks every entry of delegation.json as §10 describes.

Usage: python3 docs/vectors/independent_delegation_check.py [path-to-delegation.json]
Prints one line per failing check, then "N passed, M failed".
Exit status: 0 if M == 0, 1 otherwise, 2 if `cryptography` is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
        "independent_delegation_check.py: the Python package `cryptography` is missing; "
        "install it (pip install cryptography) to run this check\n"
    )
    sys.exit(2)

# --------------------------------------------------------------------------
# Constants (Appendix A)
# --------------------------------------------------------------------------

VERSION = 0x01
SIGNING_PREFIX = b"trustmesh/cap/v1\n"
HASH_PREFIX = b"trustmesh/cap-hash/v1\n"
assert SIGNING_PREFIX.hex() == "74727573746d6573682f6361702f76310a"
assert HASH_PREFIX.hex() == "74727573746d6573682f6361702d686173682f76310a"
FIXED = 131
SIG = 64
MIN_TOKEN = 199
MAX_TOKEN = 8387
MAX_PATTERNS = 32
MAX_TIME = 2**53 - 1
ZERO32 = bytes(32)

# --------------------------------------------------------------------------
# did:key (protocol.md §2.2)
# --------------------------------------------------------------------------

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n > 0:
        n, r = divmod(n, 58)
        out = B58[r] + out
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + out


def did_of(public_key: bytes) -> str:
    return "did:key:z" + b58encode(b"\xed\x01" + public_key)


def key_of_did(did: str) -> bytes:
    assert did.startswith("did:key:z")
    n = 0
    for ch in did[len("did:key:z"):]:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes(34, "big")
    assert raw[:2] == b"\xed\x01" and did_of(raw[2:]) == did
    return raw[2:]


# --------------------------------------------------------------------------
# Patterns (§3)
# --------------------------------------------------------------------------

NAME = re.compile(r"[A-Za-z0-9._~-]+\Z")


def is_name(s: str) -> bool:
    return bool(NAME.match(s)) and s not in (".", "..")


def parse_pattern(text):
    """(action, [segments]) or None."""
    if not isinstance(text, str):
        return None
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        return None
    if not 3 <= len(raw) <= 255 or ":" not in text:
        return None
    action, resource = text.split(":", 1)
    if not (action == "*" or is_name(action)):
        return None
    segments = resource.split("/")
    for i, seg in enumerate(segments):
        if seg == "*" or is_name(seg):
            continue
        if seg == "**" and i == len(segments) - 1:
            continue
        return None
    return (action, segments)


def part_within(x: str, y: str) -> bool:
    return x != "**" and (y == "*" or x == y)


def pattern_within(inner, outer) -> bool:
    a0, a = inner
    b0, b = outer
    if not part_within(a0, b0):
        return False
    m, n = len(b), len(a)
    if b[-1] != "**":
        return n == m and all(part_within(a[i], b[i]) for i in range(m))
    return n >= m and all(part_within(a[i], b[i]) for i in range(m - 1))


def scope_within(inner, outer) -> bool:
    return all(any(pattern_within(p, q) for q in outer) for p in inner)


# --------------------------------------------------------------------------
# Tokens (§4)
# --------------------------------------------------------------------------


def encode_payload(issuer: bytes, audience: bytes, parent, nonce: bytes, not_before: int,
                   expiry: int, depth: int, scope) -> bytes:
    out = bytes([VERSION]) + issuer + audience + (parent if parent is not None else ZERO32) + nonce
    out += struct.pack(">QQBB", not_before, expiry, depth, len(scope))
    for p in scope:
        raw = p.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out


def token_hash(token: bytes) -> bytes:
    return hashlib.sha256(HASH_PREFIX + token).digest()


class Token:
    __slots__ = ("raw", "issuer", "audience", "parent", "not_before", "expiry", "depth",
                 "scope", "patterns", "payload", "signature", "hash")


def decode(raw) -> Token | None:
    """§4.4; None means bad_token."""
    if not isinstance(raw, bytes) or not MIN_TOKEN <= len(raw) <= MAX_TOKEN or raw[0] != VERSION:
        return None
    not_before, expiry, depth, count = struct.unpack_from(">QQBB", raw, 113)
    if not_before > MAX_TIME or expiry > MAX_TIME or not_before >= expiry:
        return None
    if not 1 <= count <= MAX_PATTERNS:
        return None
    end = len(raw) - SIG
    pos = FIXED
    scope, patterns = [], []
    for _ in range(count):
        if pos >= end:
            return None
        length = raw[pos]
        pos += 1
        if length == 0 or pos + length > end:
            return None
        try:
            text = raw[pos:pos + length].decode("ascii")
        except UnicodeDecodeError:
            return None
        parsed = parse_pattern(text)
        if parsed is None:
            return None
        scope.append(text)
        patterns.append(parsed)
        pos += length
    if pos != end:
        return None
    t = Token()
    t.raw = raw
    t.issuer = did_of(raw[1:33])
    t.audience = did_of(raw[33:65])
    t.parent = None if raw[65:97] == ZERO32 else raw[65:97]
    t.not_before, t.expiry, t.depth = not_before, expiry, depth
    t.scope, t.patterns = scope, patterns
    t.payload, t.signature = raw[:end], raw[end:]
    t.hash = token_hash(raw)
    return t


def signature_ok(t: Token) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(t.raw[1:33]).verify(t.signature, SIGNING_PREFIX + t.payload)
        return True
    except (InvalidSignature, ValueError):
        return False


# --------------------------------------------------------------------------
# Verification (§6) and attribution (§7)
# --------------------------------------------------------------------------


def verify(chain, now, authority, max_depth, audience=None, required=None):
    """Returns ("ok", holder, scope) or (reason, link, attributable_to_or_None)."""
    if len(chain) == 0:
        return ("bad_token", 0, None)
    if len(chain) - 1 > max_depth:
        return ("depth_exceeded", max_depth + 1, None)
    tokens = []
    for i, raw in enumerate(chain):
        t = decode(raw)
        if t is None:
            return ("bad_token", i, None)
        tokens.append(t)
    root, last = tokens[0], tokens[-1]
    held = authority.get(root.issuer)
    if held is None or not scope_within(root.patterns, [parse_pattern(p) for p in held]):
        return ("unknown_root", 0, None)
    for i, t in enumerate(tokens):
        if now < t.not_before:
            return ("not_yet_valid", i, None)
        if now >= t.expiry:
            return ("expired", i, None)
    if audience is not None and last.audience != audience:
        return ("wrong_audience", len(tokens) - 1, None)
    if required is not None and not scope_within([parse_pattern(required)], last.patterns):
        return ("capability_not_granted", len(tokens) - 1, None)
    for i, t in enumerate(tokens):
        if not signature_ok(t):
            return ("bad_signature", i, None)
    if root.parent is not None:
        return ("broken_link", 0, None)
    for i in range(1, len(tokens)):
        p, c = tokens[i - 1], tokens[i]
        if c.parent != p.hash:
            return ("broken_link", i, None)
        if c.issuer != p.audience:
            return ("broken_link", i, c.issuer)
        if c.expiry > p.expiry or c.not_before < p.not_before:
            return ("expiry_extended", i, c.issuer)
        if c.depth >= p.depth:
            return ("depth_exceeded", i, c.issuer)
        if not scope_within(c.patterns, p.patterns):
            return ("scope_escalation", i, c.issuer)
    return ("ok", last.audience, last.scope)


# --------------------------------------------------------------------------
# The vectors (§10)
# --------------------------------------------------------------------------


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "delegation.json")
    with open(path, encoding="utf-8") as fh:
        vectors = json.load(fh)
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {what}")

    assert vectors["signing_domain"].encode() == SIGNING_PREFIX
    assert vectors["hash_domain"].encode() == HASH_PREFIX
    seeds = {}
    for s in vectors["signers"]:
        sk = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s["seed_hex"]))
        pk = sk.public_key().public_bytes_raw()
        assert pk.hex() == s["public_key_hex"] and did_of(pk) == s["did"], s["name"]
        seeds[s["name"]] = sk
    authority = vectors["root_authority"]
    default_depth = vectors["defaults"]["max_depth"]

    for p in vectors["patterns"]["valid"]:
        check(parse_pattern(p) is not None, f"pattern {p!r} should be valid")
    for p in vectors["patterns"]["invalid"]:
        check(parse_pattern(p) is None, f"pattern {p!r} should be invalid")
    for c in vectors["containment"]:
        got = pattern_within(parse_pattern(c["inner"]), parse_pattern(c["outer"]))
        check(got == c["within"], f"containment {c['inner']} within {c['outer']}: got {got}")
    for c in vectors["scope_containment"]:
        got = scope_within([parse_pattern(p) for p in c["inner"]], [parse_pattern(p) for p in c["outer"]])
        check(got == c["within"], f"scope containment {c['inner']} within {c['outer']}: got {got}")

    for v in vectors["positive"]:
        problems = []
        for link in v["links"]:
            f = link["fields"]
            payload = encode_payload(
                key_of_did(f["issuer"]), key_of_did(f["audience"]),
                None if f["parent_hex"] is None else bytes.fromhex(f["parent_hex"]),
                bytes.fromhex(f["nonce_hex"]), f["not_before"], f["expiry"], f["depth"], f["scope"],
            )
            token = payload + seeds[link["signer"]].sign(SIGNING_PREFIX + payload)
            if payload.hex() != link["payload_hex"]:
                problems.append(f"payload of {link['signer']}'s link")
            if token.hex() != link["token_hex"]:
                problems.append(f"token of {link['signer']}'s link")
            if token_hash(token).hex() != link["hash_hex"]:
                problems.append(f"hash of {link['signer']}'s link")
        result = verify([bytes.fromhex(l["token_hex"]) for l in v["links"]], v["now_ms"], authority,
                        v.get("max_depth", default_depth), v.get("audience"), v.get("required_capability"))
        if result != ("ok", v["holder"], v["scope"]):
            problems.append(f"verify gave {result[:2]}")
        check(not problems, f"positive {v['name']}: {', '.join(problems)}")

    for v in vectors["negative"]:
        result = verify([bytes.fromhex(h) for h in v["chain_hex"]], v["now_ms"], authority,
                        v.get("max_depth", default_depth), v.get("audience"), v.get("required_capability"))
        expected = (v["reason"], v["link"], v["attributable_to"])
        check(result == expected, f"negative {v['name']}: expected {expected}, got {result}")

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
