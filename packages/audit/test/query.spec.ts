import { join } from 'node:path';
import { generateKey } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { openFileStore, openLogFile, type QueryResult, queryLog, subjectMatches, toJsonLine, writeJsonLines } from '../src/index.ts';
import { signedRecords, tempDir } from './helpers.ts';

const newDir = tempDir();
const MESH = 'qy';

describe('query', () => {
  it('query - NATS subject wildcards: * is one token, > one or more trailing tokens', () => {
    expect(subjectMatches('tm.qy.>', 'tm.qy.msg.a.b')).toBe(true);
    expect(subjectMatches('tm.qy.>', 'tm.qy')).toBe(false);
    expect(subjectMatches('tm.qy.*.a.*', 'tm.qy.msg.a.b')).toBe(true);
    expect(subjectMatches('tm.qy.*.a.*', 'tm.qy.msg.b.a')).toBe(false);
    expect(subjectMatches('tm.qy.msg.*', 'tm.qy.msg.a.b')).toBe(false);
    expect(subjectMatches('tm.qy.msg.a.b', 'tm.qy.msg.a.b')).toBe(true);
  });

  it('query - by agent (signer, publisher or recipient), type, time range, positions; JSON lines', async () => {
    const keys = [generateKey(), generateKey(), generateKey()];
    const path = join(await newDir(), 'q.log');
    const store = await openFileStore(path, { mesh: MESH });
    await store.append(signedRecords(MESH, 30, keys)); // record i (0-based): from keys[i % 3] to keys[(i + 1) % 3], time T + i
    await store.close();
    const log = await openLogFile(path);
    const run = async (q: Parameters<typeof queryLog>[1]) => {
      const out: QueryResult[] = [];
      for await (const r of queryLog(log, q)) out.push(r);
      return out.map((r) => r.position);
    };
    const T = 1_700_000_000_000;
    // keys[0] signs records 1, 4, 7, ... and receives 3, 6, 9, ...
    expect((await run({ signer: keys[0]!.did })).length).toBe(10);
    expect((await run({ agent: keys[0]!.did })).length).toBe(20);
    expect((await run({ agent: keys[0]!.agentId, type: 'greet' })).every((p) => p % 2 === 1)).toBe(true);
    expect(await run({ since: T + 10, until: T + 13 })).toEqual([11, 12, 13]);
    expect(await run({ from: 28 })).toEqual([28, 29, 30]);
    expect(await run({ to: 2 })).toEqual([1, 2]);
    expect(await run({ limit: 4, type: 'add' })).toEqual([2, 4, 6, 8]);
    expect(await run({ verdict: 'bad_signature' })).toEqual([]);
    let text = '';
    const n = await writeJsonLines(queryLog(log, { to: 3 }), { write: (s: string) => (text += s) });
    expect(n).toBe(3);
    const first = JSON.parse(text.split('\n')[0]!) as { position: number; frame: string; data: { i: number } };
    expect(first.position).toBe(1);
    expect(Buffer.from(first.frame, 'base64').length).toBeGreaterThan(97);
    expect(first.data).toEqual({ i: 0 });
    expect(
      toJsonLine(
        {
          position: 1,
          kind: 'frame',
          time: 0,
          seqFirst: 1,
          seqLast: 1,
          subject: 's',
          verdict: 'ok',
          hash: '',
          data: 2n ** 70n,
          frame: new Uint8Array(0),
        },
        { frame: false },
      ),
    ).toContain('"data":"1180591620717411303424"');
  });
});
