/**
 * Chain verification (docs/delegation.md §6). Never throws on the chain: any
 * bytes give a verdict. Options are the caller's and are checked as misuse.
 *
 * Order: cheap checks that need no crypto first (shape, decoding, root
 * authority, clock, audience, required capability), then signatures (skipped
 * for links the cache has seen verified), then the link rules, whose failures
 * name the signer they are evidence against.
 */
import { InvalidArgumentError } from '../errors.ts';
import { nodeEd25519, type Ed25519Backend } from '../identity/ed25519.ts';
import { byteKey, equalBytes } from '../util/bytes.ts';
import type { ChainRejectReason } from './codes.ts';
import { parsePattern, scopeWithin, type Pattern } from './pattern.ts';
import {
  MAX_DEPTH,
  MAX_TOKEN_BYTES,
  decodeToken,
  decodeTokenWithHash,
  payloadOf,
  tokenHash,
  tokenSigningInput,
  type CapabilityToken,
} from './token.ts';

/**
 * DID -> the capability patterns the mesh configuration lets it grant as a root
 * issuer. Parsed once per object and remembered: to change it, pass a new object.
 */
export type RootAuthority = ReadonlyMap<string, readonly string[]> | Readonly<Record<string, readonly string[]>>;

export interface VerifyChainOptions {
  /** The verifier's clock, ms since the epoch. */
  now: number;
  rootAuthority: RootAuthority;
  /** Most delegations after the root this verifier accepts (0 = root tokens only), 0..255. */
  maxDepth: number;
  /** The executor's DID: the last link must be granted to it. */
  audience?: string;
  /** A capability (or pattern) the last link's scope must contain. */
  requiredCapability?: string;
  /** Links verified before skip their signature check. */
  cache?: TokenCache;
  /** Ed25519 implementation; default node:crypto. */
  backend?: Ed25519Backend;
}

export interface ChainAccepted {
  ok: true;
  tokens: readonly CapabilityToken[];
  /** DID of the root issuer (a mesh authority). */
  root: string;
  /** DID the capability is finally granted to: the last link's audience. */
  holder: string;
  /** The last link's scope: what the holder may do. */
  scope: readonly string[];
}

export interface ChainRejected {
  ok: false;
  reason: ChainRejectReason;
  /** Index of the link that failed (0 = root). */
  link: number;
  detail: string;
  /**
   * DID whose own valid signature proves the violation, when there is one
   * (docs/delegation.md §7). Undefined: the failure is evidence against nobody.
   */
  attributableTo?: string;
  /** With `attributableTo`: the offending token and its parent, enough for a third party to re-check. */
  evidence?: { parent: Uint8Array; token: Uint8Array };
}

export type ChainVerdict = ChainAccepted | ChainRejected;

export const DEFAULT_TOKEN_CACHE_SIZE = 4096;

/**
 * Bounded memory of tokens whose signature verified, keyed by token hash
 * (which covers every byte, signature included). Least recently used goes first.
 */
export class TokenCache {
  readonly #entries = new Map<string, CapabilityToken>();
  readonly #limit: number;
  hits = 0;
  misses = 0;

