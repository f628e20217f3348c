/**
 * Capability tokens and chains (docs/delegation.md §4–§7): encoding, issuing,
 * every rejection reason with its link and attribution, never throwing on
 * attacker bytes, and the verified-token cache.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CHAIN_REJECT_REASONS,
  DelegationError,
  InvalidArgumentError,
  KeyError,
  SIGNING_DOMAIN,
  TOKEN_HASH_DOMAIN,
  TOKEN_SIGNING_DOMAIN,
  TokenCache,
  decodeToken,
  delegate,
  isChainRejectReason,
  issueRootToken,
  keyFromSeed,
  nodeEd25519,
  tokenSigningInput,
  verifyChain,
  verifyEvidence,
  type AgentKey,
  type CapabilityToken,
  type ChainRejectReason,
  type ChainRejected,
  type Ed25519Backend,
  type TokenFields,
  type VerifyChainOptions,
} from '@trustmesh/protocol';
import { flipBit, forgeToken } from '../src/delegation/forge.ts';

const key = (name: string): AgentKey => keyFromSeed(createHash('sha256').update(`delegation test ${name}`).digest());
const alice = key('alice'); // root authority
const bob = key('bob');
const carol = key('carol');
const dave = key('dave');
const mallory = key('mallory');

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const NOW = T0 + 60_000;
const nonce = (n: number) => new Uint8Array(16).fill(n);
const authority = { [alice.did]: ['read:docs/**', 'write:docs/drafts/*', 'fetch:web/**'] };

function options(extra: Partial<VerifyChainOptions> = {}): VerifyChainOptions {
  return { now: NOW, rootAuthority: authority, maxDepth: 3, ...extra };
}

/** alice -> bob -> carol -> dave, each narrower. */
function threeHops(): CapabilityToken[] {
  const root = issueRootToken(alice, {
    audience: bob.did,
    scope: ['read:docs/**', 'fetch:web/*'],
    notBefore: T0,
    expiry: T0 + 3_600_000,
    depth: 3,
    nonce: nonce(1),
  });
  const second = delegate(root, bob, { audience: carol.did, scope: ['read:docs/reports/**'], expiry: T0 + 1_800_000, nonce: nonce(2) });
  const third = delegate(second, carol, { audience: dave.did, scope: ['read:docs/reports/*'], nonce: nonce(3) });
  return [root, second, third];
}

const bytesOf = (chain: CapabilityToken[]) => chain.map((t) => t.bytes);

/** The fields of a decoded token, to forge a variant of it. */
function fieldsOf(t: CapabilityToken): TokenFields {
  return {
    issuerKey: t.issuerKey,
    audienceKey: t.audienceKey,
    parent: t.parent,
    nonce: t.nonce,
    notBefore: t.notBefore,
    expiry: t.expiry,
    depth: t.depth,
    scope: t.scope,
  };
}

function expectRejected(
  chain: Uint8Array[],
  reason: ChainRejectReason,
  link: number,
  blamed?: AgentKey,
  extra: Partial<VerifyChainOptions> = {},
) {
  const verdict = verifyChain(chain, options(extra));
  expect(verdict.ok, JSON.stringify(verdict)).toBe(false);
  const rejected = verdict as ChainRejected;
  expect({ reason: rejected.reason, link: rejected.link, blamed: rejected.attributableTo }).toEqual({ reason, link, blamed: blamed?.did });
  return rejected;
}

function countingBackend(): Ed25519Backend & { count: number } {
  const counter = {
    ...nodeEd25519,
    count: 0,
    verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) {
      counter.count++;
      return nodeEd25519.verify(publicKey, message, signature);
    },
  };
  return counter;
}

