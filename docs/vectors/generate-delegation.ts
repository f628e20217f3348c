/**
 * Deterministic generator of the delegation test vectors (docs/delegation.md §10).
 *
 *   npx tsx docs/vectors/generate-delegation.ts
 *
 * writes docs/vectors/delegation.json. Seeds, nonces and times are fixed and
 * Ed25519 is deterministic, so two runs give byte-identical output;
 * test/delegation-vectors.spec.ts checks that `renderDelegationVectors()` equals
 * the checked-in file and that the reference passes every vector.
 *
 * Well-formed tokens come from the real issuing API (`issueRootToken`,
 * `delegate`), which refuses every violation; tokens a correct issuer never
 * signs are built with the test forge, so that the rule under test is the
 * first one they break.
 */
import { createHash } from 'node:crypto';
import { realpathSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TOKEN_HASH_DOMAIN,
  TOKEN_SIGNING_DOMAIN,
  delegate,
  fromHex,
  isScopeWithin,
  isValidPattern,
  issueRootToken,
  keyFromSeed,
  patternContains,
  toHex,
  type AgentKey,
  type CapabilityToken,
  type ChainRejectReason,
  type TokenFields,
} from '@trustmesh/protocol';
import { flipBit, forgeToken } from '../../packages/protocol/src/delegation/forge.ts';
import { encodePayload } from '../../packages/protocol/src/delegation/token.ts';

// ---------------------------------------------------------------------------
// File format

export interface LinkVector {
  signer: string;
  fields: {
    issuer: string;
    audience: string;
    parent_hex: string | null;
    nonce_hex: string;
    not_before: number;
    expiry: number;
    depth: number;
    scope: string[];
  };
  payload_hex: string;
  token_hex: string;
  hash_hex: string;
}

export interface PositiveVector {
  name: string;
  note: string;
  now_ms: number;
  audience?: string;
  required_capability?: string;
  max_depth?: number;
  holder: string;
  scope: string[];
  links: LinkVector[];
}

export interface NegativeVector {
  name: string;
  note: string;
  chain_hex: string[];
  now_ms: number;
  audience?: string;
  required_capability?: string;
  max_depth?: number;
  reason: ChainRejectReason;
  link: number;
  attributable_to: string | null;
}

export interface DelegationVectorFile {
  description: string;
  spec: string;
  signing_domain: string;
  hash_domain: string;
  signers: { name: string; seed_hex: string; public_key_hex: string; did: string }[];
  root_authority: Record<string, string[]>;
  defaults: { max_depth: number };
  patterns: { valid: string[]; invalid: string[] };
  containment: { outer: string; inner: string; within: boolean }[];
  scope_containment: { outer: string[]; inner: string[]; within: boolean }[];
  positive: PositiveVector[];
  negative: NegativeVector[];
}

// ---------------------------------------------------------------------------
// Fixed inputs

const SEEDS: Record<string, string> = {
  alice: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', // RFC 8032 §7.1 TEST 1
  bob: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', // TEST 2
  carol: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', // TEST 3
  dave: createHash('sha256').update('trustmesh vector dave').digest('hex'),
  mallory: createHash('sha256').update('trustmesh vector mallory').digest('hex'),
};

/** 2026-01-01T00:00:00.000Z */
const T0 = 1_767_225_600_000;
const HOUR = 3_600_000;
const NOW = T0 + 60_000;
const MAX_DEPTH = 3;
const nonce = (n: number) => new Uint8Array(16).fill(n);

