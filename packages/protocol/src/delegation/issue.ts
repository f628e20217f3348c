/**
 * Issuing capability tokens: a root from a mesh authority, and delegations
 * that can only narrow. Every rule verifyChain enforces is checked here first,
 * so an honest caller gets a typed error at the call site, never a token that
 * peers reject.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors.ts';
import { publicKeyFromDid } from '../identity/did.ts';
import type { AgentKey } from '../identity/keys.ts';
import { DelegationError } from './codes.ts';
import { MAX_SCOPE_PATTERNS, parsePattern, scopeWithin } from './pattern.ts';
import {
  MAX_DEPTH,
  MAX_TIME,
  NONCE_LENGTH,
  decodeToken,
  encodePayload,
  tokenSigningInput,
  type CapabilityToken,
  type TokenFields,
} from './token.ts';

/** Default depth of a root token: at most this many further delegations. */
export const DEFAULT_ROOT_DEPTH = 3;
/** A default not-before lies this far in the past, so verifiers with a slower clock accept the token at once. */
export const DEFAULT_CLOCK_SKEW_MS = 30_000;

export interface RootTokenInit {
  /** DID of the agent the capability is granted to. */
  audience: string;
  scope: readonly string[];
  /** ms since the epoch; the token is valid before this instant, not at it. */
  expiry: number;
  /** ms since the epoch; default `now - DEFAULT_CLOCK_SKEW_MS`. */
  notBefore?: number;
  /** Further delegations allowed below this token; default {@link DEFAULT_ROOT_DEPTH}. */
  depth?: number;
  /** 16 bytes; default random. Fixed only for test vectors. */
  nonce?: Uint8Array;
  /** Clock for the default not-before; default `Date.now()`. */
  now?: number;
}

export interface DelegateInit {
  /** DID of the agent the capability is passed to. */
  audience: string;
  /** Default: the parent's scope. Must be within it. */
  scope?: readonly string[];
  /** Default: the parent's. Must not be later. */
  expiry?: number;
  /** Default: the parent's. Must not be earlier. */
  notBefore?: number;
  /** Default: the parent's depth minus one. Must be below the parent's. */
  depth?: number;
  nonce?: Uint8Array;
}

function checkTime(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_TIME) {
    throw new InvalidArgumentError(`${name} must be an integer number of ms in 0..2^53-1, got ${value}`);
  }
}

function checkScope(scope: readonly string[]): void {
  if (!Array.isArray(scope) || scope.length < 1 || scope.length > MAX_SCOPE_PATTERNS) {
    throw new InvalidArgumentError(`scope must hold 1..${MAX_SCOPE_PATTERNS} patterns`);
  }
  for (const p of scope) parsePattern(p);
}

function sign(issuer: AgentKey, fields: TokenFields): CapabilityToken {
  checkScope(fields.scope);
  checkTime('notBefore', fields.notBefore);
  checkTime('expiry', fields.expiry);
  if (fields.notBefore >= fields.expiry) {
    throw new InvalidArgumentError(`notBefore (${fields.notBefore}) must be earlier than expiry (${fields.expiry})`);
  }
  if (!Number.isInteger(fields.depth) || fields.depth < 0 || fields.depth > MAX_DEPTH) {
    throw new InvalidArgumentError(`depth must be an integer in 0..${MAX_DEPTH}, got ${fields.depth}`);
  }
  if (!(fields.nonce instanceof Uint8Array) || fields.nonce.length !== NONCE_LENGTH) {
    throw new InvalidArgumentError(`nonce must be a Uint8Array of ${NONCE_LENGTH} bytes`);
  }
  const payload = encodePayload(fields);
  const signature = issuer.sign(tokenSigningInput(payload));
  const bytes = new Uint8Array(payload.length + signature.length);
  bytes.set(payload, 0);
  bytes.set(signature, payload.length);
  const decoded = decodeToken(bytes);
  if (!decoded.ok) throw new Error(`internal: issued token does not decode: ${decoded.detail}`);
  return decoded.token;
}

/**
 * Issues a root token: `issuer` grants `scope` to `audience`. Verifiers accept
 * it only if the mesh configuration (`rootAuthority`) gives the issuer patterns
 * that contain the scope; this function cannot know that configuration.
 */
export function issueRootToken(issuer: AgentKey, init: RootTokenInit): CapabilityToken {
  const now = init.now ?? Date.now();
  return sign(issuer, {
    issuerKey: issuer.publicKey,
    audienceKey: publicKeyFromDid(init.audience),
    nonce: init.nonce ?? randomBytes(NONCE_LENGTH),
    notBefore: init.notBefore ?? Math.max(0, now - DEFAULT_CLOCK_SKEW_MS),
    expiry: init.expiry,
    depth: init.depth ?? DEFAULT_ROOT_DEPTH,
    scope: [...init.scope],
  });
}

/**
 * Sub-delegates `parent` (a token whose audience is `issuer`) to another agent
 * with an equal or narrower grant. Throws {@link DelegationError} for anything
 * a verifier would reject as a violation: the caller learns at once, and no
 * evidence against it is ever signed.
 */
export function delegate(parent: CapabilityToken, issuer: AgentKey, init: DelegateInit): CapabilityToken {
  // Same order as the verifier's rules 8c-8f, so the error names the reason a verifier would give.
  if (issuer.did !== parent.audience) {
    throw new DelegationError('broken_link', `the parent token was granted to ${parent.audience}, not to ${issuer.did}`);
  }
  const scope = init.scope === undefined ? [...parent.scope] : [...init.scope];
  checkScope(scope);
  const expiry = init.expiry ?? parent.expiry;
  const notBefore = init.notBefore ?? parent.notBefore;
  if (expiry > parent.expiry) {
    throw new DelegationError('expiry_extended', `expiry ${expiry} is later than the parent's ${parent.expiry}`);
  }
  if (notBefore < parent.notBefore) {
    throw new DelegationError('expiry_extended', `notBefore ${notBefore} is earlier than the parent's ${parent.notBefore}`);
  }
  if (parent.depth < 1) {
    throw new DelegationError('depth_exceeded', 'the parent token has depth 0: it may not be delegated');
  }
  const depth = init.depth ?? parent.depth - 1;
  if (depth > parent.depth - 1) {
    throw new DelegationError('depth_exceeded', `depth ${depth} is not below the parent's ${parent.depth}`);
  }
  if (!scopeWithin(scope.map(parsePattern), parent.patterns)) {
    const wider = scope.filter((p) => !scopeWithin([parsePattern(p)], parent.patterns));
    throw new DelegationError('scope_escalation', `${wider.join(', ')} not within the parent's scope ${parent.scope.join(', ')}`);
  }
  return sign(issuer, {
    issuerKey: issuer.publicKey,
    audienceKey: publicKeyFromDid(init.audience),
    parent: parent.hash,
    nonce: init.nonce ?? randomBytes(NONCE_LENGTH),
    notBefore,
    expiry,
    depth,
    scope,
  });
}
