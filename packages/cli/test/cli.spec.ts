/**
 * The `trustmesh` binary as a user runs it: real processes, a real embedded
 * mesh (its own nats-server on a free port, never the shared 4222).
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/program.ts';
import { run, startAgent, startUp } from './helpers.ts';

const dirs: string[] = [];
const tempDir = async (prefix: string) => {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Every command of the program with its path, e.g. ['audit', 'verify']. */
function commands(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return cmd.commands.flatMap((sub) => [{ path: [...path, sub.name()], cmd: sub }, ...commands(sub, [...path, sub.name()])]);
}

describe('trustmesh', () => {
  it('help - every command answers --help with exit 0, its description, every option and every argument', async () => {
    const all = commands(buildProgram());
    expect(all.map((c) => c.path.join(' '))).toEqual(
      expect.arrayContaining([
        'up',
        'demo',
        'keys new',
        'did resolve',
        'status',
        'trust get',
        'trust ls',
        'send',
        'request',
        'kill',
        'revive',
        'admit',
        'revoke',
        'audit verify',
        'audit query',
        'audit tail',
        'bench',
      ]),
    );
    for (let i = 0; i < all.length; i += 4) {
      await Promise.all(
        all.slice(i, i + 4).map(async ({ path, cmd }) => {
          const { code, stdout } = await run([...path, '--help']);
          expect(code, path.join(' ')).toBe(0);
          expect(stdout).toContain(`Usage: trustmesh ${path.join(' ')}`);
          expect(stdout.replace(/\s+/g, ' ')).toContain(cmd.description().replace(/\s+/g, ' ').slice(0, 60));
          for (const option of cmd.options) expect(stdout, `${path.join(' ')} ${option.flags}`).toContain(option.flags);
          for (const argument of cmd.registeredArguments) expect(stdout).toContain(argument.name());
          // The global options are listed too.
          expect(stdout).toContain('--json');
          expect(stdout).toContain('--dir <dir>');
        }),
      );
    }
  }, 120_000);

  it('usage - a wrong argument, option or command exits 2 with a message that says what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['bogus'], /unknown command 'bogus'/],
      [['kill', '--timeout', 'abc'], /--timeout must be a positive integer \(got "abc"\)/],
      [['did', 'resolve', 'did:key:nope'], /not an Ed25519 did:key/],
      [['trust', 'get'], /missing required argument 'did'/],
      [['up', '--port', '70000'], /a port is an integer from 1 to 65535/],
      [['up', '--nodes', '2', '--dir', '/nonexistent/tm-nodes'], /--nodes must be 1 or from 3 to 16/],
      [['status', '--no-such-option'], /unknown option '--no-such-option'/],
      [['bench', 'no-such-bench'], /no benchmark "no-such-bench"; one of: .*signed-throughput/],
      [['request', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', 'add', '{oops'], /DATA must be JSON/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
    });
  });

  it('exit codes - no mesh to talk to is 4; nats-server missing is 3 with the install hint', async () => {
    const empty = await tempDir('tm-cli-empty-');
    const none = await run(['status', '--dir', empty]);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/no mesh in .*trustmesh up --dir/);
    const missing = await run(['up', '--dir', join(empty, 'm')], { env: { NATS_SERVER_BIN: join(empty, 'no-nats-server') } });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('apt-get install nats-server');
  });

  it('keys - keys new writes a 0600 key file and prints its DID; did resolve returns its DID document', async () => {
    const dir = await tempDir('tm-cli-keys-');
    const file = join(dir, 'me.key');
    const made = await run(['keys', 'new', '--out', file]);
    expect(made.code).toBe(0);
    const did = made.stdout.trim();
    expect(did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8')).did).toBe(did);
    const again = await run(['keys', 'new', '--out', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('--force');
    const resolved = await run(['did', 'resolve', did]);
    expect(resolved.code).toBe(0);
    const doc = JSON.parse(resolved.stdout) as { id: string; verificationMethod: { controller: string }[] };
    expect(doc.id).toBe(did);
    expect(doc.verificationMethod[0]!.controller).toBe(did);
  });

  it('up - a second process sees status, trust ls, request, kill/revive with acks and audit verify; Ctrl-C stops it; a second up resumes the kill state and audit', async () => {
    const dir = await tempDir('tm-cli-up-');
    let up = await startUp(dir);
    const agent = await startAgent(dir).catch(async (err) => {
      await up.stop();
      throw err;
    });
    try {
      expect(up.info).toMatchObject({ ready: true, mode: 'secure', mesh: 'local' });
      expect((await stat(join(dir, 'operator.key'))).mode & 0o777).toBe(0o600);

      const status = await run(['--json', 'status', '--dir', dir]);
      expect(status.code, status.stderr).toBe(0);
      const s = JSON.parse(status.stdout) as {
        mode: string;
        kill: { seq: number; all: boolean };
        agents: { did: string; name: string; tier: string }[];
      };
      expect(s.mode).toBe('secure');
      expect(s.kill).toMatchObject({ seq: 0, all: false });
      expect(s.agents.map((a) => a.did)).toEqual(expect.arrayContaining([up.info.broker, agent.did]));
      expect(s.agents.find((a) => a.did === agent.did)).toMatchObject({ name: 'worker', tier: 'standard' });

      const ls = await run(['--json', 'trust', 'ls', '--dir', dir]);
      expect(ls.code, ls.stderr).toBe(0);
      expect((JSON.parse(ls.stdout) as { did: string; tier: string }[]).find((r) => r.did === agent.did)).toMatchObject({
        tier: 'standard',
      });

      const sum = await run(['--json', 'request', agent.did, 'math.add', '[1,2,3]', '--dir', dir]);
      expect(sum.code, sum.stderr).toBe(0);
      expect(JSON.parse(sum.stdout)).toMatchObject({ reply: 6 });

      const kill = await run(['--json', 'kill', '--dir', dir]);
      expect(kill.code, kill.stderr).toBe(0);
      const killed = JSON.parse(kill.stdout) as {
        op: string;
        seq: number;
        acknowledged: number;
        expected: number;
        missing: string[];
        latencyMs: { p99: number };
      };
      expect(killed).toMatchObject({ op: 'kill', seq: 1, acknowledged: 1, expected: 1, missing: [], states: { halted: 1, running: 0 } });
      expect(killed.latencyMs.p99).toBeGreaterThan(0);
      const halted = JSON.parse((await run(['--json', 'status', '--dir', dir])).stdout) as { kill: { seq: number; all: boolean } };
      expect(halted.kill).toMatchObject({ seq: 1, all: true });
      const refused = await run(['request', agent.did, 'math.add', '[1]', '--dir', dir, '--timeout', '500']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('timeout');

      const verify = await run(['--json', 'audit', 'verify', '--dir', dir]);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      const report = JSON.parse(verify.stdout) as { ok: boolean; records: number; checkpoints: { pinned: boolean } };
      expect(report.ok).toBe(true);
      expect(report.records).toBeGreaterThan(0);
      expect(report.checkpoints.pinned).toBe(true);
      const tail = await run(['--json', 'audit', 'tail', '-n', '2', '--dir', dir]);
      expect(tail.code, tail.stderr).toBe(0);
      const lastTwo = tail.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { position: number });
      expect(lastTwo).toHaveLength(2);
      expect(lastTwo[1]!.position).toBe(lastTwo[0]!.position + 1);
      const acks = await run(['--json', 'audit', 'query', '--type', 'tm.kill.ack', '--dir', dir]);
      expect(
        acks.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).signer),
      ).toContain(agent.did);

      // Secure mode: admit a new key, revoke it; a revoked key is not re-admitted behind the operator's back.
      const keyFile = join(dir, 'guest.key');
      const guest = (await run(['keys', 'new', '--out', keyFile])).stdout.trim();
      const admitted = await run(['--json', 'admit', guest, '--name', 'guest', '--dir', dir]);
      expect(admitted.code, admitted.stderr).toBe(0);
      expect(JSON.parse(admitted.stdout)).toMatchObject({ did: guest, role: 'agent', name: 'guest' });
      const revoked = await run(['revoke', guest, '--dir', dir]);
      expect(revoked.code, revoked.stderr).toBe(0);
      expect(revoked.stdout).toContain('jwt updated');
      const asRevoked = await run(['send', agent.did, 'math.add', '[1]', '--key', keyFile, '--dir', dir]);
      expect(asRevoked.code).toBe(1);
      expect(asRevoked.stderr).toContain('was revoked');

      await agent.stop();
      expect(await up.stop()).toBe(0);
      const down = await run(['status', '--dir', dir]);
      expect(down.code).toBe(4);
      expect(down.stderr).toMatch(/cannot reach NATS .* is `trustmesh up` running/);

      up = await startUp(dir);
      const resumed = JSON.parse((await run(['--json', 'status', '--dir', dir])).stdout) as { kill: { seq: number; all: boolean } };
      expect(resumed.kill).toMatchObject({ seq: 1, all: true });
      const revive = await run(['--json', 'revive', '--dir', dir, '--timeout', '500']);
      expect(JSON.parse(revive.stdout)).toMatchObject({ op: 'revive', seq: 2 });
      const after = await run(['--json', 'audit', 'verify', '--dir', dir]);
      expect(JSON.parse(after.stdout)).toMatchObject({ ok: true });
      expect((JSON.parse(after.stdout) as { records: number }).records).toBeGreaterThan(report.records);
    } finally {
      await agent.stop();
      await up.stop();
    }
  }, 120_000);

  it('up --nodes 3 - a secure local cluster: status lists every node, kill/revive reach the agent, state is R3, Ctrl-C stops every node, a second up resumes it', async () => {
    const dir = await tempDir('tm-cli-cluster-');
    const up = await startUp(dir, ['--nodes', '3'], 45_000);
    const agent = await startAgent(dir).catch(async (err) => {
      await up.stop();
      throw err;
    });
    const nodes = up.info.natsNodes ?? [];
    try {
      expect(up.info).toMatchObject({ ready: true, mode: 'secure' });
      expect(nodes).toHaveLength(3);
      expect(up.info.natsUrls).toEqual(nodes.map((n) => n.url));
      const config = JSON.parse(await readFile(join(dir, 'trustmesh.json'), 'utf8')) as {
        nats: { urls: string[]; cluster: { nodes: { port: number; httpPort: number }[] } };
      };
      expect(config.nats.urls).toEqual(up.info.natsUrls);
      expect(config.nats.cluster.nodes.map((n) => `nats://127.0.0.1:${n.port}`)).toEqual(up.info.natsUrls);

      const status = await run(['--json', 'status', '--dir', dir]);
      expect(status.code, status.stderr).toBe(0);
      const s = JSON.parse(status.stdout) as { natsUrls: string[]; agents: { did: string }[] };
      expect(s.natsUrls).toEqual(up.info.natsUrls);
      expect(s.agents.map((a) => a.did)).toEqual(expect.arrayContaining([up.info.broker, agent.did]));
      expect((await run(['status', '--dir', dir])).stdout).toContain('3-node cluster');

      // The presence bucket and the audit capture stream are replicated on all three nodes.
      const jsz = (await (
        await fetch(`http://127.0.0.1:${config.nats.cluster.nodes[0]!.httpPort}/jsz?accounts=true&streams=true&config=true`)
      ).json()) as { account_details?: { stream_detail?: { name: string; config: { num_replicas: number } }[] }[] };
      const streams = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
      const replicas = Object.fromEntries(streams.map((st) => [st.name, st.config.num_replicas]));
      expect(replicas).toMatchObject({ KV_tm_local_presence: 3, tm_local_audit_capture: 3 });

      const kill = await run(['--json', 'kill', '--dir', dir]);
      expect(kill.code, kill.stderr).toBe(0);
      expect(JSON.parse(kill.stdout)).toMatchObject({ op: 'kill', seq: 1, acknowledged: 1, missing: [] });
      const revive = await run(['--json', 'revive', '--dir', dir]);
      expect(revive.code, revive.stderr).toBe(0);
      expect(JSON.parse(revive.stdout)).toMatchObject({ op: 'revive', seq: 2, acknowledged: 1, missing: [] });
    } finally {
      await agent.stop();
      expect(await up.stop()).toBe(0);
    }
    const gone = (list: { name: string; pid: number }[]) => {
      for (const node of list) expect(() => process.kill(node.pid, 0), `${node.name} (pid ${node.pid}) still running`).toThrow();
    };
    gone(nodes);

    // A second `up` (no --nodes) resumes the same cluster: same ports and stores, the kill state kept.
    const again = await startUp(dir, [], 45_000);
    try {
      expect(again.info.natsUrls).toEqual(up.info.natsUrls);
      const resumed = JSON.parse((await run(['--json', 'status', '--dir', dir])).stdout) as { kill: { seq: number } };
      expect(resumed.kill.seq).toBe(2);
    } finally {
      expect(await again.stop()).toBe(0);
    }
    gone(again.info.natsNodes ?? []);
  }, 90_000);

  it('bench - --list names the benchmarks of bench/', async () => {
    const list = await run(['--json', 'bench', '--list']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual(expect.arrayContaining(['signed-throughput', 'kill-propagation']));
  });

  it('demo - every step of the narrated scenario behaves as expected, and --json says so', async () => {
    const demo = await run(['--json', 'demo'], { timeoutMs: 60_000 });
    expect(demo.code, demo.stderr).toBe(0);
    const result = JSON.parse(demo.stdout) as { ok: boolean; steps: { step: string; status: string }[] };
    expect(result.ok).toBe(true);
    expect(result.steps).toHaveLength(8);
    expect(result.steps.map((s) => s.status)).toEqual(Array(8).fill('ok'));
    expect(demo.stderr).toContain('step 8');
  }, 90_000);
});
