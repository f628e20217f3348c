/**
 * Delegation across a mesh: a planner delegates research to a researcher, which
 * sub-delegates narrower fetches to whichever fetcher of a queue group takes
 * them. The run prints the task tree with its states and the capability chain
 * each hop verified; a second part shows a delegator signing a wider grant than
 * it holds, the worker refusing it, and the evidence a broker re-checks.
 *
 *   npx tsx examples/delegation/index.ts          (add --json for a summary)
 */
import { createScorer } from '@trustmesh/broker';
import { type Agent, type ChainViolation, joinMesh, type TaskSnapshot, type Tasks, tasks } from '@trustmesh/client';
import { NatsServerError, type NatsServerHandle, startNatsServer } from '@trustmesh/embedded-nats';
import {
  type AgentKey,
  type CapabilityToken,
  DelegationError,
  delegate,
  generateKey,
  toHex,
  tokenHash,
  verifyEvidence,
} from '@trustmesh/protocol';
import { signUncheckedLink } from './unchecked-link.ts';

const json = process.argv.includes('--json');
const say = (line = '') => {
  if (!json) console.log(line);
};
const names = new Map<string, string>();
const who = (did: string | undefined) => (did === undefined ? '?' : (names.get(did) ?? `${did.slice(0, 14)}…`));

interface Member {
  name: string;
  key: AgentKey;
  t: Tasks;
  agent: Agent;
}

