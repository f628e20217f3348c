/**
 * Checks @trustmesh/protocol against the delegation test vectors
 * (docs/vectors/delegation.json, docs/delegation.md §10), the file against its
 * generator, and runs the independent Python implementation on it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CHAIN_REJECT_REASONS,
  MAX_TOKEN_BYTES,
  MIN_TOKEN_BYTES,
  TOKEN_HASH_DOMAIN,
  TOKEN_SIGNING_DOMAIN,
  decodeToken,
  fromHex,
  isScopeWithin,
  isValidPattern,
  keyFromSeed,
  patternContains,
  publicKeyFromDid,
  toHex,
  tokenHash,
  tokenSigningInput,
  verifyChain,
  verifyEvidence,
} from '@trustmesh/protocol';
import { forgeToken } from '../packages/protocol/src/delegation/forge.ts';
import { DELEGATION_VECTORS_PATH, renderDelegationVectors, type DelegationVectorFile } from '../docs/vectors/generate-delegation.ts';

const text = readFileSync(DELEGATION_VECTORS_PATH, 'utf8');
const file = JSON.parse(text) as DelegationVectorFile;
const seedOf = new Map(file.signers.map((s) => [s.name, s.seed_hex]));

describe('delegation vectors', () => {
  it('vectors - delegation.json is exactly what the generator produces from the current code', () => {
    expect(renderDelegationVectors()).toBe(text);
  });

  it('vectors - domains and signers', () => {
    expect([file.signing_domain, file.hash_domain]).toEqual([TOKEN_SIGNING_DOMAIN, TOKEN_HASH_DOMAIN]);
    for (const s of file.signers) {
      const key = keyFromSeed(fromHex(s.seed_hex));
      expect([toHex(key.publicKey), key.did]).toEqual([s.public_key_hex, s.did]);
    }
  });

  it('vectors - patterns and containment', () => {
    for (const p of file.patterns.valid) expect(isValidPattern(p), p).toBe(true);
    for (const p of file.patterns.invalid) expect(isValidPattern(p), JSON.stringify(p)).toBe(false);
    expect(file.patterns.invalid.length).toBeGreaterThan(10);
    for (const c of file.containment) expect(patternContains(c.outer, c.inner), `${c.inner} within ${c.outer}`).toBe(c.within);
    for (const c of file.scope_containment) expect(isScopeWithin(c.inner, c.outer)).toBe(c.within);
    expect(new Set(file.containment.map((c) => c.within))).toEqual(new Set([true, false]));
  });

  it('vectors - every positive link re-encodes from its fields to the same bytes, signature and hash; every chain verifies', () => {
    expect(file.positive.map((v) => v.links.length)).toEqual(expect.arrayContaining([1, 2, 3]));
    for (const v of file.positive) {
      for (const l of v.links) {
        const key = keyFromSeed(fromHex(seedOf.get(l.signer)!));
        const f = l.fields;
        const rebuilt = forgeToken(key, {
          issuerKey: publicKeyFromDid(f.issuer),
          audienceKey: publicKeyFromDid(f.audience),
          parent: f.parent_hex === null ? undefined : fromHex(f.parent_hex),
          nonce: fromHex(f.nonce_hex),
          notBefore: f.not_before,
          expiry: f.expiry,
          depth: f.depth,
          scope: f.scope,
        });
        expect(toHex(rebuilt), `${v.name} ${l.signer}`).toBe(l.token_hex);
        const payload = fromHex(l.payload_hex);
        expect(l.token_hex.startsWith(l.payload_hex)).toBe(true);
        expect(toHex(key.sign(tokenSigningInput(payload)))).toBe(l.token_hex.slice(l.payload_hex.length));
        expect(toHex(tokenHash(fromHex(l.token_hex)))).toBe(l.hash_hex);
        const decoded = decodeToken(fromHex(l.token_hex));
        expect(decoded.ok && [decoded.token.issuer, decoded.token.audience, decoded.token.scope, decoded.token.depth]).toEqual([
          f.issuer,
          f.audience,
          f.scope,
          f.depth,
        ]);
      }
      const verdict = verifyChain(
        v.links.map((l) => fromHex(l.token_hex)),
        {
          now: v.now_ms,
          rootAuthority: file.root_authority,
          maxDepth: v.max_depth ?? file.defaults.max_depth,
          audience: v.audience,
          requiredCapability: v.required_capability,
        },
      );
      expect(verdict.ok, `${v.name}: ${JSON.stringify(verdict)}`).toBe(true);
      if (verdict.ok) expect([verdict.holder, verdict.scope]).toEqual([v.holder, v.scope]);
    }
  });

  it('vectors - every negative chain is rejected with its reason, link and attribution; attributable ones are evidence a third party accepts', () => {
    for (const v of file.negative) {
      const verdict = verifyChain(v.chain_hex.map(fromHex), {
        now: v.now_ms,
        rootAuthority: file.root_authority,
        maxDepth: v.max_depth ?? file.defaults.max_depth,
        audience: v.audience,
        requiredCapability: v.required_capability,
      });
      expect(verdict.ok, v.name).toBe(false);
      if (verdict.ok) continue;
      expect({ name: v.name, reason: verdict.reason, link: verdict.link, blamed: verdict.attributableTo ?? null }).toEqual({
        name: v.name,
        reason: v.reason,
        link: v.link,
        blamed: v.attributable_to,
      });
      if (v.attributable_to !== null) {
        const evidence = verifyEvidence(fromHex(v.chain_hex[v.link - 1]!), fromHex(v.chain_hex[v.link]!));
        expect(evidence).toMatchObject({ attributable: true, issuer: v.attributable_to, reason: v.reason });
      }
    }
  });

  it('vectors - every reason code has a negative vector, and attributable ones include each link rule', () => {
    expect(new Set(file.negative.map((v) => v.reason))).toEqual(new Set(Object.keys(CHAIN_REJECT_REASONS)));
    const blamed = new Set(file.negative.filter((v) => v.attributable_to !== null).map((v) => v.reason));
    expect(blamed).toEqual(new Set(['broken_link', 'expiry_extended', 'depth_exceeded', 'scope_escalation']));
  });
});

describe('delegation doc', () => {
  const doc = readFileSync(fileURLToPath(new URL('../docs/delegation.md', import.meta.url)), 'utf8');

  it('doc - the reason table of docs/delegation.md §6.1 lists exactly the implementation codes', () => {
    const table = doc.slice(doc.indexOf('Reason codes:'), doc.indexOf('### 6.2'));
    const codes = [...table.matchAll(/^\| `([a-z_]+)`/gm)].map((m) => m[1]);
    expect(new Set(codes)).toEqual(new Set(Object.keys(CHAIN_REJECT_REASONS)));
  });

  it('doc - the constants of docs/delegation.md match the implementation', () => {
    expect(doc).toContain(`| token length          | ${MIN_TOKEN_BYTES} … ${MAX_TOKEN_BYTES}`);
    expect(doc).toContain(`So a token is ${MIN_TOKEN_BYTES} to ${MAX_TOKEN_BYTES} bytes long.`);
    expect(doc).toContain(`| signing prefix        | \`"${TOKEN_SIGNING_DOMAIN.replace('\n', '\\n')}"\` (17 bytes)`);
    expect(doc).toContain(`| hash prefix           | \`"${TOKEN_HASH_DOMAIN.replace('\n', '\\n')}"\` (22 bytes)`);
    expect(TOKEN_SIGNING_DOMAIN.length).toBe(17);
    expect(TOKEN_HASH_DOMAIN.length).toBe(22);
  });
});

/**
 * docs/vectors/independent_delegation_check.py implements docs/delegation.md in
 * Python (hashlib, and `cryptography` for Ed25519) and checks every vector.
 */
const script = fileURLToPath(new URL('../docs/vectors/independent_delegation_check.py', import.meta.url));
const python = spawnSync('python3', ['-c', 'import cryptography'], { encoding: 'utf8' });
const available = python.status === 0;

describe('delegation interop', () => {
  it.skipIf(!available)('interop - a Python implementation of docs/delegation.md passes every delegation vector', () => {
    const out = execFileSync('python3', [script], { encoding: 'utf8', timeout: 60_000 });
    const summary = out.trim().split('\n').at(-1)!;
    const match = /^(\d+) passed, (\d+) failed$/.exec(summary);
    expect(match, out).not.toBeNull();
    expect(Number(match![2]), out).toBe(0);
    const expected = file.patterns.valid.length + file.patterns.invalid.length + file.containment.length + file.scope_containment.length;
    expect(Number(match![1])).toBe(expected + file.positive.length + file.negative.length);
  });
  if (!available) {
    it('interop - skipped: python3 with the `cryptography` package is not available (pip install cryptography)', () => {
      expect(python.status).not.toBe(0);
    });
  }
});
