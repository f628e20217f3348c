import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { capture, withSecureNats } from '@trustmesh/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { createMeshAuthority, decodeUserJwt, secureConnectOptions } from '../src/index.ts';

const fx = withSecureNats();

/** Resolves with ms since `t0` at the connection's first disconnect. */
function firstDisconnect(nc: NatsConnection, t0: () => number): Promise<number> {
  return (async () => {
    for await (const status of nc.status()) if (status.type === 'disconnect') return performance.now() - t0();
    return Number.NaN;
  })();
}

const refusedToConnect = (connecting: Promise<NatsConnection>) =>
  connecting.then(
    async (nc) => {
      await nc.close();
      return 'accepted';
    },
    (error: Error) => error.message,
  );

describe('revocation', () => {
  it('revoke - a revoked agent is disconnected within seconds and cannot come back; others stay', async () => {
    const samples: number[] = [];
    const whole: number[] = [];
    const bystander = await fx.admitted('agent');
    for (let i = 0; i < 5; i++) {
      const key = generateKey();
      const { jwt } = await fx.admit(key);
      const nc = fx.track(await connect(secureConnectOptions(key, jwt, fx.url, { reconnectTimeWait: 50 })));
      let t0 = 0;
      const disconnected = firstDisconnect(nc, () => t0);
      const called = performance.now();
      await fx.authority.revoke(key.did); // signs and saves (waits for a new second if needed)
      t0 = performance.now();
      const pushed = await fx.authority.pushAccount(fx.url); // tells the running server
      expect(pushed.message).toMatch(/jwt updated/);
      const ms = await disconnected;
      samples.push(ms);
      whole.push(ms + t0 - called);
      expect(ms).toBeLessThan(3_000);
      // Its reconnect attempts are refused and nats.js gives up; a fresh connection is refused too.
      expect((await nc.closed())?.message).toMatch(/Authorization Violation|Revoked/);
      expect(await refusedToConnect(connect(secureConnectOptions(key, jwt, fx.url, { maxReconnectAttempts: 0 })))).toMatch(
        /Authorization Violation/,
      );
      expect(fx.authority.revokedAt(key.did)).toBeGreaterThan(0);
    }
    const summary = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return `min ${sorted[0]!.toFixed(1)} ms, median ${sorted[2]!.toFixed(1)} ms, max ${sorted[4]!.toFixed(1)} ms`;
    };
    console.log(`push-to-disconnect over ${samples.length} revocations: ${summary(samples)}`);
    console.log(`revoke()-call-to-disconnect (incl. the wait for a new iat second): ${summary(whole)}`);
    // The bystander was never disturbed.
    expect(bystander.nc.isClosed()).toBe(false);
    const own = subjects.presence(fx.mesh, bystander.key.agentId);
    const seen = await capture(bystander.nc, subjects.presenceAll(fx.mesh));
    bystander.nc.publish(own, signFrame(bystander.key, { sub: own, typ: 'tm.presence', data: {} }).bytes);
    expect((await seen.next()).subject).toBe(own);
  });

  it('revoke - the old JWT stays void, and a re-admission (signed after the revocation second) is accepted', async () => {
    const key = generateKey();
    const first = await fx.admit(key);
    await fx.authority.revoke(key.did, { server: fx.url });
    expect(await refusedToConnect(connect(secureConnectOptions(key, first.jwt, fx.url, { maxReconnectAttempts: 0 })))).toMatch(
      /Authorization Violation/,
    );
    const again = await fx.admit(key); // signed in a later second than the revocation (admit waits if needed)
    expect(decodeUserJwt(again.jwt).iat).toBeGreaterThan(fx.authority.revokedAt(key.did)!);
    const nc = await fx.connectAs(key, again.jwt);
    expect(nc.isClosed()).toBe(false);
  });
});

describe('revocation - concurrency and restart', () => {
  it('revoke - concurrent revocations all land in the account JWT, survive a fixture restart, and a bystander reconnects', async () => {
    const admitted = await Promise.all([0, 1, 2].map(() => fx.admitted('agent')));
    const stayer = await fx.admitted('agent');
    await Promise.all(admitted.map(({ key }) => fx.authority.revoke(key.did)));
    await fx.authority.pushAccount(fx.url);
    for (const { key } of admitted) expect(fx.authority.revokedAt(key.did)).toBeGreaterThan(0);
    await Promise.all(admitted.map(({ nc }) => nc.closed()));

    const back = (async () => {
      for await (const status of stayer.nc.status()) if (status.type === 'reconnect') return true;
      return false;
    })();
    await fx.restart();
    expect(await back).toBe(true);
    for (const { key, admission } of admitted) {
      expect(await refusedToConnect(connect(secureConnectOptions(key, admission.jwt, fx.url, { maxReconnectAttempts: 0 })))).toMatch(
        /Authorization Violation/,
      );
    }
  });
});

describe('revocation - restarts', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it('revoke - survives a server restart on the same port and store, even one started from the config written before the revocation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tm-mesh-restart-'));
    const storeDir = await mkdtemp(join(tmpdir(), 'tm-store-restart-'));
    cleanup.push(
      () => rm(dir, { recursive: true, force: true }),
      () => rm(storeDir, { recursive: true, force: true }),
    );
    const authority = await createMeshAuthority({ dir, mesh: 'restart' });
    const staleConfig = authority.serverConfig(); // before any revocation
    let server: NatsServerHandle = await startNatsServer({ extraConfig: staleConfig, storeDir });
    cleanup.push(() => server.stop());

    const revoked = generateKey();
    const kept = generateKey();
    const revokedJwt = (await authority.admit(revoked.did, { name: 'revoked', role: 'agent' })).jwt;
    const keptJwt = (await authority.admit(kept.did, { name: 'kept', role: 'agent' })).jwt;
    const keptNc = await connect(secureConnectOptions(kept, keptJwt, server.url, { reconnectTimeWait: 50, maxReconnectAttempts: -1 }));
    cleanup.push(() => keptNc.close());
    await authority.revoke(revoked.did, { server: server.url });

    const reconnected = (async () => {
      for await (const status of keptNc.status()) if (status.type === 'reconnect') return true;
      return false;
    })();
    const port = server.port;
    await server.stop();
    server = await startNatsServer({ extraConfig: staleConfig, storeDir, port });
    expect(await reconnected).toBe(true);
    expect(await refusedToConnect(connect(secureConnectOptions(revoked, revokedJwt, server.url, { maxReconnectAttempts: 0 })))).toMatch(
      /Authorization Violation/,
    );
  });
});