describe('delegation tokens', () => {
  it('tokens - a token decodes to the fields it was issued with; its hash and signature use their own domains', () => {
    const [root, second] = threeHops();
    const decoded = decodeToken(second!.bytes);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const t = decoded.token;
    expect([t.issuer, t.audience, t.scope, t.notBefore, t.expiry, t.depth]).toEqual([
      bob.did,
      carol.did,
      ['read:docs/reports/**'],
      T0,
      T0 + 1_800_000,
      2,
    ]);
    expect(t.parent).toEqual(root!.hash);
    expect(root!.parent).toBeUndefined();
    expect(t.nonce).toEqual(nonce(2));
    expect(t.hash).toEqual(new Uint8Array(createHash('sha256').update(TOKEN_HASH_DOMAIN).update(t.bytes).digest()));
    const payload = t.bytes.subarray(0, t.bytes.length - 64);
    expect(nodeEd25519.verify(bob.publicKey, tokenSigningInput(payload), t.signature)).toBe(true);
    expect(Buffer.from(tokenSigningInput(payload).subarray(0, 17)).toString()).toBe('trustmesh/cap/v1\n');
  });

  it('tokens - the signing domain is not a frame signing input: neither prefix is a prefix of the other', () => {
    expect(TOKEN_SIGNING_DOMAIN.startsWith(SIGNING_DOMAIN)).toBe(false);
    expect(SIGNING_DOMAIN.startsWith(TOKEN_SIGNING_DOMAIN)).toBe(false);
    expect(TOKEN_HASH_DOMAIN.startsWith(TOKEN_SIGNING_DOMAIN)).toBe(false);
  });

  it('tokens - decoding never throws: every truncation, every bit flip, random bytes', () => {
    const [, second] = threeHops();
    const bytes = second!.bytes;
    for (let n = 0; n < bytes.length; n++) expect(decodeToken(bytes.subarray(0, n)).ok).toBe(false);
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) expect(() => decodeToken(flipBit(bytes, i, bit))).not.toThrow();
    }
    for (let i = 0; i < 2000; i++) {
      const random = new Uint8Array(Math.floor(Math.random() * 400));
      for (let j = 0; j < random.length; j++) random[j] = Math.floor(Math.random() * 256);
      random[0] = 1;
      expect(() => decodeToken(random)).not.toThrow();
    }
    for (const junk of [undefined, null, 'token', 42, {}, [1, 2, 3]]) expect(decodeToken(junk).ok).toBe(false);
  });

  it('tokens - malformed layouts are refused by the decoder', () => {
    const [root] = threeHops();
    const f = fieldsOf(root!);
    const cases: [string, Uint8Array][] = [
      ['version 2', forgeToken(alice, f, { editPayload: (p) => Uint8Array.from([2, ...p.subarray(1)]) })],
      ['not-before equals expiry', forgeToken(alice, { ...f, notBefore: f.expiry })],
      ['expiry beyond 2^53 - 1', forgeToken(alice, { ...f, expiry: 2 ** 53 })],
      ['empty scope', forgeToken(alice, { ...f, scope: [] })],
      ['invalid pattern', forgeToken(alice, { ...f, scope: ['read:docs/**/x'] })],
      ['33 patterns', forgeToken(alice, { ...f, scope: Array(33).fill('read:a') })],
      ['trailing byte', forgeToken(alice, f, { editPayload: (p) => Uint8Array.from([...p, 0]) })],
      [
        'zero-length pattern',
        forgeToken(alice, f, { editPayload: (p) => Uint8Array.from([...p.subarray(0, 130), 2, 0, ...p.subarray(131)]) }),
      ],
    ];
    for (const [name, bytes] of cases) expect(decodeToken(bytes).ok, name).toBe(false);
  });
});

