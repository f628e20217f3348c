import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '@trustmesh/embedded-nats';
import { generateKey, signFrame, subjects, toHex } from '@trustmesh/protocol';
import { uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { captureStreamName, openLogFile, type QueryResult, queryLog, startAudit, verifyLog } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const nats = withNats();
const newDir = tempDir();
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/audit-process.ts', import.meta.url));

async function all(path: string): Promise<QueryResult[]> {
  const out: QueryResult[] = [];
  for await (const r of queryLog(await openLogFile(path))) out.push(r);
  return out;
}

/** Starts the audit in a child process; resolves with it once it reads, and a counter of the last position it reported. */
async function auditProcess(args: string[]): Promise<{ child: ChildProcess; position: () => number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let position = 0;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`audit process not ready: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (line.startsWith('records ')) position = Number(line.slice(8));
    });
    child.once('exit', (code) => reject(new Error(`audit process exited ${code}: ${stderr}`)));
  });
  return { child, position: () => position };
}

describe('restarts', () => {
  it('restart - SIGKILL of the audit process mid-traffic loses nothing and records nothing twice', async () => {
    const mesh = uniqueMesh('ak');
    const path = join(await newDir(), 'kill.log');
    const key = generateKey();
    const nc = await nats.connect();
    const agent = generateKey();
    const sub = subjects.message(mesh, 'z', agent.agentId);
    const sent: string[] = [];
    const { child, position } = await auditProcess([nats.url, mesh, path, toHex(key.exportSeed())]);
    let publishing = true;
    const traffic = (async () => {
      for (let i = 0; publishing; i++) {
        const frame = signFrame(agent, { sub, typ: 'tick', data: i }).bytes;
        nc.publish(sub, frame);
        sent.push(toHex(frame));
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await waitFor(() => position() >= 300, 'the audit process to record 300 frames', 20_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const atKill = sent.length;
    await new Promise((r) => setTimeout(r, 100)); // traffic goes on while no audit runs
    const audit = await startAudit({ mesh, key, servers: nats.url, path, workers: 0 });
    await new Promise((r) => setTimeout(r, 100));
    publishing = false;
    await traffic;
    await nc.flush();
    await audit.caughtUp();
    await audit.stop();
    const frames = (await all(path)).filter((r) => r.subject === sub);
    expect(atKill).toBeLessThan(sent.length);
    expect(frames.map((r) => toHex(r.frame))).toEqual(sent);
    expect(frames.map((r) => r.seqFirst)).toEqual(sent.map((_, i) => i + 1));
    const report = await verifyLog(await openLogFile(path), { trusted: key.did, workers: 0 });
    expect(report).toMatchObject({ ok: true, gapRecords: 0 });
  });

  it('restart - nats-server restarted mid-traffic on the same store: the chain holds every captured frame once, and frames lost while no server ran show as an outage record', async () => {
    const storeDir = await mkdtemp(join(tmpdir(), 'tm-audit-js-'));
    let server = await startNatsServer({ storeDir });
    const port = server.port;
    const mesh = uniqueMesh('an');
    const path = join(await newDir(), 'server.log');
    const key = generateKey();
    try {
      const opts = { servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 };
      const auditConn = await connect(opts);
      const pub = await connect(opts);
      const audit = await startAudit({ mesh, key, connection: auditConn, path, workers: 0, checkpointOnStop: false });
      const agent = generateKey();
      const sub = subjects.message(mesh, 'z', agent.agentId);
      const sent: string[] = [];
      let publishing = true;
      const traffic = (async () => {
        for (let i = 0; publishing; i++) {
          const frame = signFrame(agent, { sub, typ: 'tick', data: i }).bytes;
          pub.publish(sub, frame);
          sent.push(toHex(frame));
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      await waitFor(() => audit.stats().records >= 100, '100 records before the restart', 10_000);
      const atStop = sent.length;
      await server.stop();
      const atDown = sent.length;
      server = await startNatsServer({ storeDir, extraConfig: `port: ${port}` });
      const atUp = sent.length;
      await waitFor(() => !auditConn.isClosed() && auditConn.info !== undefined, 'reconnect');
      const before = audit.stats().records;
      await waitFor(() => audit.stats().records >= before + 100, '100 records after the restart', 20_000);
      publishing = false;
      await traffic;
      await pub.flush();
      await audit.caughtUp(20_000);
      await audit.stop();
      const jsm = await jetstreamManager(pub);
      const lastSeq = (await jsm.streams.info(captureStreamName(mesh))).state.last_seq;
      const records = await all(path);
      const frames = records.filter((r) => r.kind === 'frame' && r.subject === sub).map((r) => toHex(r.frame));
      const gaps = records.filter((r) => r.kind === 'gap');
      const outages = records.filter((r) => r.kind === 'outage');
      // every stream sequence is accounted for, by a frame record or a gap record, exactly once
      const covered = records
        .filter((r) => r.kind !== 'outage')
        .flatMap((r) => Array.from({ length: r.seqLast - r.seqFirst + 1 }, (_, i) => r.seqFirst + i));
      expect(covered).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
      expect(new Set(frames).size).toBe(frames.length);
      // frames appear in the order they were sent
      const order = frames.map((f) => sent.indexOf(f));
      expect(order).toEqual([...order].sort((a, b) => a - b));
      const lost = sent.length - frames.length;
      const have = new Set(frames);
      const missingIdx = sent.map((f, i) => (have.has(f) ? -1 : i)).filter((i) => i >= 0);
      console.log(
        `nats-server restart: frames ${atStop}..${atDown} sent while it stopped, ${atUp} when it was up again; ` +
          `frames ${missingIdx[0]}..${missingIdx[missingIdx.length - 1]} never reached the capture stream`,
      );
      console.log(
        `nats-server restart: sent ${sent.length}, recorded ${frames.length}, lost before capture ${lost}, gap records ${gaps.length}, outage records ${outages.length}`,
      );
      // core NATS drops what is published while no server runs: the stream never had it, so the chain says when that happened
      expect(lost === 0 || gaps.length > 0 || outages.length > 0).toBe(true);
      expect(outages.length).toBe(1);
      const note = JSON.parse(Buffer.from(outages[0]!.frame).toString('utf8')) as { from: number; to: number };
      expect(note.to).toBeGreaterThanOrEqual(note.from);
      expect((await verifyLog(await openLogFile(path), { trusted: key.did, workers: 0 })).ok).toBe(true);
      await pub.close();
      await auditConn.close();
    } finally {
      await server.stop();
      await rm(storeDir, { recursive: true, force: true });
    }
  });
});