  constructor(limit: number = DEFAULT_TOKEN_CACHE_SIZE) {
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidArgumentError(`cache limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The verified token with this hash, if remembered. */
  get(hash: Uint8Array): CapabilityToken | undefined {
    const key = byteKey(hash);
    const token = this.#entries.get(key);
    if (token === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#entries.delete(key);
    this.#entries.set(key, token);
    return token;
  }

  /** Remembers a token whose signature the caller has verified. */
  add(token: CapabilityToken): void {
    const key = byteKey(token.hash);
    this.#entries.delete(key);
    if (this.#entries.size >= this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, token);
  }
}

const compiledAuthorities = new WeakMap<object, Map<string, Pattern[]>>();

function compileAuthority(authority: RootAuthority): Map<string, Pattern[]> {
  let compiled = compiledAuthorities.get(authority);
  if (compiled === undefined) {
    if (authority === null || typeof authority !== 'object') throw new InvalidArgumentError('rootAuthority must be a Map or an object');
    const entries = authority instanceof Map ? [...authority.entries()] : Object.entries(authority);
    compiled = new Map(entries.map(([did, patterns]) => [did, (patterns as readonly string[]).map(parsePattern)]));
    compiledAuthorities.set(authority, compiled);
  }
  return compiled;
}

function reject(
  reason: ChainRejectReason,
  link: number,
  detail: string,
  blame?: { token: CapabilityToken; parent: CapabilityToken },
): ChainRejected {
  const verdict: ChainRejected = { ok: false, reason, link, detail };
  if (blame !== undefined) {
    verdict.attributableTo = blame.token.issuer;
    verdict.evidence = { parent: blame.parent.bytes, token: blame.token.bytes };
  }
  return verdict;
}

/** One link against its parent: the rules of docs/delegation.md §6 step 8. */
export interface LinkViolation {
  reason: ChainRejectReason;
  detail: string;
  /** True when the child's issuer signed the violation itself. */
  attributable: boolean;
}

export function checkLink(parent: CapabilityToken, child: CapabilityToken): LinkViolation | undefined {
  if (child.parent === undefined || !equalBytes(child.parent, parent.hash)) {
    return { reason: 'broken_link', detail: "parent hash is not the previous link's hash", attributable: false };
  }
  if (child.issuer !== parent.audience) {
    return { reason: 'broken_link', detail: `issuer ${child.issuer} is not the parent's audience ${parent.audience}`, attributable: true };
  }
  if (child.expiry > parent.expiry || child.notBefore < parent.notBefore) {
    return {
      reason: 'expiry_extended',
      detail: `validity [${child.notBefore}, ${child.expiry}) is not within the parent's [${parent.notBefore}, ${parent.expiry})`,
      attributable: true,
    };
  }
  if (child.depth >= parent.depth) {
    return { reason: 'depth_exceeded', detail: `depth ${child.depth} is not below the parent's ${parent.depth}`, attributable: true };
  }
  if (!scopeWithin(child.patterns, parent.patterns)) {
    return {
      reason: 'scope_escalation',
      detail: `scope ${child.scope.join(', ')} is not within ${parent.scope.join(', ')}`,
      attributable: true,
    };
  }
  return undefined;
}

function checkOptions(options: VerifyChainOptions): void {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('verifyChain needs options');
  if (!Number.isSafeInteger(options.now) || options.now < 0)
    throw new InvalidArgumentError(`now must be ms since the epoch, got ${options.now}`);
  if (!Number.isInteger(options.maxDepth) || options.maxDepth < 0 || options.maxDepth > MAX_DEPTH) {
    throw new InvalidArgumentError(`maxDepth must be an integer in 0..${MAX_DEPTH}, got ${options.maxDepth}`);
  }
}

/**
 * Verifies a capability chain, root first. Returns a verdict; throws only for
 * invalid options (programmer misuse), never because of the chain's bytes.
 */
export function verifyChain(chain: readonly Uint8Array[], options: VerifyChainOptions): ChainVerdict {
  checkOptions(options);
  const authority = compileAuthority(options.rootAuthority);
  const required = options.requiredCapability === undefined ? undefined : parsePattern(options.requiredCapability);
  const backend = options.backend ?? nodeEd25519;
  const cache = options.cache;

  // 1. Shape.
  if (!Array.isArray(chain) || chain.length === 0) return reject('bad_token', 0, 'the chain holds no token');
  if (chain.length - 1 > options.maxDepth) {
    return reject(
      'depth_exceeded',
      options.maxDepth + 1,
      `${chain.length - 1} delegations; this verifier accepts at most ${options.maxDepth}`,
    );
  }

  // 2. Decode (a cached link is already decoded and verified).
  const tokens: CapabilityToken[] = [];
  const verified: boolean[] = [];
  for (let i = 0; i < chain.length; i++) {
    const bytes: unknown = chain[i];
    if (!(bytes instanceof Uint8Array) || bytes.length > MAX_TOKEN_BYTES) return reject('bad_token', i, 'not a token-sized byte string');
    const hash = tokenHash(bytes);
    const known = cache?.get(hash);
    if (known !== undefined) {
      tokens.push(known);
      verified.push(true);
      continue;
    }
    const decoded = decodeTokenWithHash(bytes, hash);
    if (!decoded.ok) return reject('bad_token', i, decoded.detail);
    tokens.push(decoded.token);
    verified.push(false);
  }
  const root = tokens[0]!;
  const last = tokens[tokens.length - 1]!;

  // 3. Root authority.
  const held = authority.get(root.issuer);
  if (held === undefined) return reject('unknown_root', 0, `${root.issuer} is not a root authority of this mesh`);
  if (!scopeWithin(root.patterns, held))
    return reject('unknown_root', 0, `the root scope ${root.scope.join(', ')} exceeds what ${root.issuer} holds`);

  // 4. Clock.
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (options.now < t.notBefore) return reject('not_yet_valid', i, `valid from ${t.notBefore}, now ${options.now}`);
    if (options.now >= t.expiry) return reject('expired', i, `expired at ${t.expiry}, now ${options.now}`);
  }

