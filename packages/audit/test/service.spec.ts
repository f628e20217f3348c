import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { generateKey, signFrame, subjects, toHex } from '@trustmesh/protocol';
import { capture, forgeFrame, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import {
  type AuditStore,
  captureStreamName,
  checkpointSubject,
  openFileStore,
  openLogFile,
  type QueryResult,
  queryLog,
  startAudit,
  verifyLog,
} from '../src/index.ts';
import { tempDir } from './helpers.ts';

const nats = withNats();
const newDir = tempDir();

async function all(path: string, query = {}): Promise<QueryResult[]> {
  const out: QueryResult[] = [];
  for await (const r of queryLog(await openLogFile(path), query)) out.push(r);
  return out;
}

describe('audit service', () => {
  it('service - every frame of a scenario is in the chain exactly once, in stream order: messages, requests, replies, presence, control, garbage', async () => {
    const mesh = uniqueMesh('au');
    const path = join(await newDir(), 'audit.log');
    const key = generateKey();
    const audit = await startAudit({ mesh, key, servers: nats.url, path, checkpointEvery: 10, checkpointIntervalMs: 100 });
    const nc = await nats.connect();
    const wire = await capture(nc, `tm.${mesh}.>`);

    const bob = await nats.join({ mesh, name: 'bob' });
    bob.handle('add', (n) => (n as number[]).reduce((a, b) => a + b, 0));
    const alice = await nats.join({ mesh, name: 'alice' });
    await waitFor(() => alice.peers().some((p) => p.did === bob.did), 'alice to see bob');
    for (let i = 0; i < 5; i++) expect(await alice.request(bob.did, 'add', [i, 1])).toBe(i + 1);
    for (let i = 0; i < 5; i++) alice.send(bob.did, 'note', { i });
    // control-like traffic, signed by an operator key, and things that are not frames at all
    const operator = generateKey();
    const kill = signFrame(operator, { sub: `tm.${mesh}.ctl.kill.${operator.agentId}`, typ: 'tm.kill', data: { seq: 1 } }).bytes;
    nc.publish(`tm.${mesh}.ctl.kill.${operator.agentId}`, kill);
    nc.publish(`tm.${mesh}.msg.x.y`, Buffer.concat([Buffer.from([7]), randomBytes(199)])); // garbage, not version 1
    nc.publish(`tm.${mesh}.msg.x.y`, new Uint8Array(0)); // empty
    const rerouted = forgeFrame(operator, { sub: `tm.${mesh}.msg.a.${operator.agentId}` });
    nc.publish(`tm.${mesh}.msg.b.${operator.agentId}`, rerouted); // signed for another subject
    await alice.leave();
    await bob.leave();
    await nc.flush();
    await audit.caughtUp();
    await audit.stop();
    // the last checkpoints were published after the last read: a restart records them (and signs nothing new)
    const again = await startAudit({ mesh, key, servers: nats.url, path, checkpointOnStop: false });
    await again.caughtUp();
    expect(again.stats().checkpoints).toBe(0);
    await again.stop();

    const records = await all(path);
    // the wire capture saw every frame the audit recorded, and the other way round (own checkpoints included)
    await waitFor(() => wire.messages.length === records.length, `the wire capture to see ${records.length} messages`);
    const key1 = (s: string, d: Uint8Array) => `${s} ${toHex(d)}`;
    expect(records.map((r) => key1(r.subject, r.frame)).sort()).toEqual(wire.messages.map((m) => key1(m.subject, m.data)).sort());
    expect(new Set(records.map((r) => key1(r.subject, r.frame))).size).toBe(records.length);
    expect(records.map((r) => r.seqFirst)).toEqual(records.map((_, i) => i + 1));
    // per publisher, the chain keeps the order the wire saw
    for (const pub of new Set(records.map((r) => r.subject.split('.').pop()))) {
      const ofPub = (xs: { subject: string; data: Uint8Array }[]) =>
        xs.filter((x) => x.subject.endsWith(`.${pub}`)).map((x) => toHex(x.data));
      expect(ofPub(records.map((r) => ({ subject: r.subject, data: r.frame })))).toEqual(ofPub(wire.messages));
    }
    const kinds = (typ: string) => records.filter((r) => r.typ === typ).length;
    expect(kinds('add')).toBe(5);
    expect(kinds('tm.reply')).toBe(5);
    expect(kinds('note')).toBe(5);
    expect(kinds('tm.presence')).toBeGreaterThanOrEqual(2);
    expect(records.find((r) => r.typ === 'tm.kill')?.verdict).toBe('ok');
    expect(records.filter((r) => r.subject === `tm.${mesh}.msg.x.y`).map((r) => r.verdict)).toEqual(['bad_version', 'bad_frame']);
    expect(records.find((r) => r.subject === `tm.${mesh}.msg.b.${operator.agentId}`)?.verdict).toBe('subject_mismatch');
    const own = records.filter((r) => r.subject === checkpointSubject(mesh, key.agentId));
    expect(own.length).toBeGreaterThan(0);
    expect(own.every((r) => r.verdict === 'ok' && r.typ === 'tm.audit.checkpoint')).toBe(true);

    const report = await verifyLog(await openLogFile(path), { trusted: key.did, workers: 2 });
    expect(report).toMatchObject({ ok: true, records: records.length, gapRecords: 0 });
    expect(report.checkpoints.valid).toBeGreaterThan(1);
    // query: by agent, type, subject pattern, time range
    expect((await all(path, { agent: alice.did, type: 'add' })).length).toBe(5);
    expect((await all(path, { subject: `tm.${mesh}.rep.*.*` })).every((r) => r.typ === 'tm.reply')).toBe(true);
    expect((await all(path, { since: Date.now() + 60_000 })).length).toBe(0);
    expect((await all(path, { signer: bob.did })).every((r) => r.subject.endsWith(bob.did.slice(8)))).toBe(true);
  });

  it('service - its own checkpoints, captured off the mesh, start no loop', async () => {
    const mesh = uniqueMesh('al');
    const path = join(await newDir(), 'loop.log');
    const key = generateKey();
    const audit = await startAudit({ mesh, key, servers: nats.url, path, checkpointEvery: 1, checkpointIntervalMs: 50, workers: 0 });
    const nc = await nats.connect();
    const agent = generateKey();
    for (let i = 0; i < 5; i++) {
      const sub = subjects.presence(mesh, agent.agentId);
      nc.publish(sub, signFrame(agent, { sub, typ: 'tm.presence', data: { i } }).bytes);
    }
    await nc.flush();
    await waitFor(() => audit.stats().verdicts.ok! >= 5, 'five frames recorded');
    await new Promise((r) => setTimeout(r, 600)); // 12 checkpoint intervals
    await audit.caughtUp();
    const { checkpoints, records } = audit.stats();
    expect(checkpoints).toBeGreaterThanOrEqual(1);
    expect(checkpoints).toBeLessThanOrEqual(5);
    await new Promise((r) => setTimeout(r, 300));
    expect(audit.stats().checkpoints).toBe(checkpoints);
    expect(audit.stats().records).toBe(records);
    await audit.stop();
  });

  it('service - messages the capture stream dropped (limits) become gap records, reported by event and counter', async () => {
    const mesh = uniqueMesh('ag');
    const path = join(await newDir(), 'gap.log');
    const key = generateKey();
    const nc = await nats.connect();
    const agent = generateKey();
    const sub = subjects.message(mesh, 'z', agent.agentId);
    const publish = async (n: number) => {
      for (let i = 0; i < n; i++) nc.publish(sub, signFrame(agent, { sub, typ: 'n', data: i }).bytes);
      await nc.flush();
    };
    const init = { mesh, key, servers: nats.url, path, capture: { maxMessages: 10 }, workers: 0, checkpointOnStop: false };
    const first = await startAudit(init);
    const gaps: { from: number; to: number }[] = [];
    first.on('gap', (g) => gaps.push(g));
    await first.stop();
    await publish(30); // seq 1..30, the stream keeps 21..30
    const second = await startAudit(init);
    second.on('gap', (g) => gaps.push(g));
    await second.caughtUp();
    expect(second.stats()).toMatchObject({ gaps: 1, missing: 20, records: 11 });
    await second.stop();
    await publish(30); // seq 31..60, the stream keeps 51..60
    const third = await startAudit(init);
    third.on('gap', (g) => gaps.push(g));
    await third.caughtUp();
    expect(third.stats()).toMatchObject({ gaps: 1, missing: 20, records: 22 });
    await third.stop();
    expect(gaps).toEqual([
      { from: 1, to: 20, position: 1 },
      { from: 31, to: 50, position: 12 },
    ]);
    const report = await verifyLog(await openLogFile(path), { workers: 0 });
    expect(report).toMatchObject({ ok: true, records: 22, frames: 20, gapRecords: 2, missing: 40 });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(captureStreamName(mesh))).config.no_ack).toBe(true);
  });

  it('service - verifyOnIngest: false records every frame as unchecked; verify judges them, and own checkpoints still start no loop', async () => {
    const mesh = uniqueMesh('au');
    const path = join(await newDir(), 'unchecked.log');
    const key = generateKey();
    const audit = await startAudit({
      mesh,
      key,
      servers: nats.url,
      path,
      verifyOnIngest: false,
      checkpointEvery: 1,
      checkpointIntervalMs: 50,
    });
    const nc = await nats.connect();
    const agent = generateKey();
    const sub = subjects.message(mesh, 'z', agent.agentId);
    nc.publish(sub, signFrame(agent, { sub, typ: 'n' }).bytes);
    nc.publish(sub, randomBytes(150));
    await nc.flush();
    await waitFor(() => audit.stats().verdicts.unchecked! >= 2, 'two frames recorded');
    await new Promise((r) => setTimeout(r, 400));
    await audit.caughtUp();
    const { checkpoints } = audit.stats();
    expect(checkpoints).toBeLessThanOrEqual(2);
    await audit.stop();
    const report = await verifyLog(await openLogFile(path), { trusted: key.did, workers: 0 });
    expect(report.ok).toBe(true);
    expect(report.unchecked.ok).toBeGreaterThanOrEqual(1); // the message, and the checkpoints captured in time
    expect(Object.keys(report.unchecked).filter((v) => v !== 'ok').length).toBe(1); // the random bytes
    expect(report.checkpoints.valid).toBeGreaterThanOrEqual(checkpoints);
  });

  it('service - a capture stream deleted and created again is refused (capture_reset), not read as duplicates', async () => {
    const mesh = uniqueMesh('ar');
    const path = join(await newDir(), 'reset.log');
    const key = generateKey();
    const nc = await nats.connect();
    const init = { mesh, key, servers: nats.url, path, workers: 0 };
    const first = await startAudit(init);
    const agent = generateKey();
    const sub = subjects.message(mesh, 'z', agent.agentId);
    for (let i = 0; i < 3; i++) nc.publish(sub, signFrame(agent, { sub, typ: 'n', data: i }).bytes);
    await nc.flush();
    await first.caughtUp();
    await first.stop();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(captureStreamName(mesh));
    await expect(startAudit(init)).rejects.toMatchObject({ code: 'capture_reset' });
  });

  it('service - messages dropped by the limits while the audit is held up become a gap record, live', async () => {
    const mesh = uniqueMesh('ah');
    const path = join(await newDir(), 'held.log');
    const inner = await openFileStore(path, { mesh });
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    // a store whose appends wait until the test releases them: the audit falls behind
    const store: AuditStore = {
      mesh,
      get length() {
        return inner.length;
      },
      get head() {
        return inner.head;
      },
      get lastSeq() {
        return inner.lastSeq;
      },
      append: async (records) => {
        await held;
        return inner.append(records);
      },
      saveCheckpoint: (frame) => inner.saveCheckpoint(frame),
      entries: () => inner.entries(),
      checkpoints: () => inner.checkpoints(),
      close: async () => undefined,
    };
    const key = generateKey();
    const audit = await startAudit({ mesh, key, servers: nats.url, store, workers: 0, batchSize: 10, capture: { maxMessages: 10 } });
    const gaps: { from: number; to: number }[] = [];
    audit.on('gap', (g) => gaps.push(g));
    const nc = await nats.connect();
    const agent = generateKey();
    const sub = subjects.message(mesh, 'z', agent.agentId);
    for (let i = 0; i < 500; i++) nc.publish(sub, signFrame(agent, { sub, typ: 'n', data: i }).bytes);
    await nc.flush();
    release();
    await audit.caughtUp();
    await audit.stop();
    await inner.close();
    const stats = audit.stats();
    console.log(`held up: ${stats.gaps} gap records covering ${stats.missing} messages`);
    expect(stats.gaps).toBeGreaterThanOrEqual(1);
    expect(gaps.length).toBe(stats.gaps);
    const report = await verifyLog(await openLogFile(path), { workers: 0 });
    expect(report).toMatchObject({ ok: true, gapRecords: stats.gaps, missing: stats.missing });
    expect(report.frames + report.missing).toBeGreaterThanOrEqual(500); // every sequence is a frame or inside a gap
  });
});
