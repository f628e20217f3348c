/**
 * `trustmesh demo`: a narrated scenario on a fresh embedded mesh (secure mode,
 * temp directory), one step per subsystem. Each step checks what it claims
 * and ends ok, failed or skipped (with why); the run exits 0 only if no step
 * failed.
 */
import { copyFile, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { openLogFile, verifyLog } from '@trustmesh/audit';
import { breakers, type Breakers } from '@trustmesh/breakers';
import { type Agent, joinMesh, type Tasks, tasks } from '@trustmesh/client';
import { createOperator, type KillSwitch, killSwitch } from '@trustmesh/kill';
import { type AgentKey, generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { type TrustGuard, trustGuard } from '@trustmesh/trust';
import { CliError, EXIT } from '../errors.ts';
import { startMesh, type RunningMesh } from '../mesh.ts';
import { createOutput, type Output, shortDid, table } from '../output.ts';
import { action } from './common.ts';

type StepStatus = 'ok' | 'failed' | 'skipped';

interface StepResult {
  step: string;
  status: StepStatus;
  detail: string;
  ms: number;
}

interface Member {
  name: string;
  key: AgentKey;
  agent: Agent;
  ks: KillSwitch;
  guard: TrustGuard;
  br: Breakers;
  t: Tasks;
}

/** bob's declared rules: math.add takes an array of at most 16 numbers (JSON Schema, re-checkable by the broker). */
const BOB_RULES = {
  types: {
    'math.add': { maxBytes: 1024, schema: { type: 'array', items: { type: 'number' }, maxItems: 16 } },
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(intervalMs);
  }
  return condition();
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'a narrated scenario on a fresh embedded mesh: signed requests, delegation, a forged frame, trust falling, a breaker, kill and revive, the audit chain; exits 0 only if every step behaved as expected',
    )
    .option('--keep', 'keep the temp mesh directory (its path is printed)', false)
    .option('--open', 'run the mesh in open mode instead of secure mode', false)
    .action(
      action(async (_out, opts: { keep: boolean; open: boolean; json: boolean }) => {
        const out = createOutput(opts.json);
        const code = await runDemo(out, opts);
        process.exitCode = code;
      }),
    );
}

async function runDemo(out: Output, opts: { keep: boolean; open: boolean }): Promise<number> {
  const say = (text = '') => out.line(text);
  const dir = await mkdtemp(join(tmpdir(), 'trustmesh-demo-'));
  const names = new Map<string, string>();
  const who = (did: string | undefined) => (did === undefined ? '?' : (names.get(did) ?? shortDid(did)));
  const results: StepResult[] = [];
  let mesh: RunningMesh | undefined;
  const members: Member[] = [];
  try {
    say('TrustMesh demo: a fresh mesh in a temp directory; every frame below is signed by its sender and verified by its receiver.');
    out.progress(`starting a fresh ${opts.open ? 'open' : 'secure'} mesh in ${dir}`);
    try {
      mesh = await startMesh({
        dir,
        mesh: 'demo',
        open: opts.open,
        out: createOutput(true, true),
        checkpointIntervalMs: 1_000,
        broker: { declarationMarginMs: 500 },
      });
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(EXIT.failure, `could not start the demo mesh: ${(err as Error).message}`, { cause: err });
    }
    const m = mesh;
    const { config } = m;
    names.set(config.operator.did, 'operator').set(config.broker.did, 'broker').set(config.audit.did, 'audit');
    say(`mesh "${config.mesh}" up in ${config.mode} mode on ${m.url}`);
    say(`  operator ${config.operator.did}\n  broker   ${config.broker.did}\n  audit    ${config.audit.did}`);

    const rootAuthority: Record<string, string[]> = {};
    const enlist = async (name: string, extra: { policy?: typeof BOB_RULES; capabilities?: string[]; key?: AgentKey } = {}) => {
      const key = extra.key ?? generateKey();
      names.set(key.did, name);
      const ks = killSwitch({ operators: [config.operator.did] });
      const guard = trustGuard({ brokers: [config.broker.did], reportViolations: true, ...(extra.policy && { policy: extra.policy }) });
      const br = breakers({ volumeThreshold: 3, resetTimeoutMs: 10_000, isBlocked: ks.isBlocked });
      const t = tasks({ key, rootAuthority, maxDepth: 3 });
      const agent = await joinMesh({
        mesh: config.mesh,
        name,
        key,
        connection: await m.connectAs(key, 'agent', name),
        authenticatedTransport: config.mode === 'secure',
        capabilities: extra.capabilities ?? [],
        extensions: [ks, guard, br, t],
      });
      const member = { name, key, agent, ks, guard, br, t };
      members.push(member);
      return member;
    };

    const step = async (name: string, narration: string, fn: () => Promise<{ ok: boolean; detail: string } | { skipped: string }>) => {
      say(`\n== ${results.length + 1}. ${name}`);
      say(`   ${narration}`);
      out.progress(`step ${results.length + 1}: ${name}`);
      const started = performance.now();
      let result: StepResult;
      try {
        const r = await fn();
        const ms = Math.round(performance.now() - started);
        result =
          'skipped' in r
            ? { step: name, status: 'skipped', detail: r.skipped, ms }
            : { step: name, status: r.ok ? 'ok' : 'failed', detail: r.detail, ms };
      } catch (err) {
        result = { step: name, status: 'failed', detail: `threw: ${(err as Error).message}`, ms: Math.round(performance.now() - started) };
      }
      results.push(result);
      say(`   -> ${result.status === 'ok' ? 'ok' : result.status.toUpperCase()}: ${result.detail} (${result.ms} ms)`);
    };

    // The cast. bob serves math and declares rules; dave is a fetcher that is sometimes stuck; carol plans; mallory misbehaves.
    out.progress('agents joining: alice, bob, carol, dave, mallory');
    const carolKey = generateKey();
    rootAuthority[carolKey.did] = ['report:**', 'fetch:**'];
    const alice = await enlist('alice');
    const bob = await enlist('bob', { policy: BOB_RULES, capabilities: ['math.add'] });
    const carol = await enlist('carol', { key: carolKey });
    const dave = await enlist('dave', { capabilities: ['fetch:web/**', 'slow'] });
    const mallory = await enlist('mallory');
    say(`\nagents: ${members.map((x) => `${x.name} ${shortDid(x.key.did)}`).join(', ')}`);
    bob.agent.handle('math.add', (data) => (data as number[]).reduce((a, b) => a + b, 0));
    dave.agent.handle('slow', () => new Promise(() => undefined)); // never answers
    await waitFor(() => alice.agent.peers().some((p) => p.did === bob.key.did), 3_000);

    await step(
      'signed requests verified',
      'alice asks bob to add numbers; each request and reply is signed, and verified before anyone reads it.',
      async () => {
        const before = bob.agent.stats().accepted;
        const sum = await alice.agent.request<number>(bob.key.did, 'math.add', [1, 2, 3, 4]);
        const started = performance.now();
        const again = await alice.agent.request<number>(bob.key.did, 'math.add', [40, 2]);
        const ms = performance.now() - started;
        const accepted = bob.agent.stats().accepted - before;
        say(`   alice <- bob: 1+2+3+4 = ${sum}; 40+2 = ${again} (round trip ${ms.toFixed(1)} ms, bob verified ${accepted} frames)`);
        return {
          ok: sum === 10 && again === 42 && accepted >= 2,
          detail: `2 verified replies (${sum}, ${again}), ${accepted} frames verified by bob`,
        };
      },
    );

    await step(
      'a delegation chain',
      'carol (a root authority for report:** and fetch:**) delegates a report to bob; bob sub-delegates a narrower fetch to dave. Each hop verifies the whole chain.',
      async () => {
        let chainAtDave = 0;
        dave.t.serve('fetch:web/**', async (url, ctx) => {
          chainAtDave = ctx.chain.length;
          ctx.update('working', `fetching ${String(url)}`);
          return { url, bytes: 1234 };
        });
        bob.t.serve('report:**', async (topic, ctx) => {
          ctx.update('working', 'asking dave for a page');
          const page = await ctx.delegate({ to: dave.key.did, capability: 'fetch:web/nats.io', scope: ['fetch:web/**'], input: 'nats.io' })
            .result;
          return { topic, sources: [page] };
        });
        const task = carol.t.delegate({
          to: bob.key.did,
          capability: 'report:nats',
          scope: ['report:**', 'fetch:web/**'],
          input: 'NATS',
          depth: 2,
          timeoutMs: 10_000,
        });
        task.onStatus((s) =>
          say(`   carol sees ${s.state}${s.message ? `: ${s.message}` : ''}${s.from ? ` (signed by ${who(s.from)})` : ''}`),
        );
        const result = (await task.result) as { sources: unknown[] };
        say(`   dave verified a chain of ${chainAtDave} links: carol -> bob [report:**, fetch:web/**] -> dave [fetch:web/**]`);
        return {
          ok: task.state === 'completed' && result.sources.length === 1 && chainAtDave === 2,
          detail: `task ${task.state}, chain of ${chainAtDave} links verified at dave, scope narrowed at each hop`,
        };
      },
    );

    await step(
      'a forged frame refused and counted',
      "mallory publishes a frame that claims alice as its signer (alice's key in the header) on her own subject, and one of her own frames with a single bit changed.",
      async () => {
        const before = bob.agent.stats().rejectedTotal;
        const rejected: string[] = [];
        const off = bob.agent.on('rejected', (e) => rejected.push(e.reason));
        const sub = subjects.message(config.mesh, bob.key.agentId, mallory.key.agentId);
        const real = signFrame(mallory.key, { sub, typ: 'math.add', aud: bob.key.did, data: [1, 2] }).bytes;
        const forged = Uint8Array.from(real);
        forged.set(alice.key.publicKey, 1); // header: version(1) | signer public key(32) | signature(64) | body
        const flipped = Uint8Array.from(real);
        flipped[flipped.length - 1]! ^= 0x01;
        const raw = await m.connectAs(mallory.key, 'agent', 'mallory-raw');
        raw.publish(sub, forged);
        raw.publish(sub, flipped);
        await raw.flush();
        await waitFor(() => bob.agent.stats().rejectedTotal - before >= 2, 3_000);
        off();
        await raw.close();
        const counted = bob.agent.stats().rejectedTotal - before;
        const why: Record<string, string> = {
          subject_mismatch: "the key in the header is not the publisher named by the subject (alice's key on mallory's subject)",
          bad_signature: 'the signature does not match the bytes',
          issuer_mismatch: 'the issuer is not the signing key',
        };
        say(`   bob refused: ${rejected.join(', ')}; bob's counters: ${JSON.stringify(nonZero(bob.agent.stats().rejected))}`);
        for (const reason of new Set(rejected)) say(`   ${reason}: ${why[reason] ?? 'refused before any handler'}`);
        return { ok: counted >= 2, detail: `${counted} frames refused (${rejected.join(', ')}), none reached a handler` };
      },
    );

    await step(
      "a misbehaving agent's trust falling until its peers refuse it",
      'bob declared rules for math.add (an array of numbers). mallory keeps sending strings; bob refuses each and reports the signed frame to the broker, which re-checks it and lowers her score.',
      async () => {
        await sleep(700); // bob's rules must be on record before mallory signs (the broker's declaration margin)
        const start = mallory.guard.trustOf(mallory.key.did);
        say(`   mallory starts at ${start} (${mallory.guard.tierOf(mallory.key.did)})`);
        let sent = 0;
        let lastScore = start;
        for (let i = 0; i < 10 && alice.guard.tierOf(mallory.key.did) !== 'untrusted'; i++) {
          mallory.agent.send(bob.key.did, 'math.add', `not numbers #${i}`);
          sent++;
          const seen = await waitFor(() => bob.guard.trustOf(mallory.key.did) < lastScore, 3_000);
          lastScore = bob.guard.trustOf(mallory.key.did);
          say(
            `   violation ${sent}: mallory now ${lastScore} (${bob.guard.tierOf(mallory.key.did)}) as bob's cache has it${seen ? '' : ' (no update yet)'}`,
          );
        }
        await waitFor(() => alice.guard.tierOf(mallory.key.did) === 'untrusted', 3_000);
        // Now her peers refuse her: bob's inbound guard, alice's outbound guard.
        const refusedBefore = bob.agent.stats().rejected.untrusted ?? 0;
        const outcome = await mallory.agent.request(bob.key.did, 'math.add', [1, 2], { timeoutMs: 500 }).then(
          () => 'answered',
          (e: { code?: string }) => e.code ?? 'error',
        );
        await waitFor(() => (bob.agent.stats().rejected.untrusted ?? 0) > refusedBefore, 1_000);
        const refusedByBob = (bob.agent.stats().rejected.untrusted ?? 0) - refusedBefore;
        let aliceRefuses = false;
        try {
          alice.agent.send(mallory.key.did, 'hello', 'hi');
        } catch (err) {
          aliceRefuses = (err as { code?: string }).code === 'untrusted' || (err as Error).name === 'UntrustedPeerError';
        }
        const view = await m.broker.view(mallory.key.did);
        say(
          `   broker: mallory ${view.score} (${view.tier}); her request to bob: ${outcome}, refused by bob as untrusted: ${refusedByBob}; alice refuses to send to her: ${aliceRefuses}`,
        );
        return {
          ok: view.tier === 'untrusted' && refusedByBob >= 1 && outcome !== 'answered' && aliceRefuses,
          detail: `${start} -> ${view.score} after ${sent} violations; bob refuses her frames, alice refuses to send to her`,
        };
      },
    );

    await step(
      'a breaker opening',
      'alice calls dave\'s "slow" handler, which never answers: three timeouts open alice\'s breaker for dave, then calls fail fast.',
      async () => {
        const outcomes: string[] = [];
        for (let i = 0; i < 4; i++) {
          const started = performance.now();
          const outcome = await alice.agent.request(dave.key.did, 'slow', i, { timeoutMs: 200 }).then(
            () => 'answered',
            (e: { code?: string }) => e.code ?? 'error',
          );
          outcomes.push(`${outcome} (${Math.round(performance.now() - started)} ms)`);
        }
        const state = alice.br.breakers().find((b) => b.peer === dave.key.did);
        say(`   alice -> dave: ${outcomes.join(', ')}`);
        say(`   alice's breaker for dave: ${state?.state ?? 'none'}${state && 'reason' in state ? ` (${String(state.reason)})` : ''}`);
        return {
          ok: state?.state === 'open' && outcomes.at(-1)!.startsWith('breaker_open'),
          detail: `breaker ${state?.state ?? 'missing'}; last call ${outcomes.at(-1)}`,
        };
      },
    );

    const agentIds = () => members.map((x) => x.key.agentId);
    const operatorNc = await m.connectAs(m.operatorKey, 'operator', 'demo-operator');
    const operator = await createOperator({
      key: m.operatorKey,
      mesh: config.mesh,
      connection: operatorNc,
      operators: [config.operator.did],
      knownAgents: agentIds,
      timeoutMs: 3_000,
    });
    try {
      await step(
        'an operator kill halts every agent',
        'the operator signs a kill; every agent stops sending, refuses work and answers with a signed "halted".',
        async () => {
          const result = await operator.kill();
          let refused = '';
          try {
            alice.agent.send(bob.key.did, 'math.add', [1]);
          } catch (err) {
            refused = (err as { code?: string }).code ?? (err as Error).name;
          }
          const halted = members.filter((x) => x.ks.state().halted).length;
          say(
            `   ${result.acknowledged}/${result.expected} acknowledged halted; ack latency p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms, max ${result.latencyMs.max.toFixed(1)} ms`,
          );
          say(`   alice.send now throws: ${refused || 'nothing'}`);
          return {
            ok:
              result.acknowledged === members.length &&
              result.states.halted === members.length &&
              halted === members.length &&
              refused === 'killed',
            detail: `${result.acknowledged}/${result.expected} halted and acknowledged, p99 ${result.latencyMs.p99.toFixed(1)} ms`,
          };
        },
      );

      await step('revive', 'the operator signs a revive; agents acknowledge and traffic flows again.', async () => {
        const result = await operator.revive();
        const sum = await alice.agent.request<number>(bob.key.did, 'math.add', [2, 3]);
        say(
          `   ${result.acknowledged}/${result.expected} acknowledged running (p99 ${result.latencyMs.p99.toFixed(1)} ms); alice <- bob: 2+3 = ${sum}`,
        );
        return {
          ok: result.acknowledged === members.length && result.states.running === members.length && sum === 5,
          detail: `${result.acknowledged}/${result.expected} running again; a request succeeds`,
        };
      });
    } finally {
      await operator.close();
    }

    await step(
      'the audit chain verified, then a tampered copy caught',
      'the audit service hash-chained every frame above; an auditor re-verifies chain, checkpoints and every signature, then flips one byte of a copy.',
      async () => {
        await m.audit.caughtUp(10_000);
        await m.audit.checkpoint();
        const path = join(dir, config.audit.log);
        const report = await verifyLog(await openLogFile(path), { trusted: config.audit.did, workers: 1 });
        say(
          `   ${path}: ${report.ok ? 'OK' : 'FAILED'}, ${report.records} records, ${report.checkpoints.valid} signed checkpoints, verdicts ${JSON.stringify(report.verdicts)}`,
        );
        const copy = join(dir, 'tampered.log');
        await copyFile(path, copy);
        await copyFile(`${path}.checkpoints`, `${copy}.checkpoints`).catch(() => undefined);
        const size = (await stat(copy)).size;
        const at = Math.floor(size * 0.6);
        const handle = await open(copy, 'r+');
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, at);
        byte[0]! ^= 0x20;
        await handle.write(byte, 0, 1, at);
        await handle.close();
        const tampered = await verifyLog(await openLogFile(copy), { trusted: config.audit.did, workers: 1 });
        const first = tampered.problems[0];
        say(
          `   tampered copy (byte ${at} of ${size} changed): ${tampered.ok ? 'OK?!' : `FAILED at position ${tampered.firstBad?.position}`}${first ? ` (${first.problem}: ${first.detail})` : ''}`,
        );
        return {
          ok: report.ok && report.records > 0 && !tampered.ok,
          detail: `${report.records} records verified; the tampered copy fails at position ${tampered.firstBad?.position} (${tampered.firstBad?.problem})`,
        };
      },
    );
  } finally {
    for (const x of members.reverse()) await x.agent.leave().catch(() => undefined);
    await mesh?.stop().catch(() => undefined);
    if (opts.keep) out.warn(`mesh directory kept: ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }

  const ok = results.every((r) => r.status !== 'failed');
  out.result({
    ok,
    steps: results,
    skipped: results.filter((r) => r.status === 'skipped').length,
    agents: Object.fromEntries([...names].map(([did, name]) => [name, did])),
  });
  say('\nsummary');
  say(
    table(
      ['#', 'step', 'result', 'ms', 'detail'],
      results.map((r, i) => [String(i + 1), r.step, r.status, String(r.ms), r.detail]),
    ),
  );
  say(ok ? '\nevery step behaved as expected.' : '\nUNEXPECTED: see the failed steps above.');
  return ok ? EXIT.ok : EXIT.failure;
}

function nonZero(counts: Partial<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter((e): e is [string, number] => (e[1] ?? 0) > 0));
}