describe('delegation issuing', () => {
  it('issuing - delegate refuses widening, longer validity, more depth and a delegator that is not the audience, with typed errors', () => {
    const [root, second, third] = threeHops();
    const refused = (fn: () => unknown, code: string) => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(DelegationError);
        expect((err as DelegationError).code).toBe(code);
        return;
      }
      expect.unreachable(`no ${code} error`);
    };
    refused(() => delegate(root!, bob, { audience: carol.did, scope: ['write:docs/a'] }), 'scope_escalation');
    refused(() => delegate(root!, bob, { audience: carol.did, scope: ['read:docs/a', 'fetch:web/**'] }), 'scope_escalation');
    refused(() => delegate(second!, carol, { audience: dave.did, expiry: second!.expiry + 1 }), 'expiry_extended');
    refused(() => delegate(second!, carol, { audience: dave.did, notBefore: second!.notBefore - 1 }), 'expiry_extended');
    refused(() => delegate(second!, carol, { audience: dave.did, depth: second!.depth }), 'depth_exceeded');
    refused(() => delegate(root!, mallory, { audience: carol.did }), 'broken_link');
    const leaf = delegate(third!, dave, { audience: mallory.did, depth: 0 });
    refused(() => delegate(leaf, mallory, { audience: alice.did }), 'depth_exceeded');
  });

  it('issuing - bad arguments are misuse errors', () => {
    const base = { audience: bob.did, scope: ['read:docs/a'], expiry: T0 + 1000, notBefore: T0 };
    expect(() => issueRootToken(alice, { ...base, scope: ['read:docs/'] })).toThrow(InvalidArgumentError);
    expect(() => issueRootToken(alice, { ...base, scope: [] })).toThrow(InvalidArgumentError);
    expect(() => issueRootToken(alice, { ...base, expiry: T0 })).toThrow(InvalidArgumentError);
    expect(() => issueRootToken(alice, { ...base, depth: 256 })).toThrow(InvalidArgumentError);
    expect(() => issueRootToken(alice, { ...base, nonce: new Uint8Array(15) })).toThrow(InvalidArgumentError);
    expect(() => issueRootToken(alice, { ...base, audience: 'did:key:nope' })).toThrow(KeyError);
  });

  it('issuing - defaults: random nonce, not-before 30 s before now, depth 3, a child inherits and decrements', () => {
    const a = issueRootToken(alice, { audience: bob.did, scope: ['read:docs/a'], expiry: NOW + 1000, now: NOW });
    const b = issueRootToken(alice, { audience: bob.did, scope: ['read:docs/a'], expiry: NOW + 1000, now: NOW });
    expect(a.nonce).not.toEqual(b.nonce);
    expect([a.notBefore, a.depth]).toEqual([NOW - 30_000, 3]);
    const child = delegate(a, bob, { audience: carol.did });
    expect([child.scope, child.notBefore, child.expiry, child.depth]).toEqual([a.scope, a.notBefore, a.expiry, 2]);
  });
});