async function main(): Promise<number> {
  let server: NatsServerHandle;
  try {
    server = await startNatsServer();
  } catch (err) {
    if (err instanceof NatsServerError) {
      console.error(`error [${err.code}]: ${err.message}`);
      return 3;
    }
    throw err;
  }
  const members: Member[] = [];
  try {
    say(`nats-server started on ${server.url} (private)`);
    const mesh = 'delegation';
    const plannerKey = generateKey();
    // The mesh configuration: the planner is the one root authority, and what it may grant.
    const rootAuthority = { [plannerKey.did]: ['research:**', 'fetch:web/**'] };
    const violations: ChainViolation[] = [];
    const join = async (name: string, key = generateKey()) => {
      const t = tasks({ key, rootAuthority, maxDepth: 3, onViolation: (v) => violations.push(v) });
      const agent = await joinMesh({ mesh, name, key, servers: server.url, extensions: [t] });
      names.set(key.did, name);
      const member = { name, key, t, agent };
      members.push(member);
      return member;
    };
    const planner = await join('planner', plannerKey);
    const researcher = await join('researcher');
    const fetchers = [await join('fetcher-1'), await join('fetcher-2')];

    for (const fetcher of fetchers) {
      fetcher.t.serve('fetch:web/**', async (url, ctx) => {
        ctx.update('working', `fetching ${String(url)}`);
        await new Promise((r) => setTimeout(r, 20));
        return { url, bytes: 1000 + String(url).length, by: fetcher.name };
      });
    }
    let researcherChain: readonly CapabilityToken[] = [];
    researcher.t.serve('research:**', async (topic, ctx) => {
      researcherChain = ctx.chain;
      const pages = ['nats.io/docs/jetstream', 'nats.io/docs/queue-groups'];
      ctx.update('working', `asking the fetchers for ${pages.length} pages`);
      // One call per page: the link is signed for whichever fetcher claims it, with a scope narrower than ours.
      const fetches = pages.map((page) =>
        ctx.delegate({
          to: { capability: 'fetch:web/**' },
          capability: `fetch:web/${page}`,
          scope: ['fetch:web/nats.io/docs/**'],
          input: page,
        }),
      );
      const results = await Promise.all(fetches.map((f) => f.result));
      return { topic, sources: results };
    });

    say('\npart 1: planner -> researcher -> fetchers (queue group fetch:web/**)');
    const task = planner.t.delegate({
      to: researcher.key.did,
      capability: 'research:topics/nats',
      scope: ['research:topics/**', 'fetch:web/nats.io/**'],
      input: 'NATS queue groups',
      depth: 2,
      timeoutMs: 10_000,
    });
    task.onStatus((s) =>
      say(`  planner sees ${s.state}${s.message ? `: ${s.message}` : ''}${s.from ? ` (signed by ${who(s.from)})` : ''}`),
    );
    const report = (await task.result) as { topic: string; sources: { url: string; by: string }[] };
    say(`  result: ${report.sources.length} sources on "${report.topic}", fetched by ${report.sources.map((s) => s.by).join(' and ')}`);

    const snapshots = members.flatMap((m) => m.t.list().filter((s) => s.role === 'delegator'));
    say('\ntask tree (state, history, and the chain the worker verified):');
    printTree(snapshots, undefined, '  ');

    say('\npart 2: the researcher tries to grant more than it holds');
    try {
      delegate(researcherChain.at(-1)!, researcher.key, { audience: fetchers[0]!.key.did, scope: ['fetch:**'] });
    } catch (err) {
      if (!(err instanceof DelegationError)) throw err;
      say(`  the API refuses to sign it: ${err.message}`);
    }
    say(`  so the researcher signs the link by hand: fetch:** under its ${researcherChain.at(-1)!.scope.join(', ')}`);
    const wider = signUncheckedLink(researcher.key, researcherChain.at(-1)!, fetchers[0]!.key.did, ['fetch:**']);
    const rogue = researcher.t.delegate({
      to: fetchers[0]!.key.did,
      capability: 'fetch:intranet/payroll',
      chain: [...researcherChain, wider],
      presigned: true,
    });
    const refusal = await rogue.result.then(
      () => undefined,
      (e: { reason?: string; link?: number; message: string }) => e,
    );
    say(`  fetcher-1 refused before running anything: ${refusal?.reason} at link ${refusal?.link} (task ${rogue.state})`);
    const violation = violations.find((v) => v.reason === 'scope_escalation');
    const evidence = violation?.evidence;
    const check = evidence === undefined ? undefined : verifyEvidence(evidence.parent, evidence.token);
    say(
      `  evidence against ${who(violation?.attributableTo)}: parent + offending token, re-checked: ${check?.attributable ? check.reason : 'no'}`,
    );
    const scorer = createScorer();
    const now = Date.now();
    const before = scorer.newState(violation?.attributableTo ?? 'did:key:none', now);
    const after = evidence && scorer.applyEvidence(before, { event: 'scope_escalation', key: toHex(tokenHash(evidence.token)) }, now);
    const scoreBefore = scorer.currentScore(before, now);
    const scoreAfter = after === undefined ? scoreBefore : scorer.currentScore(after.state, now);
    say(
      `  the broker's scoring of that evidence: ${who(violation?.attributableTo)} ${scoreBefore} -> ${scoreAfter} (${scorer.tier(after?.state ?? before, now)})`,
    );

    const ok =
      task.state === 'completed' &&
      snapshots.length === 3 &&
      snapshots.every((s) => s.state === 'completed') &&
      rogue.state === 'rejected' &&
      refusal?.reason === 'scope_escalation' &&
      violation?.attributableTo === researcher.key.did &&
      check?.attributable === true &&
      scoreAfter < scoreBefore;
    if (json) {
      console.log(
        JSON.stringify(
          {
            ok,
            server: server.url,
            agents: Object.fromEntries([...names].map(([did, name]) => [name, did])),
            tree: snapshots.map((s) => ({
              id: s.id,
              parent: s.parent ?? null,
              capability: s.capability,
              from: who(s.chain.at(-1)?.issuer),
              to: who(s.peer),
              state: s.state,
              states: s.history.map((h) => h.state),
              chain: s.chain.map((l) => ({ issuer: who(l.issuer), audience: who(l.audience), scope: l.scope, depth: l.depth })),
            })),
            escalation: {
              state: rogue.state,
              reason: refusal?.reason,
              link: refusal?.link,
              attributable_to: who(violation?.attributableTo),
              evidence_verified: check?.attributable === true,
              score_before: scoreBefore,
              score_after: scoreAfter,
            },
          },
          null,
          2,
        ),
      );
    } else {
      say(
        ok ? '\nthe chain narrowed at every hop; the escalation was refused with evidence against its signer.' : '\nUNEXPECTED: see above',
      );
    }
    return ok ? 0 : 1;
  } finally {
    for (const m of members.reverse()) await m.agent.leave().catch(() => undefined);
    await server.stop();
  }
}

function printTree(all: TaskSnapshot[], parent: string | undefined, indent: string): void {
  for (const s of all.filter((x) => x.parent === parent)) {
    const last = s.chain.at(-1);
    say(`${indent}${s.capability}  ${who(last?.issuer)} -> ${who(s.peer)}  ${s.state}  [${s.history.map((h) => h.state).join(' > ')}]`);
    s.chain.forEach((link, i) => {
      say(`${indent}   link ${i}: ${who(link.issuer)} grants ${who(link.audience)} [${link.scope.join(', ')}] depth ${link.depth}`);
    });
    printTree(all, s.id, `${indent}    `);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('delegation example failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
