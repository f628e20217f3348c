import { jetstreamManager } from '@nats-io/jetstream';
import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { uniqueMesh, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { logStreamName, openJetStreamStore, queryLog, startAudit, verifyLog } from '../src/index.ts';
import { signedRecords } from './helpers.ts';

const nats = withNats();

describe('JetStream store', () => {
  it('js store - the audit writes its chain into a deny_delete + deny_purge stream; verify reads it back', async () => {
    const mesh = uniqueMesh('aj');
    const nc = await nats.connect();
    const store = await openJetStreamStore({ mesh, connection: nc });
    const key = generateKey();
    const audit = await startAudit({ mesh, key, connection: nc, store, checkpointEvery: 5, workers: 0 });
    const agent = generateKey();
    const sub = subjects.message(mesh, 'z', agent.agentId);
    for (let i = 0; i < 12; i++) nc.publish(sub, signFrame(agent, { sub, typ: 'n', data: i }).bytes);
    await nc.flush();
    await audit.caughtUp();
    await audit.stop();
    const report = await verifyLog(store, { trusted: key.did, workers: 0 });
    expect(report).toMatchObject({ ok: true, frames: report.records, verdicts: { ok: report.records } });
    expect(report.records).toBeGreaterThanOrEqual(12); // 12 frames, and the checkpoints that were captured in time
    // At least one: how many depends on how the 12 frames were batched (a checkpoint after a batch that passed 5 records).
    expect(report.checkpoints.valid).toBeGreaterThanOrEqual(1);
    let n = 0;
    for await (const r of queryLog(store, { type: 'n' })) expect(r.position).toBe(++n);
    expect(n).toBe(12);

    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(logStreamName(mesh));
    expect(info.config).toMatchObject({ deny_delete: true, deny_purge: true });
    await expect(jsm.streams.deleteMessage(logStreamName(mesh), 3)).rejects.toThrow();
    await expect(jsm.streams.purge(logStreamName(mesh))).rejects.toThrow();
    // reopened, it continues from the head
    const again = await openJetStreamStore({ mesh, connection: nc });
    expect(again.length).toBe(store.length);
    expect(Buffer.from(again.head).equals(Buffer.from(store.head))).toBe(true);
  });

  it('js store - a second concurrent writer fails (expected-last-sequence) instead of forking the chain', async () => {
    const mesh = uniqueMesh('aw');
    const a = await openJetStreamStore({ mesh, connection: await nats.connect() });
    const b = await openJetStreamStore({ mesh, connection: await nats.connect() });
    const records = signedRecords(mesh, 4);
    await a.append(records.slice(0, 2));
    await expect(b.append(records.slice(0, 1))).rejects.toMatchObject({ code: 'writer_conflict' });
    await expect(b.append(records.slice(0, 1))).rejects.toMatchObject({ code: 'writer_conflict' }); // stays stopped
    await a.append(records.slice(2, 4));
    const report = await verifyLog(a, { workers: 0 });
    expect(report).toMatchObject({ ok: true, records: 4 });
  });
});
