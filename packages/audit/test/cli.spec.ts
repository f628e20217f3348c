import { readFile, writeFile } from 'node:fs/promises';
import { generateKey } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { openFileStore, runAuditCli, signCheckpoint } from '../src/index.ts';
import { recordRanges, tempDir, writeLog } from './helpers.ts';

const newDir = tempDir();

function io() {
  let out = '';
  let err = '';
  return { io: { out: { write: (s: string) => (out += s) }, err: { write: (s: string) => (err += s) } }, out: () => out, err: () => err };
}

describe('command', () => {
  it('cli - verify prints OK and exits 0; after a flipped byte it names the position and exits 1; query prints JSON lines', async () => {
    const dir = await newDir();
    const path = await writeLog(dir, 'cli', 12);
    const key = generateKey();
    const store = await openFileStore(path, { mesh: 'cli' });
    await store.saveCheckpoint(signCheckpoint(key, 'cli', store.length, store.head).frame);
    await store.close();

    const ok = io();
    expect(await runAuditCli(['verify', path, '--trusted', key.did, '--workers', '0'], ok.io)).toBe(0);
    expect(ok.out()).toMatch(/^OK: 12 records/);

    const q = io();
    expect(await runAuditCli(['query', path, '--type', 'greet', '--no-frame'], q.io)).toBe(0);
    const lines = q
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { position: number; typ: string; frame?: string });
    expect(lines.map((l) => l.position)).toEqual([1, 3, 5, 7, 9, 11]);
    expect(lines.every((l) => l.typ === 'greet' && l.frame === undefined)).toBe(true);

    const bytes = await readFile(path);
    bytes[recordRanges(bytes, 'cli')[4]![1] - 50]! ^= 1;
    await writeFile(path, bytes);
    const bad = io();
    expect(await runAuditCli(['verify', path, '--trusted', key.did, '--json', '--workers', '0'], bad.io)).toBe(1);
    expect(JSON.parse(bad.out()).firstBad).toMatchObject({ position: 5, problem: 'bad_hash' });

    const usage = io();
    expect(await runAuditCli(['frobnicate'], usage.io)).toBe(2);
    expect(usage.err()).toMatch(/usage/);
  });
});
