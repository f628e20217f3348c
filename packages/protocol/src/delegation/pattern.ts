/**
 * Capability patterns and their containment (docs/delegation.md §3).
 *
 *   pattern  = action ":" resource
 *   action   = "*" / name
 *   resource = [ *( segment "/" ) ] last          ; at least one segment
 *   segment  = "*" / name                          ; "*" = exactly one segment
 *   last     = segment / "**"                      ; "**" = one or more segments, final only
 *   name     = 1*( ALPHA / DIGIT / "-" / "_" / "." / "~" ), but not "." or ".."
 *
 * A pattern denotes a set of concrete capabilities (those without wildcards).
 * `inner` is contained in `outer` iff every capability of inner is one of outer;
 * the syntactic rule below is exactly that set inclusion, because each pattern's
 * set is a product of per-segment sets over an infinite alphabet of names.
 */
import { InvalidArgumentError } from '../errors.ts';

/** Longest pattern in bytes: its length is one byte in the token encoding. */
export const MAX_PATTERN_LENGTH = 255;
/** Most patterns in one scope. */
export const MAX_SCOPE_PATTERNS = 32;

const NAME = /^[A-Za-z0-9._~-]+$/;

/** A parsed pattern: `*` and `**` keep their spelling in `action` and `segments`. */
export interface Pattern {
  readonly action: string;
  readonly segments: readonly string[];
}

function isName(text: string): boolean {
  return NAME.test(text) && text !== '.' && text !== '..';
}

/** Parses a pattern; undefined for anything outside the grammar (never throws). */
export function tryParsePattern(text: unknown): Pattern | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_PATTERN_LENGTH) return undefined;
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  const action = text.slice(0, colon);
  if (action !== '*' && !isName(action)) return undefined;
  const segments = text.slice(colon + 1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '*' || isName(segment)) continue;
    if (segment === '**' && i === segments.length - 1) continue;
    return undefined;
  }
  return { action, segments };
}

export function isValidPattern(text: unknown): text is string {
  return tryParsePattern(text) !== undefined;
}

/** Parses a pattern or throws {@link InvalidArgumentError} naming it: for patterns the caller wrote. */
export function parsePattern(text: string): Pattern {
  const pattern = tryParsePattern(text);
  if (pattern === undefined) {
    const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, 80)) : `a ${typeof text}`;
    throw new InvalidArgumentError(`not a capability pattern (action:resource, see docs/delegation.md §3): ${shown}`);
  }
  return pattern;
}

/** One action or segment: a name is contained only in itself and in `*`; `*` only in `*`. */
function partWithin(inner: string, outer: string): boolean {
  return outer === '*' || inner === outer;
}

/** True iff every capability `inner` denotes is one `outer` denotes (docs/delegation.md §3.2). */
export function patternWithin(inner: Pattern, outer: Pattern): boolean {
  if (!partWithin(inner.action, outer.action)) return false;
  const a = inner.segments;
  const b = outer.segments;
  const open = b[b.length - 1] === '**';
  // Segments of `outer` before its final `**` (or all of them) must each contain inner's.
  const fixed = open ? b.length - 1 : b.length;
  if (open ? a.length < b.length : a.length !== b.length) return false;
  for (let i = 0; i < fixed; i++) {
    // A `**` in inner at a position outer fixes would match more than one segment there.
    if (a[i] === '**' || !partWithin(a[i]!, b[i]!)) return false;
  }
  // Whatever inner has from there on (names, `*`, a final `**`) is one or more segments: within `**`.
  return true;
}

/** True iff every pattern of `inner` is within some pattern of `outer` (docs/delegation.md §3.3). */
export function scopeWithin(inner: readonly Pattern[], outer: readonly Pattern[]): boolean {
  return inner.every((a) => outer.some((b) => patternWithin(a, b)));
}

/** String form of {@link patternWithin} for callers that hold pattern text; throws on invalid patterns. */
export function patternContains(outer: string, inner: string): boolean {
  return patternWithin(parsePattern(inner), parsePattern(outer));
}

/** String form of {@link scopeWithin}; throws on invalid patterns. */
export function isScopeWithin(inner: readonly string[], outer: readonly string[]): boolean {
  return scopeWithin(inner.map(parsePattern), outer.map(parsePattern));
}