describe('delegation chains', () => {
  it('chains - one, two and three hops verify, naming root, holder and scope', () => {
    const chain = threeHops();
    for (let n = 1; n <= 3; n++) {
      const holder = [bob, carol, dave][n - 1]!;
      const verdict = verifyChain(
        bytesOf(chain.slice(0, n)),
        options({ audience: holder.did, requiredCapability: 'read:docs/reports/q3' }),
      );
      expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
      if (verdict.ok) expect([verdict.root, verdict.holder, verdict.scope]).toEqual([alice.did, holder.did, chain[n - 1]!.scope]);
    }
  });

  it('chains - bad_token: empty chain, a truncated link, a signed but malformed link', () => {
    const chain = bytesOf(threeHops());
    expectRejected([], 'bad_token', 0);
    expectRejected([chain[0]!, chain[1]!.subarray(0, 100)], 'bad_token', 1);
    expectRejected([chain[0]!, 'x' as unknown as Uint8Array], 'bad_token', 1);
    const f = fieldsOf(decodeOk(chain[1]!));
    expectRejected([chain[0]!, forgeToken(bob, { ...f, scope: ['read:docs/**/x'] })], 'bad_token', 1);
  });

  it('chains - unknown_root: an issuer the mesh does not name, or a root scope beyond what it holds', () => {
    const [root] = threeHops();
    const f = fieldsOf(root!);
    expectRejected([forgeToken(mallory, { ...f, issuerKey: mallory.publicKey })], 'unknown_root', 0);
    expectRejected([forgeToken(alice, { ...f, scope: ['write:docs/**'] })], 'unknown_root', 0);
  });

  it('chains - expired and not_yet_valid, at the exact edges', () => {
    const chain = bytesOf(threeHops());
    const [root, second] = threeHops();
    expectRejected(chain, 'not_yet_valid', 0, undefined, { now: T0 - 1 });
    expect(verifyChain(chain, options({ now: T0 })).ok).toBe(true);
    expect(verifyChain(chain, options({ now: second!.expiry - 1 })).ok).toBe(true);
    expectRejected(chain, 'expired', 1, undefined, { now: second!.expiry });
    expectRejected(chain, 'expired', 0, undefined, { now: root!.expiry });
  });

  it('chains - wrong_audience and capability_not_granted', () => {
    const chain = bytesOf(threeHops());
    expectRejected(chain, 'wrong_audience', 2, undefined, { audience: carol.did });
    expectRejected(chain, 'capability_not_granted', 2, undefined, { requiredCapability: 'read:docs/reports/q3/x' });
    expectRejected(chain, 'capability_not_granted', 2, undefined, { requiredCapability: 'write:docs/reports/q3' });
    expect(verifyChain(chain, options({ requiredCapability: 'read:docs/reports/*' })).ok).toBe(true);
  });

  it('chains - bad_signature: a flipped signature bit, a payload changed after signing, another key; evidence against nobody', () => {
    const chain = bytesOf(threeHops());
    expectRejected([chain[0]!, flipBit(chain[1]!, chain[1]!.length - 1), chain[2]!], 'bad_signature', 1);
    expectRejected([chain[0]!, chain[1]!, flipBit(chain[2]!, 100)], 'bad_signature', 2); // nonce byte
    const f = fieldsOf(decodeOk(chain[1]!));
    expectRejected([chain[0]!, forgeToken(mallory, f), chain[2]!], 'bad_signature', 1);
  });

  it('chains - broken_link: spliced parent (nobody to blame), a root with a parent, an issuer who is not the audience (blamed)', () => {
    const [root, second, third] = threeHops();
    const otherRoot = issueRootToken(alice, {
      audience: bob.did,
      scope: ['read:docs/**'],
      notBefore: T0,
      expiry: T0 + 3_600_000,
      nonce: nonce(9),
    });
    expectRejected([otherRoot.bytes, second!.bytes, third!.bytes], 'broken_link', 1);
    expectRejected([forgeToken(alice, { ...fieldsOf(root!), parent: second!.hash })], 'broken_link', 0);
    // mallory signs a child of bob's token: right parent hash, wrong delegator.
    const stolen = forgeToken(mallory, { ...fieldsOf(second!), issuerKey: mallory.publicKey, parent: root!.hash });
    const verdict = expectRejected([root!.bytes, stolen], 'broken_link', 1, mallory);
    expect(verdict.evidence).toEqual({ parent: root!.bytes, token: stolen });
  });

  it('chains - scope_escalation: the widening link is blamed on its signer, with the evidence', () => {
    const [root, second, third] = threeHops();
    const widened = forgeToken(carol, { ...fieldsOf(third!), scope: ['read:docs/**'] });
    const verdict = expectRejected([root!.bytes, second!.bytes, widened], 'scope_escalation', 2, carol);
    expect(verifyEvidence(verdict.evidence!.parent, verdict.evidence!.token)).toMatchObject({
      attributable: true,
      issuer: carol.did,
      reason: 'scope_escalation',
    });
    // Adding a pattern, or a wildcard action, widens too.
    expectRejected(
      [root!.bytes, second!.bytes, forgeToken(carol, { ...fieldsOf(third!), scope: ['read:docs/reports/*', 'fetch:web/a'] })],
      'scope_escalation',
      2,
      carol,
    );
    expectRejected([root!.bytes, forgeToken(bob, { ...fieldsOf(second!), scope: ['*:docs/reports/**'] })], 'scope_escalation', 1, bob);
  });

  it('chains - expiry_extended: a later expiry or an earlier not-before, blamed on the signer', () => {
    const [root, second] = threeHops();
    // Still inside the root's validity at NOW, so the clock checks pass and the link rule decides.
    expectRejected([root!.bytes, forgeToken(bob, { ...fieldsOf(second!), expiry: root!.expiry + 1 })], 'expiry_extended', 1, bob);
    expectRejected([root!.bytes, forgeToken(bob, { ...fieldsOf(second!), notBefore: root!.notBefore - 1 })], 'expiry_extended', 1, bob);
  });

  it('chains - depth_exceeded: a depth not below the parent (blamed), a chain longer than the verifier allows (not blamed)', () => {
    const [root, second, third] = threeHops();
    expectRejected([root!.bytes, forgeToken(bob, { ...fieldsOf(second!), depth: 3 })], 'depth_exceeded', 1, bob);
    const leaf = delegate(third!, dave, { audience: mallory.did, depth: 0, nonce: nonce(4) });
    const beyond = forgeToken(mallory, {
      ...fieldsOf(leaf),
      issuerKey: mallory.publicKey,
      audienceKey: alice.publicKey,
      parent: leaf.hash,
      depth: 0,
    });
    expectRejected([...bytesOf([root!, second!, third!, leaf]), beyond], 'depth_exceeded', 4, undefined, { maxDepth: 3 });
    expectRejected([...bytesOf([root!, second!, third!, leaf]), beyond], 'depth_exceeded', 4, mallory, { maxDepth: 4 });
    expectRejected(bytesOf([root!, second!, third!]), 'depth_exceeded', 2, undefined, { maxDepth: 1 });
  });

  it('chains - verification never throws on attacker bytes: every bit flip of every link, junk items', () => {
    const chain = bytesOf(threeHops());
    const seen = new Set<string>();
    for (let link = 0; link < chain.length; link++) {
      for (let i = 0; i < chain[link]!.length; i++) {
        const broken = chain.slice();
        broken[link] = flipBit(chain[link]!, i, i % 8);
        const verdict = verifyChain(broken, options());
        expect(verdict.ok).toBe(false);
        if (!verdict.ok) {
          expect(isChainRejectReason(verdict.reason)).toBe(true);
          expect(verdict.attributableTo).toBeUndefined();
          seen.add(verdict.reason);
        }
      }
    }
    expect(seen.has('bad_signature')).toBe(true);
    // Random bytes shaped like a token (version 1, plausible length and count) after a valid root.
    for (let i = 0; i < 2000; i++) {
      const random = new Uint8Array(199 + Math.floor(Math.random() * 300)).map(() => Math.floor(Math.random() * 256));
      random[0] = 1;
      random[130] = 1 + (i % 3);
      const verdict = verifyChain([chain[0]!, random], options());
      expect(verdict.ok).toBe(false);
    }
    for (const junk of [null, undefined, 'x', [null], [new Uint8Array(0)], [{ length: 300 }], new Uint8Array(10)]) {
      const verdict = verifyChain(junk as unknown as Uint8Array[], options());
      expect(verdict.ok).toBe(false);
    }
  });

  it('chains - options are the caller’s: invalid ones throw InvalidArgumentError', () => {
    const chain = bytesOf(threeHops());
    expect(() => verifyChain(chain, options({ maxDepth: -1 }))).toThrow(InvalidArgumentError);
    expect(() => verifyChain(chain, options({ now: Number.NaN }))).toThrow(InvalidArgumentError);
    expect(() => verifyChain(chain, options({ requiredCapability: 'read' }))).toThrow(InvalidArgumentError);
    expect(() => verifyChain(chain, options({ rootAuthority: { [alice.did]: ['nope'] } }))).toThrow(InvalidArgumentError);
  });

  it('chains - every reason code in the table is produced by some test above', () => {
    expect(Object.keys(CHAIN_REJECT_REASONS).sort()).toEqual(
      [
        'bad_token',
        'unknown_root',
        'not_yet_valid',
        'expired',
        'wrong_audience',
        'capability_not_granted',
        'bad_signature',
        'broken_link',
        'expiry_extended',
        'depth_exceeded',
        'scope_escalation',
      ].sort(),
    );
  });
});