const VALID_PATTERNS = [
  'read:docs',
  'read:docs/a',
  'read:docs/*',
  'read:docs/**',
  '*:docs/a',
  '*:**',
  'read:*/b',
  'read:a/*/**',
  'a-b_c.d~e:X-1/y.z',
];
const INVALID_PATTERNS = [
  '',
  'read',
  ':docs',
  'read:',
  'read:/docs',
  'read:docs/',
  'read:docs//a',
  'read:docs/**/a',
  '**:docs',
  'read:do*',
  'read:docs/*a',
  're ad:docs',
  'read:docs/..',
  'read:./docs',
  'read:x:y',
  'read:dócs',
  `read:${'a'.repeat(251)}`,
];
const CONTAINMENT: [outer: string, inner: string][] = [
  ['read:docs/*', 'read:docs/a'],
  ['read:docs/*', 'write:docs/a'],
  ['read:docs/*', 'read:docs/a/b'],
  ['read:docs/*', 'read:docs'],
  ['read:docs/*', 'read:docs/*'],
  ['read:docs/*', 'read:docs/**'],
  ['read:docs/a', 'read:docs/*'],
  ['read:docs/**', 'read:docs/a'],
  ['read:docs/**', 'read:docs/a/b/c'],
  ['read:docs/**', 'read:docs/*'],
  ['read:docs/**', 'read:docs/*/**'],
  ['read:docs/**', 'read:docs'],
  ['read:docs/*/**', 'read:docs/*'],
  ['read:docs/*/**', 'read:docs/a/b'],
  ['read:docs/*/**', 'read:docs/**'],
  ['*:docs/a', 'read:docs/a'],
  ['read:docs/a', '*:docs/a'],
  ['*:docs/*', '*:docs/a'],
  ['read:**', 'read:x/y/z'],
  ['read:*/b', 'read:a/b'],
  ['read:*/b', 'read:a/c'],
  ['read:*/b', 'read:*/*'],
  ['read:a/b', 'read:a/B'],
  ['*:**', 'write:anything/at/all'],
  ['*:**', '*:**'],
  ['read:**', '*:**'],
];
const SCOPE_CONTAINMENT: [outer: string[], inner: string[]][] = [
  [
    ['read:docs/*', 'write:**'],
    ['read:docs/a', 'write:docs/b'],
  ],
  [
    ['read:docs/*', 'write:**'],
    ['read:docs/a', 'delete:docs/b'],
  ],
  [['read:docs/*', 'read:docs/*/**'], ['read:docs/**']],
  [['read:docs/**'], ['read:docs/a', 'read:docs/a', 'read:docs/b/c']],
  [['read:docs/a'], ['read:docs/a', 'read:docs/*']],
];

// ---------------------------------------------------------------------------
// Building

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

