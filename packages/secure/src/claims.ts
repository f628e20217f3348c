import { decode, encodeAccount, type Account, type ClaimsData, type User } from '@nats-io/jwt';
import type { KeyPair } from '@nats-io/nkeys';
import { SecureModeError } from './errors.ts';

/** -1 is unlimited: JWT limits default to 0 connections and 0 subscriptions (DESIGN §8). */
export const ACCOUNT_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  disallow_bearer: true,
} as const;
/** JetStream is enabled for an account only when its JWT grants storage, streams and consumers. */
export const JETSTREAM_LIMITS = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } as const;
export const USER_LIMITS = { subs: -1, data: -1, payload: -1 } as const;

/** The mesh account JWT, signed by the operator: limits set, JetStream enabled, the revocation list. */
export function signAccount(mesh: string, account: KeyPair, operator: KeyPair, revocations: Record<string, number>): Promise<string> {
  const claims: Partial<Account> = { limits: { ...ACCOUNT_LIMITS, ...JETSTREAM_LIMITS }, revocations: { ...revocations } };
  return encodeAccount(`trustmesh-${mesh}`, account, claims, { signer: operator });
}

/** The claims of a user JWT (signature checked against its issuer key, not the chain). */
export function decodeUserJwt(jwt: string): ClaimsData<User> {
  try {
    return decode<User>(jwt);
  } catch (cause) {
    throw new SecureModeError('invalid_argument', 'not a valid NATS user JWT', { cause });
  }
}

/** Resolves once the clock is in a later whole second than `unixSeconds` (JWT `iat` and revocations have one-second resolution). */
export async function afterSecond(unixSeconds: number): Promise<void> {
  const wait = (unixSeconds + 1) * 1000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}