describe('delegation cache', () => {
  it('cache - a chain seen before costs no signature check; a new link costs one', () => {
    const [root, second, third] = threeHops();
    const backend = countingBackend();
    const cache = new TokenCache(16);
    expect(verifyChain(bytesOf([root!, second!, third!]), options({ cache, backend })).ok).toBe(true);
    expect(backend.count).toBe(3);
    expect(verifyChain(bytesOf([root!, second!, third!]), options({ cache, backend })).ok).toBe(true);
    expect(backend.count).toBe(3);
    const sibling = delegate(second!, carol, { audience: mallory.did, scope: ['read:docs/reports/a'], nonce: nonce(7) });
    expect(verifyChain(bytesOf([root!, second!, sibling]), options({ cache, backend })).ok).toBe(true);
    expect(backend.count).toBe(4);
    expect(cache.hits).toBe(5);
  });

  it('cache - a cached link does not excuse a changed one: a different signature is a different hash', () => {
    const chain = bytesOf(threeHops());
    const cache = new TokenCache();
    expect(verifyChain(chain, options({ cache })).ok).toBe(true);
    expectRejected([chain[0]!, flipBit(chain[1]!, chain[1]!.length - 5), chain[2]!], 'bad_signature', 1, undefined, { cache });
    // The link rules still run on cached links: a cached token in the wrong place is refused.
    expectRejected([chain[0]!, chain[2]!], 'broken_link', 1, undefined, { cache });
  });

  it('cache - only verified tokens are remembered, and the cache stays within its bound', () => {
    const backend = countingBackend();
    const cache = new TokenCache(2);
    const chain = bytesOf(threeHops());
    const forged = [chain[0]!, flipBit(chain[1]!, chain[1]!.length - 1)];
    verifyChain(forged, options({ cache, backend }));
    verifyChain(forged, options({ cache, backend }));
    // First run: root verified and remembered, link 1 fails. Second run: only link 1 is checked again.
    expect(backend.count).toBe(3);
    for (let i = 0; i < 20; i++) {
      const root = issueRootToken(alice, {
        audience: bob.did,
        scope: ['read:docs/a'],
        notBefore: T0,
        expiry: T0 + 3_600_000,
        nonce: nonce(100 + i),
      });
      verifyChain([root.bytes], options({ cache }));
      expect(cache.size).toBeLessThanOrEqual(2);
    }
  });
});