function buildVectors(): DelegationVectorFile {
  const keys = Object.fromEntries(Object.entries(SEEDS).map(([name, seed]) => [name, keyFromSeed(fromHex(seed))])) as Record<
    'alice' | 'bob' | 'carol' | 'dave' | 'mallory',
    AgentKey
  >;
  const { alice, bob, carol, dave, mallory } = keys;
  const nameOf = (did: string) => Object.entries(keys).find(([, k]) => k.did === did)![0];
  const rootAuthority = { [alice.did]: ['read:docs/**', 'write:docs/drafts/*', 'fetch:web/**'] };

  // The honest chains.
  const root = issueRootToken(alice, {
    audience: bob.did,
    scope: ['read:docs/**', 'fetch:web/*'],
    notBefore: T0,
    expiry: T0 + HOUR,
    depth: 3,
    nonce: nonce(1),
  });
  const second = delegate(root, bob, {
    audience: carol.did,
    scope: ['read:docs/reports/**', 'fetch:web/*'],
    expiry: T0 + HOUR / 2,
    nonce: nonce(2),
  });
  const third = delegate(second, carol, { audience: dave.did, scope: ['read:docs/reports/*'], depth: 1, nonce: nonce(3) });
  const drafts = issueRootToken(alice, {
    audience: bob.did,
    scope: ['write:docs/drafts/*'],
    notBefore: T0,
    expiry: T0 + HOUR,
    depth: 1,
    nonce: nonce(4),
  });
  const draft = delegate(drafts, bob, { audience: carol.did, scope: ['write:docs/drafts/plan'], depth: 0, nonce: nonce(5) });

  const link = (t: CapabilityToken): LinkVector => ({
    signer: nameOf(t.issuer),
    fields: {
      issuer: t.issuer,
      audience: t.audience,
      parent_hex: t.parent === undefined ? null : toHex(t.parent),
      nonce_hex: toHex(t.nonce),
      not_before: t.notBefore,
      expiry: t.expiry,
      depth: t.depth,
      scope: [...t.scope],
    },
    payload_hex: toHex(t.bytes.subarray(0, t.bytes.length - 64)),
    token_hex: toHex(t.bytes),
    hash_hex: toHex(t.hash),
  });

  const positive: PositiveVector[] = [];
  const pos = (name: string, note: string, chain: CapabilityToken[], extra: Partial<PositiveVector> = {}) => {
    const last = chain[chain.length - 1]!;
    positive.push({ name, note, now_ms: NOW, ...extra, holder: last.audience, scope: [...last.scope], links: chain.map(link) });
  };
  pos('one-hop', 'alice (root authority) grants bob read:docs/** and fetch:web/*', [root], {
    audience: bob.did,
    required_capability: 'read:docs/a/b',
  });
  pos('two-hops', 'bob narrows to read:docs/reports/** for carol, with a shorter expiry', [root, second], {
    audience: carol.did,
    required_capability: 'fetch:web/example.org',
  });
  pos('three-hops', 'carol narrows to read:docs/reports/* for dave; depth 3, 2, 1', [root, second, third], {
    audience: dave.did,
    required_capability: 'read:docs/reports/q3',
  });
  pos('required-pattern', 'the required capability may itself be a pattern within the last scope', [root, second, third], {
    audience: dave.did,
    required_capability: 'read:docs/reports/*',
  });
  pos('no-options', 'without audience and required capability only the chain itself is checked', [root, second, third]);
  pos('at-not-before', 'now equals the not-before of every link (inclusive)', [root, second], { now_ms: T0 });
  pos('before-expiry', "now is 1 ms before the second link's expiry (exclusive)", [root, second], { now_ms: second.expiry - 1 });
  pos('single-segment-wildcard', 'write:docs/drafts/* narrowed to one concrete draft, depth 1 then 0', [drafts, draft], {
    audience: carol.did,
    required_capability: 'write:docs/drafts/plan',
  });

  const negative: NegativeVector[] = [];
  const neg = (
    name: string,
    note: string,
    chain: Uint8Array[],
    reason: ChainRejectReason,
    linkIndex: number,
    blamed: AgentKey | null,
    extra: Partial<NegativeVector> = {},
  ) => {
    negative.push({
      name,
      note,
      chain_hex: chain.map(toHex),
      now_ms: NOW,
      ...extra,
      reason,
      link: linkIndex,
      attributable_to: blamed === null ? null : blamed.did,
    });
  };
  const chain3 = [root.bytes, second.bytes, third.bytes];
  const f0 = fieldsOf(root);
  const f1 = fieldsOf(second);
  const f2 = fieldsOf(third);

  // Rule 1.
  neg('empty-chain', 'a chain holds at least one token', [], 'bad_token', 0, null);
  neg('longer-than-max-depth', 'two delegations; this verifier accepts one', chain3, 'depth_exceeded', 2, null, { max_depth: 1 });
  // Rule 2.
  neg(
    'truncated-link',
    'the second link lacks its last byte',
    [root.bytes, second.bytes.subarray(0, second.bytes.length - 1)],
    'bad_token',
    1,
    null,
  );
  neg('short-link', 'a link shorter than 199 bytes', [root.bytes, second.bytes.subarray(0, 198)], 'bad_token', 1, null);
  neg(
    'version-2',
    'version byte 0x02, signed',
    [forgeToken(alice, f0, { editPayload: (p) => Uint8Array.from([2, ...p.subarray(1)]) })],
    'bad_token',
    0,
    null,
  );
  neg(
    'not-before-equals-expiry',
    'the validity interval is empty',
    [root.bytes, forgeToken(bob, { ...f1, notBefore: f1.expiry })],
    'bad_token',
    1,
    null,
  );
  neg('time-beyond-2^53', 'expiry 2^53', [forgeToken(alice, { ...f0, expiry: 2 ** 53 })], 'bad_token', 0, null);
  neg(
    'invalid-pattern',
    '** not in last position',
    [root.bytes, forgeToken(bob, { ...f1, scope: ['read:docs/**/x'] })],
    'bad_token',
    1,
    null,
  );
  neg(
    'non-ascii-pattern',
    'a pattern byte outside ASCII (UTF-8 of ó)',
    [root.bytes, forgeToken(bob, { ...f1, scope: ['read:dócs'] })],
    'bad_token',
    1,
    null,
  );
  neg('empty-scope', 'count 0', [root.bytes, forgeToken(bob, { ...f1, scope: [] })], 'bad_token', 1, null);
  neg(
    '33-patterns',
    'count above 32',
    [root.bytes, forgeToken(bob, { ...f1, scope: Array(33).fill('read:docs/a') })],
    'bad_token',
    1,
    null,
  );
  neg(
    'trailing-byte',
    'one byte between the last pattern and the signature',
    [root.bytes, forgeToken(bob, f1, { editPayload: (p) => Uint8Array.from([...p, 0x61]) })],
    'bad_token',
    1,
    null,
  );
  // Rule 3.
  neg(
    'unknown-root',
    'mallory issues herself a root token; she is no root authority',
    [forgeToken(mallory, { ...f0, issuerKey: mallory.publicKey })],
    'unknown_root',
    0,
    null,
  );
  neg(
    'root-scope-beyond-authority',
    'alice grants delete:docs/**, which she does not hold',
    [forgeToken(alice, { ...f0, scope: ['delete:docs/**'] })],
    'unknown_root',
    0,
    null,
  );
  neg(
    'unknown-root-before-clock',
    'an unknown root that is also expired: rule 3 comes first',
    [forgeToken(mallory, { ...f0, issuerKey: mallory.publicKey })],
    'unknown_root',
    0,
    null,
    { now_ms: T0 + 2 * HOUR },
  );
  // Rule 4.
  neg('not-yet-valid', 'now is 1 ms before the root not-before', chain3, 'not_yet_valid', 0, null, { now_ms: T0 - 1 });
  const later = delegate(root, bob, { audience: carol.did, scope: ['read:docs/a'], notBefore: T0 + 120_000, nonce: nonce(6) });
  neg(
    'child-not-yet-valid',
    'the second link starts 2 minutes after the root; now is in between',
    [root.bytes, later.bytes],
    'not_yet_valid',
    1,
    null,
  );
  neg('expired', "now equals the second link's expiry", chain3, 'expired', 1, null, { now_ms: second.expiry });
  neg('root-expired', "now equals the root's expiry", chain3, 'expired', 0, null, { now_ms: root.expiry });
  // Rules 5, 6.
  neg('wrong-audience', 'the chain ends at dave; carol verifies it as executor', chain3, 'wrong_audience', 2, null, {
    audience: carol.did,
  });
  neg('capability-not-granted', 'write is not within read:docs/reports/*', chain3, 'capability_not_granted', 2, null, {
    audience: dave.did,
    required_capability: 'write:docs/reports/q3',
  });
  neg('capability-too-deep', 'read:docs/reports/q3/x is not within read:docs/reports/*', chain3, 'capability_not_granted', 2, null, {
    required_capability: 'read:docs/reports/q3/x',
  });
  // Rule 7.
  neg(
    'signature-bit-flipped',
    "the last bit of the second link's signature",
    [root.bytes, flipBit(second.bytes, second.bytes.length - 1, 7), third.bytes],
    'bad_signature',
    1,
    null,
  );
  neg(
    'payload-edited',
    'a nonce byte of the third link changed after signing',
    [root.bytes, second.bytes, flipBit(third.bytes, 100)],
    'bad_signature',
    2,
    null,
  );
  neg(
    'signed-by-another-key',
    'mallory signs a token that names bob as issuer',
    [root.bytes, forgeToken(mallory, f1), third.bytes],
    'bad_signature',
    1,
    null,
  );
  neg(
    'frame-domain-signature',
    'the payload signed with the frame prefix "trustmesh/v1\\n" instead of the token prefix',
    [root.bytes, forgeToken(bob, f1, { signature: frameDomainSignature(bob, f1) })],
    'bad_signature',
    1,
    null,
  );
  const widened = forgeToken(carol, { ...f2, scope: ['read:docs/**'] });
  neg(
    'signature-before-link-rules',
    'a bad signature at link 1 and an escalation at link 2: rule 7 comes first',
    [root.bytes, flipBit(second.bytes, second.bytes.length - 1), widened],
    'bad_signature',
    1,
    null,
  );
  // Rule 8.
  neg(
    'root-with-parent',
    'the first link names a parent: the chain is truncated',
    [forgeToken(alice, { ...f0, parent: second.hash })],
    'broken_link',
    0,
    null,
  );
  const otherRoot = issueRootToken(alice, {
    audience: bob.did,
    scope: ['read:docs/**', 'fetch:web/*'],
    notBefore: T0,
    expiry: T0 + HOUR,
    nonce: nonce(9),
  });
  neg(
    'spliced-parent',
    "the second link's parent is another root of alice to bob: not attributable",
    [otherRoot.bytes, second.bytes, third.bytes],
    'broken_link',
    1,
    null,
  );
  neg(
    'issuer-not-audience',
    'mallory delegates a token granted to bob (her link names its hash)',
    [root.bytes, forgeToken(mallory, { ...f1, issuerKey: mallory.publicKey })],
    'broken_link',
    1,
    mallory,
  );
  neg(
    'expiry-extended',
    "bob's child expires 1 ms after the root",
    [root.bytes, forgeToken(bob, { ...f1, expiry: root.expiry + 1 })],
    'expiry_extended',
    1,
    bob,
  );
  neg(
    'not-before-earlier',
    "bob's child starts 1 ms before the root",
    [root.bytes, forgeToken(bob, { ...f1, notBefore: root.notBefore - 1 })],
    'expiry_extended',
    1,
    bob,
  );
  neg(
    'depth-not-decreasing',
    "bob's child keeps the root's depth 3",
    [root.bytes, forgeToken(bob, { ...f1, depth: 3 })],
    'depth_exceeded',
    1,
    bob,
  );
  const leaf = delegate(third, dave, { audience: mallory.did, scope: ['read:docs/reports/q3'], depth: 0, nonce: nonce(7) });
  neg(
    'delegating-depth-zero',
    'mallory delegates a depth-0 token (within max_depth 4)',
    [
      ...chain3,
      leaf.bytes,
      forgeToken(mallory, { ...fieldsOf(leaf), issuerKey: mallory.publicKey, audienceKey: alice.publicKey, parent: leaf.hash }),
    ],
    'depth_exceeded',
    4,
    mallory,
    { max_depth: 4 },
  );
  neg(
    'scope-escalation-deeper',
    'carol widens read:docs/reports/** to read:docs/**',
    [root.bytes, second.bytes, widened],
    'scope_escalation',
    2,
    carol,
  );
  neg(
    'scope-escalation-action',
    'bob turns read into write',
    [root.bytes, forgeToken(bob, { ...f1, scope: ['write:docs/reports/**'] })],
    'scope_escalation',
    1,
    bob,
  );
  neg(
    'scope-escalation-wildcard-action',
    'bob turns read into *',
    [root.bytes, forgeToken(bob, { ...f1, scope: ['*:docs/reports/**'] })],
    'scope_escalation',
    1,
    bob,
  );
  neg(
    'scope-escalation-star-to-doublestar',
    'bob turns fetch:web/* into fetch:web/**',
    [root.bytes, forgeToken(bob, { ...f1, scope: ['fetch:web/**'] })],
    'scope_escalation',
    1,
    bob,
  );
  neg(
    'scope-escalation-added-pattern',
    'carol keeps her pattern and adds one her parent lacks',
    [root.bytes, second.bytes, forgeToken(carol, { ...f2, scope: ['read:docs/reports/*', 'write:docs/drafts/a'] })],
    'scope_escalation',
    2,
    carol,
  );
  neg(
    'scope-escalation-union',
    'read:docs/** is covered by the union of read:docs/* and read:docs/*/** but within neither (§3.3)',
    escalationByUnion(alice, bob, carol),
    'scope_escalation',
    1,
    bob,
  );

  return {
    description: 'TrustMesh capability token and chain test vectors, version 1. Generated by docs/vectors/generate-delegation.ts.',
    spec: 'docs/delegation.md',
    signing_domain: TOKEN_SIGNING_DOMAIN,
    hash_domain: TOKEN_HASH_DOMAIN,
    signers: Object.entries(keys).map(([name, k]) => ({ name, seed_hex: SEEDS[name]!, public_key_hex: toHex(k.publicKey), did: k.did })),
    root_authority: rootAuthority,
    defaults: { max_depth: MAX_DEPTH },
    patterns: { valid: VALID_PATTERNS.filter(isValidPattern), invalid: INVALID_PATTERNS.filter((p) => !isValidPattern(p)) },
    containment: CONTAINMENT.map(([outer, inner]) => ({ outer, inner, within: patternContains(outer, inner) })),
    scope_containment: SCOPE_CONTAINMENT.map(([outer, inner]) => ({ outer, inner, within: isScopeWithin(inner, outer) })),
    positive,
    negative,
  };
}