  // 5. Audience, 6. required capability.
  if (options.audience !== undefined && last.audience !== options.audience) {
    return reject('wrong_audience', tokens.length - 1, `granted to ${last.audience}, not to ${options.audience}`);
  }
  if (required !== undefined && !scopeWithin([required], last.patterns)) {
    return reject('capability_not_granted', tokens.length - 1, `${options.requiredCapability} is not within ${last.scope.join(', ')}`);
  }

  // 7. Signatures.
  for (let i = 0; i < tokens.length; i++) {
    if (verified[i]) continue;
    const t = tokens[i]!;
    if (!backend.verify(t.issuerKey, tokenSigningInput(payloadOf(t)), t.signature)) {
      return reject('bad_signature', i, `signature does not verify under ${t.issuer}`);
    }
    cache?.add(t);
  }

  // 8. Links.
  if (root.parent !== undefined) return reject('broken_link', 0, 'the first link is not a root (its parent hash is not zero)');
  for (let i = 1; i < tokens.length; i++) {
    const violation = checkLink(tokens[i - 1]!, tokens[i]!);
    if (violation !== undefined) {
      const blame = violation.attributable ? { token: tokens[i]!, parent: tokens[i - 1]! } : undefined;
      return reject(violation.reason, i, violation.detail, blame);
    }
  }
  return { ok: true, tokens, root: root.issuer, holder: last.audience, scope: last.scope };
}

export type EvidenceVerdict =
  | { attributable: true; issuer: string; reason: ChainRejectReason; detail: string }
  | { attributable: false; detail: string };

/**
 * Checks evidence against a signer, as the broker must before it penalizes:
 * `token` decodes, its signature verifies under its issuer, and it breaks a
 * link rule against `parent` that its issuer is to blame for. The parent's
 * own signature does not matter: the issuer signed a reference to exactly
 * those bytes and claimed more than they grant.
 */
export function verifyEvidence(parent: Uint8Array, token: Uint8Array, backend: Ed25519Backend = nodeEd25519): EvidenceVerdict {
  const p = decodeToken(parent);
  const t = decodeToken(token);
  if (!p.ok) return { attributable: false, detail: `parent: ${p.detail}` };
  if (!t.ok) return { attributable: false, detail: `token: ${t.detail}` };
  if (!backend.verify(t.token.issuerKey, tokenSigningInput(payloadOf(t.token)), t.token.signature)) {
    return { attributable: false, detail: 'the token signature does not verify' };
  }
  const violation = checkLink(p.token, t.token);
  if (violation === undefined || !violation.attributable) {
    return { attributable: false, detail: violation?.detail ?? 'the token breaks no rule against this parent' };
  }
  return { attributable: true, issuer: t.token.issuer, reason: violation.reason, detail: violation.detail };
}
