import type { DIDResolutionResult, Resolver } from 'did-resolver';

let resolver: Promise<Resolver> | undefined;

/**
 * Standard DID resolution (W3C DID Core) through did-resolver + key-did-resolver.
 * Loaded on first use: frame verification never needs it (its own decoder,
 * checked against this resolver in the tests, is on the hot path).
 */
export async function resolveDid(did: string): Promise<DIDResolutionResult> {
  resolver ??= Promise.all([import('did-resolver'), import('key-did-resolver')]).then(
    ([{ Resolver }, { getResolver }]) => new Resolver(getResolver()),
  );
  return (await resolver).resolve(did);
}
