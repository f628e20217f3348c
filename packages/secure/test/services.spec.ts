/**
 * The real services under their secure-mode roles: what they need from the
 * permission table is found by running them, not by reading their code.
 * @trustmesh/audit is resolved from the workspace root (it is not a dependency of @trustmesh/secure).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signFrame, subjects } from '@trustmesh/protocol';
import { capture, withSecureNats } from '@trustmesh/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { identityFromJwt, meshResources } from '../src/index.ts';
import { deniedErrors, sleep } from './helpers.ts';

const fx = withSecureNats();
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

interface AuditModule {
  startAudit(init: Record<string, unknown>): Promise<{
    caughtUp(timeoutMs?: number): Promise<void>;
    stats(): { records: number; verdicts: Record<string, number> };
    checkpoint(): Promise<unknown>;
    stop(): Promise<void>;
  }>;
  captureStreamName(mesh: string): string;
  logStreamName(mesh: string): string;
  checkpointStreamName(mesh: string): string;
  checkpointSubject(mesh: string, agentId: string): string;
}
const loadAudit = async () => (await import('@trustmesh/audit' as string)) as AuditModule;

describe('services in secure mode', () => {
  it('audit - the audit service runs under the audit role: captures agent frames, signs a checkpoint, no permission error', async () => {
    const audit = await loadAudit();
    const service = await fx.admitted('audit');
    const denied = deniedErrors(service.nc, identityFromJwt(service.admission.jwt));
    const dir = await mkdtemp(join(tmpdir(), 'tm-audit-secure-'));
    dirs.push(dir);
    const running = await audit.startAudit({
      mesh: fx.mesh,
      key: service.key,
      connection: service.nc,
      path: join(dir, 'audit.log'),
      workers: 0,
      checkpointEvery: 1_000_000,
      checkpointIntervalMs: 60_000,
      checkpointOnStop: false,
    });
    try {
      const alice = await fx.admitted('agent');
      for (let i = 0; i < 5; i++) {
        const sub = subjects.presence(fx.mesh, alice.key.agentId);
        alice.nc.publish(sub, signFrame(alice.key, { sub, typ: 'tm.presence', data: { i } }).bytes);
      }
      await alice.nc.flush();
      await running.caughtUp(10_000);
      expect(running.stats().records).toBeGreaterThanOrEqual(5);
      expect(await running.checkpoint()).toBeDefined();
      expect(denied.seen.map((e) => e.message)).toEqual([]);
    } finally {
      await running.stop();
    }
  });

  it('broker - the trust broker runs under the broker role (joins as an agent, owns the trust bucket) with no permission error', async () => {
    const broker = (await import('@trustmesh/broker' as string)) as {
      createBroker(
        init: Record<string, unknown>,
      ): Promise<{ stop?(): Promise<void>; close?(): Promise<void>; stats(): Record<string, unknown> }>;
    };
    await fx.createBucket(meshResources(fx.mesh).presenceBucket, { history: 1 }); // provisioned by the operator, as `trustmesh up` will
    const service = await fx.admitted('broker');
    const denied = deniedErrors(service.nc, identityFromJwt(service.admission.jwt));
    const observer = await fx.admitted('operator');
    const presence = await capture(observer.nc, subjects.presenceAll(fx.mesh));
    const running = await broker.createBroker({ key: service.key, mesh: fx.mesh, connection: service.nc, secure: true, name: 'broker' });
    try {
      await presence.next((m) => m.subject === subjects.presence(fx.mesh, service.key.agentId)); // it joined
      const alice = await fx.admitted('agent');
      const sub = subjects.presence(fx.mesh, alice.key.agentId);
      alice.nc.publish(sub, signFrame(alice.key, { sub, typ: 'tm.presence', data: {} }).bytes);
      await alice.nc.flush();
      await sleep(500);
      expect(denied.seen.map((e) => e.message)).toEqual([]);
    } finally {
      await (running.stop ?? running.close)?.call(running);
    }
  });

  it('kill - an operator kills and revives under the operator role; an admitted agent halts, acknowledges, and no permission error', async () => {
    const kill = (await import('@trustmesh/kill' as string)) as {
      killSwitch(init: { operators: string[] }): unknown;
      createOperator(init: Record<string, unknown>): Promise<{
        kill(): Promise<{ acknowledged: number; expected: number }>;
        revive(): Promise<unknown>;
        close(): Promise<void>;
      }>;
      KilledError: new (...args: never[]) => Error;
    };
    const { joinMesh } = await import('@trustmesh/client');
    await fx.createBucket(meshResources(fx.mesh).presenceBucket, { history: 1 }).catch(() => undefined);
    const op = await fx.admitted('operator');
    const opDenied = deniedErrors(op.nc, identityFromJwt(op.admission.jwt));
    const worker = await fx.admitted('agent');
    const workerDenied = deniedErrors(worker.nc, identityFromJwt(worker.admission.jwt));
    const agent = await joinMesh({
      mesh: fx.mesh,
      name: 'worker',
      key: worker.key,
      connection: worker.nc,
      extensions: [kill.killSwitch({ operators: [op.key.did] })] as never,
    });
    const operator = await kill.createOperator({ key: op.key, mesh: fx.mesh, connection: op.nc, knownAgents: () => [worker.key.agentId] });
    try {
      const result = await operator.kill();
      expect(result).toMatchObject({ acknowledged: 1, expected: 1 });
      expect(() => agent.send(agent.did, 'hello')).toThrow(kill.KilledError);
      await operator.revive();
      expect(opDenied.seen.map((e) => e.message)).toEqual([]);
      // The worker's only refusal may be its client reading the presence registry with kv.watch (docs/security.md).
      expect(workerDenied.seen.map((e) => e.subject).filter((subject) => !subject.startsWith('$JS.API.CONSUMER.CREATE.'))).toEqual([]);
    } finally {
      await operator.close();
      await agent.leave();
    }
  });

  it('names - the audit streams and checkpoint subject of @trustmesh/audit are the ones the table grants', async () => {
    const audit = await loadAudit();
    const names = meshResources('m1');
    for (const stream of [audit.captureStreamName('m1'), audit.logStreamName('m1'), audit.checkpointStreamName('m1')]) {
      expect(names.auditStreams).toContain(stream);
    }
    expect(audit.checkpointSubject('m1', 'z6MkX')).toBe('tm.m1.audit.z6MkX');
  });
});
