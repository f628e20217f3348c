import { join } from 'node:path';
import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { flipBit, forgeFrame, MUTATION_KINDS, mutateFrame, prng, uniqueMesh, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { openLogFile, queryLog, startAudit, statelessVerdict, verifyLog } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const nats = withNats({ maxPayload: 1024 * 1024 });
const newDir = tempDir();

describe('attacks on the audit', () => {
  it('attack - malformed frames of every kind are recorded with their verdict; the audit never stops', async () => {
    const mesh = uniqueMesh('am');
    const path = join(await newDir(), 'bad.log');
    const key = generateKey();
    const audit = await startAudit({ mesh, key, servers: nats.url, path, workers: 2 });
    const errors: Error[] = [];
    audit.on('error', (e) => errors.push(e));
    const nc = await nats.connect();
    const honest = generateKey();
    const sub = subjects.message(mesh, 'z', honest.agentId);
    const random = prng(9);
    const sent: { subject: string; frame: Uint8Array }[] = [];
    const send = (subject: string, frame: Uint8Array) => {
      nc.publish(subject, frame);
      sent.push({ subject, frame });
    };
    for (let i = 0; i < 120; i++) {
      const good = signFrame(honest, { sub, typ: 'n', data: { i, pad: 'x'.repeat(i) } }).bytes;
      send(sub, mutateFrame(good, random, MUTATION_KINDS[i % MUTATION_KINDS.length]!));
      if (i % 10 === 0) send(sub, good);
    }
    send(sub, new Uint8Array(0));
    send(sub, Uint8Array.of(1));
    send(sub, forgeFrame(honest, { sub, data: 'x'.repeat(900 * 1024) })); // large but within max_payload
    send(sub, forgeFrame(honest, { sub, iat: -5 })); // signed, bad body
    send(`tm.${mesh}.msg.z.${generateKey().agentId}`, forgeFrame(honest, { sub: `tm.${mesh}.msg.z.other` })); // someone else's subject
    const deep: unknown[] = [];
    let cur = deep;
    for (let d = 0; d < 40; d++) cur.push((cur = []));
    send(sub, forgeFrame(honest, { sub, data: deep }));
    await nc.flush();
    await audit.caughtUp();
    await audit.stop();

    expect(errors).toEqual([]);
    const records = [];
    for await (const r of queryLog(await openLogFile(path), { kind: 'frame', subject: `tm.${mesh}.msg.>` })) records.push(r);
    expect(records.length).toBe(sent.length);
    for (const [i, r] of records.entries()) {
      expect(Buffer.from(r.frame).equals(Buffer.from(sent[i]!.frame))).toBe(true);
      expect(r.verdict).toBe(statelessVerdict(sent[i]!.subject, sent[i]!.frame));
    }
    const verdicts = new Set(records.map((r) => r.verdict));
    for (const v of ['ok', 'bad_frame', 'bad_signature', 'subject_mismatch']) expect(verdicts).toContain(v);
    expect((await verifyLog(await openLogFile(path), { trusted: key.did, workers: 2 })).ok).toBe(true);
  });

  it('attack - a flood of invalid signatures from fresh keys: every frame is recorded, honest traffic included; the cost is printed', async () => {
    const mesh = uniqueMesh('af');
    const path = join(await newDir(), 'flood.log');
    const key = generateKey();
    const audit = await startAudit({ mesh, key, servers: nats.url, path, workers: 2 });
    const nc = await nats.connect();
    const honest = generateKey();
    const honestSub = subjects.message(mesh, 'z', honest.agentId);
    const FLOOD = 4000;
    // built before the clock starts: the figure is the audit's cost, not the test's key generation
    const frames: [string, Uint8Array][] = [];
    for (let i = 0; i < FLOOD; i++) {
      const attacker = generateKey();
      const s = subjects.message(mesh, 'z', attacker.agentId);
      frames.push([s, flipBit(signFrame(attacker, { sub: s, typ: 'spam', data: i }).bytes, 40 * 8)]);
      if (i % 100 === 0) frames.push([honestSub, signFrame(honest, { sub: honestSub, typ: 'n', data: i }).bytes]);
    }
    const started = performance.now();
    for (const [s, f] of frames) nc.publish(s, f);
    await nc.flush();
    const published = performance.now();
    await audit.caughtUp(60_000);
    const done = performance.now();
    const stats = audit.stats();
    await audit.stop();
    expect(stats.verdicts.bad_signature).toBe(FLOOD);
    let honestRecorded = 0;
    for await (const r of queryLog(await openLogFile(path), { subject: honestSub })) if (r.verdict === 'ok') honestRecorded++;
    expect(honestRecorded).toBe(FLOOD / 100);
    const total = FLOOD + FLOOD / 100;
    console.log(
      `flood: ${total} frames published in ${(published - started).toFixed(0)} ms, recorded ${(done - started).toFixed(0)} ms after the first; ` +
        `${Math.round(total / ((done - started) / 1000))} records/s; lag at the end of publishing ${(done - published).toFixed(0)} ms`,
    );
  });
});
