import { connect, type NatsConnection } from '@nats-io/transport-node';
import { FrameVerifier, generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { capture, withSecureNats } from '@trustmesh/test-utils';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SecureModeError,
  connectAgent,
  credsConnectOptions,
  decodeUserJwt,
  identityFromJwt,
  secureConnectOptions,
  userNkeyFromDid,
  writeCredsFile,
} from '../src/index.ts';
import { sleep } from './helpers.ts';

const fx = withSecureNats();
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Connecting must fail; resolves with the error (a stray success is closed and fails the test). */
async function refused(connecting: Promise<NatsConnection>): Promise<Error> {
  const outcome = await connecting.then(
    (nc) => nc,
    (error: unknown) => error as Error,
  );
  if (!(outcome instanceof Error)) {
    await outcome.close();
    throw new Error('the server accepted a connection it should have refused');
  }
  return outcome;
}

describe('admission', () => {
  it('admission - a key that was never admitted cannot connect, not even with a JWT issued to another key', async () => {
    const stranger = generateKey();
    const admitted = generateKey();
    const { jwt } = await fx.admit(admitted);
    // Our authenticator refuses to present someone else's JWT...
    expect(() => secureConnectOptions(stranger, jwt, fx.url)).toThrowError(expect.objectContaining({ code: 'key_mismatch' }));
    // ...so present it by hand: the stranger signs the nonce with its own key under the admitted key's JWT.
    const forged = await refused(
      connect({
        servers: fx.url,
        maxReconnectAttempts: 0,
        authenticator: () => ({ jwt, nkey: userNkeyFromDid(admitted.did), sig: 'AAAA' }),
      }),
    );
    expect(forged.message).toMatch(/Authorization Violation/);
    // And with no credentials at all.
    const anonymous = await refused(connect({ servers: fx.url, maxReconnectAttempts: 0 }));
    expect(anonymous.message).toMatch(/Authorization Violation/);
  });

  it('admission - a self-signed JWT (an account key the operator never signed) is refused', async () => {
    const { createMeshAuthority } = await import('../src/index.ts');
    const dir = await mkdtemp(join(tmpdir(), 'tm-rogue-'));
    dirs.push(dir);
    const rogue = await createMeshAuthority({ dir, mesh: fx.mesh });
    const key = generateKey();
    const { jwt } = await rogue.admit(key.did, { name: 'rogue', role: 'operator' });
    const error = await refused(connect(secureConnectOptions(key, jwt, fx.url, { maxReconnectAttempts: 0 })));
    expect(error.message).toMatch(/Authorization Violation/);
    // connectAgent says the same in our terms.
    const typed = await refused(connectAgent(key, jwt, fx.url, { maxReconnectAttempts: 0 }));
    expect(typed).toMatchObject({ code: 'not_admitted' });
    expect(typed.message).toContain(key.did);
    expect(typed.message).toMatch(/never admitted .* expired, or it was revoked/);
  });

  it('admission - an expired JWT is refused, and a connection is closed when its JWT expires', async () => {
    const key = generateKey();
    const { jwt, expiresAt } = await fx.admit(key, { expiresAt: Date.now() + 1_500 });
    expect(identityFromJwt(jwt).expiresAt).toBe(Math.ceil(expiresAt! / 1000) * 1000);
    const nc = fx.track(await connect(secureConnectOptions(key, jwt, fx.url, { maxReconnectAttempts: 0 })));
    const closed = nc.closed();
    const errors: string[] = [];
    void (async () => {
      for await (const status of nc.status()) if (status.type === 'error') errors.push(status.error.message);
    })();
    // JWT expiry has one-second resolution: the JWT is valid through second `exp` and refused after it.
    await sleep((Math.ceil(expiresAt! / 1000) + 1) * 1000 - Date.now() + 200);
    const error = await refused(connect(secureConnectOptions(key, jwt, fx.url, { maxReconnectAttempts: 0 })));
    expect(error.message).toMatch(/Authorization Violation|expired/i);
    // The server closed the live connection at expiry, saying why, and it could not come back.
    await closed;
    expect(nc.isClosed()).toBe(true);
    expect(errors[0]).toBe('User Authentication Expired');
  });

  it('admission - the JWT subject is the agent key in nkey form, with the role permissions and nonzero limits', async () => {
    const key = generateKey();
    const { jwt, userNkey } = await fx.admit(key, { name: 'alice' });
    const claims = decodeUserJwt(jwt);
    expect(claims.sub).toBe(userNkey);
    expect(userNkey).toMatch(/^U[A-Z2-7]{55}$/);
    expect(claims.iss).toBe(fx.authority.accountPublicKey);
    expect(claims.name).toBe('alice');
    expect(claims.nats.subs).toBe(-1);
    expect(claims.nats.bearer_token).toBe(false);
    expect(claims.nats.pub?.allow).toContain(`tm.${fx.mesh}.msg.*.${key.agentId}`);
    expect(identityFromJwt(jwt)).toMatchObject({ mesh: fx.mesh, role: 'agent', agentId: key.agentId, userNkey });
  });

  it('admission - an admitted agent connects with only its Ed25519 key and JWT, and a signed frame on its own subject reaches another agent', async () => {
    const alice = await fx.admitted();
    const bob = await fx.admitted();
    const inbox = await capture(bob.nc, subjects.inbox(fx.mesh, bob.key.agentId));
    const sub = subjects.message(fx.mesh, bob.key.agentId, alice.key.agentId);
    const { bytes } = signFrame(alice.key, { sub, typ: 'greet', data: { hi: 'bob' }, aud: bob.key.did });
    alice.nc.publish(sub, bytes);
    const got = await inbox.next();
    expect(got.subject).toBe(sub);
    const result = new FrameVerifier({ self: bob.key.did }).verify(got.data, { subject: got.subject });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.frame.iss).toBe(alice.key.did);
  });

  it('admission - a creds file (0600) carries the same key: it connects, and the key it yields signs frames', async () => {
    const key = generateKey();
    const { jwt } = await fx.admit(key);
    const dir = await mkdtemp(join(tmpdir(), 'tm-creds-'));
    dirs.push(dir);
    const path = join(dir, 'agent.creds');
    await writeCredsFile(path, key, jwt);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const { key: loaded, options } = await credsConnectOptions(path, fx.url);
    expect(loaded.did).toBe(key.did);
    const nc = fx.track(await connect(options));
    const sub = subjects.presence(fx.mesh, loaded.agentId);
    const seen = await capture(nc, subjects.presenceAll(fx.mesh));
    nc.publish(sub, signFrame(loaded, { sub, typ: 'tm.presence', data: {} }).bytes);
    expect((await seen.next()).subject).toBe(sub);
  });

  it('admission - a JWT for a role that does not exist, a past expiry, or a non-did:key is refused at issue time', async () => {
    const key = generateKey();
    await expect(fx.authority.admit(key.did, { name: 'x', role: 'root' as 'agent' })).rejects.toThrow(SecureModeError);
    await expect(fx.authority.admit(key.did, { name: 'x', role: 'agent', expiresAt: Date.now() - 1 })).rejects.toThrow(/expiresAt/);
    await expect(fx.authority.admit('did:web:example.com', { name: 'x', role: 'agent' })).rejects.toThrow(/did:key/);
  });
});
