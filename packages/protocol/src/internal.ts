/**
 * Low-level pieces for sibling packages and tests: frame assembly without the
 * sender's checks, the strict body decoder, and caches. Not a stable API;
 * applications use the package root.
 */
export { sealFrame, open } from './wire/frame.ts';
export { decodeBody, decodeStrict, MsgpackError, MAX_NESTING } from './wire/msgpack.ts';
export type { DecodedBody } from './wire/msgpack.ts';
export { BoundedCache } from './util/bounded-cache.ts';