/** A valid Ed25519 signature by `key`, but over the frame domain: must not verify as a token. */
function frameDomainSignature(key: AgentKey, fields: TokenFields): Uint8Array {
  return key.sign(Uint8Array.from([...Buffer.from('trustmesh/v1\n', 'ascii'), ...encodePayload(fields)]));
}

/** A root of alice granting bob two patterns, and bob's child claiming the pattern only their union covers. */
function escalationByUnion(alice: AgentKey, bob: AgentKey, carol: AgentKey): Uint8Array[] {
  const parent = issueRootToken(alice, {
    audience: bob.did,
    scope: ['read:docs/*', 'read:docs/*/**'],
    notBefore: T0,
    expiry: T0 + HOUR,
    depth: 2,
    nonce: nonce(10),
  });
  const child = forgeToken(bob, {
    ...fieldsOf(parent),
    issuerKey: bob.publicKey,
    audienceKey: carol.publicKey,
    parent: parent.hash,
    depth: 1,
    nonce: nonce(11),
    scope: ['read:docs/**'],
  });
  return [parent.bytes, child];
}

/** The exact bytes of docs/vectors/delegation.json. */
export function renderDelegationVectors(): string {
  return JSON.stringify(buildVectors(), null, 2) + '\n';
}

export const DELEGATION_VECTORS_PATH = fileURLToPath(new URL('./delegation.json', import.meta.url));

function isMain(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(resolve(arg)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const text = renderDelegationVectors();
  writeFileSync(DELEGATION_VECTORS_PATH, text);
  const file = JSON.parse(text) as DelegationVectorFile;
  console.log(`wrote ${DELEGATION_VECTORS_PATH}: ${file.positive.length} positive, ${file.negative.length} negative vectors`);
}