function decodeOk(bytes: Uint8Array): CapabilityToken {
  const decoded = decodeToken(bytes);
  if (!decoded.ok) throw new Error(decoded.detail);
  return decoded.token;
}

describe('delegation random', () => {
  /** Deterministic PRNG (mulberry32), so a failure reproduces. */
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const next = rng(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const pattern = () => {
    const segments = Array.from({ length: 1 + Math.floor(next() * 3) }, () => pick(['a', 'b', '*']));
    if (next() < 0.3) segments[segments.length - 1] = '**';
    return `${pick(['read', 'write', '*'])}:${segments.join('/')}`;
  };
  const scope = () => Array.from({ length: 1 + Math.floor(next() * 3) }, pattern);
  const everything = { [alice.did]: ['*:**'] };

  it('random - delegate refuses exactly the children verifyChain rejects, with the same reason, blamed on the delegator', () => {
    const counts = { accepted: 0, refused: 0 };
    for (let i = 0; i < 300; i++) {
      const root = issueRootToken(alice, {
        audience: bob.did,
        scope: scope(),
        notBefore: T0,
        expiry: T0 + 3_600_000,
        depth: 2,
        nonce: nonce(i % 256),
      });
      const init = {
        audience: carol.did,
        scope: scope(),
        expiry: root.expiry + pick([-1000, 0, 0, 0, 1]),
        notBefore: root.notBefore + pick([-1, 0, 0, 0, 1000]),
        depth: pick([0, 1, 1, 1, 2]),
        nonce: nonce(i % 256),
      };
      let refused: DelegationError | undefined;
      let child: Uint8Array;
      try {
        child = delegate(root, bob, init).bytes;
      } catch (err) {
        if (!(err instanceof DelegationError)) throw err;
        refused = err;
        child = forgeToken(bob, { ...fieldsOf(root), ...init, audienceKey: carol.publicKey, issuerKey: bob.publicKey, parent: root.hash });
      }
      const verdict = verifyChain([root.bytes, child], { now: T0 + 1000, rootAuthority: everything, maxDepth: 3 });
      if (refused === undefined) {
        counts.accepted++;
        expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
      } else {
        counts.refused++;
        expect(verdict).toMatchObject({ ok: false, reason: refused.code, link: 1, attributableTo: bob.did });
      }
    }
    expect(counts.accepted).toBeGreaterThan(20);
    expect(counts.refused).toBeGreaterThan(20);
  });

  it('random - chains spliced from links of other chains never throw and are accepted only when each link names its predecessor', () => {
    const pool: CapabilityToken[] = [];
    for (let i = 0; i < 6; i++) {
      const root = issueRootToken(alice, {
        audience: bob.did,
        scope: ['read:docs/**'],
        notBefore: T0,
        expiry: T0 + 3_600_000,
        nonce: nonce(i),
      });
      const second = delegate(root, bob, { audience: carol.did, scope: ['read:docs/a/**'], nonce: nonce(i) });
      const third = delegate(second, carol, { audience: dave.did, scope: ['read:docs/a/*'], nonce: nonce(i) });
      pool.push(root, second, third);
    }
    let ok = 0;
    for (let i = 0; i < 2000; i++) {
      const chain = Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(pool));
      const verdict = verifyChain(bytesOf(chain), options({ rootAuthority: everything }));
      const linked =
        chain[0]!.parent === undefined && chain.every((t, j) => j === 0 || Buffer.from(t.parent ?? []).equals(chain[j - 1]!.hash));
      expect(verdict.ok).toBe(linked);
      if (verdict.ok) ok++;
      else expect(verdict.attributableTo).toBeUndefined();
    }
    expect(ok).toBeGreaterThan(50);
  });
});
