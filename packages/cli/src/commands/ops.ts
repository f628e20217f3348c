import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { joinMesh } from '@trustmesh/client';
import { createOperator, type OperationResult } from '@trustmesh/kill';
import { type AgentKey, generateKey, tryPublicKeyFromDid } from '@trustmesh/protocol';
import { describeMode, openModeWarning, ROLES, type Role } from '@trustmesh/secure';
import { CliError, EXIT, failure, usageError } from '../errors.ts';
import { connectTo, type MeshTarget, operatorKeyOf, resolveTarget } from '../mesh.ts';
import { type Output, shortDid, table } from '../output.ts';
import { positiveInt, withTarget } from '../program.ts';
import { type BreakerRecord, readBreakers, readPresence, readScore, readScores } from '../state.ts';
import { join } from 'node:path';
import { loadKey, paths } from '../config.ts';
import { action } from './common.ts';

interface TargetOpts {
  dir: string;
  nats?: string;
  mesh?: string;
  key?: string;
}

/** Connects to the mesh as its operator (the CLI's own identity for reads and control). */
async function asOperator(opts: TargetOpts, out: Output): Promise<{ target: MeshTarget; key: AgentKey; nc: NatsConnection }> {
  const target = await resolveTarget(opts);
  const key = await operatorKeyOf(target, opts.key);
  out.progress(`connecting to ${target.urls.join(', ')} (mesh ${target.mesh}, ${target.mode} mode) as operator ${shortDid(key.did)}`);
  const nc = await connectTo(target.urls, target.mode, target.authority, key, 'operator', 'trustmesh-cli');
  return { target, key, nc };
}

function checkDid(did: string): string {
  if (tryPublicKeyFromDid(did) === undefined)
    throw usageError(`not an Ed25519 did:key: ${JSON.stringify(did.slice(0, 120))} (expected did:key:z6Mk…)`);
  return did;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw usageError(`DATA must be JSON, e.g. '{"a":1}' or '[1,2]' or '"text"' (got ${JSON.stringify(text.slice(0, 80))})`);
  }
}

export function registerOps(program: Command): void {
  withTarget(program.command('status'))
    .description('agents (presence registry), their trust tiers, the kill state and the mode of a running mesh')
    .option('--key <file>', "operator key file (default: the mesh directory's)")
    .action(
      action(async (out, opts: TargetOpts) => {
        const { target, key, nc } = await asOperator(opts, out);
        try {
          const [agents, scores] = await Promise.all([readPresence(nc, target.mesh), readScores(nc, target.mesh)]);
          const byDid = new Map(scores.map((s) => [s.did, s]));
          const operator = await createOperator({ key, mesh: target.mesh, connection: nc, operators: [key.did], knownAgents: () => [] });
          const kill = await operator.state().finally(() => operator.close());
          // Breakers live in each agent; their transitions are signed frames, kept by the audit log of the mesh directory.
          let breakers: BreakerRecord[] | undefined;
          if (target.config !== undefined) {
            breakers = await readBreakers(join(paths(target.dir).root, target.config.audit.log)).catch(() => undefined);
          }
          const names = new Map(agents.map((a) => [a.did, a.name]));
          const rows = agents.map((a) => {
            const s = byDid.get(a.did);
            return {
              name: a.name,
              did: a.did,
              status: a.status,
              score: s?.score ?? 500,
              tier: s?.tier ?? 'standard',
              killed: kill.all || kill.killed.includes(a.did),
              capabilities: a.capabilities,
              lastSeenMs: Date.now() - a.iat,
            };
          });
          const status = {
            mesh: target.mesh,
            mode: target.mode,
            modeDescription: describeMode(target.mode),
            nats: target.url,
            natsUrls: target.urls,
            operator: target.config?.operator.did,
            broker: target.config?.broker.did,
            audit: target.config?.audit.did,
            kill: { seq: kill.seq, all: kill.all, killed: kill.killed, by: kill.by },
            agents: rows,
            breakers: breakers ?? null,
          };
          out.result(status);
          out.line(
            target.urls.length > 1
              ? `mesh ${target.mesh} on a ${target.urls.length}-node cluster: ${target.urls.join(', ')}`
              : `mesh ${target.mesh} on ${target.url}`,
          );
          out.line(`mode: ${describeMode(target.mode)}`);
          if (target.mode === 'open') out.warn(openModeWarning(target.url));
          if (target.config) {
            out.line(`operator ${target.config.operator.did}`);
            out.line(`broker   ${target.config.broker.did}`);
            out.line(`audit    ${target.config.audit.did}`);
          }
          out.line(
            `kill state: ${kill.all ? 'WHOLE MESH HALTED' : kill.killed.length > 0 ? `${kill.killed.length} agent(s) halted` : 'running'} (seq ${kill.seq}${kill.by ? `, by ${shortDid(kill.by)}` : ''})`,
          );
          out.line(`agents (${rows.length}):`);
          out.line(
            table(
              ['name', 'did', 'presence', 'score', 'tier', 'halted', 'seen'],
              rows.map((r) => [
                r.name,
                shortDid(r.did),
                r.status,
                String(r.score),
                r.tier,
                r.killed ? 'yes' : 'no',
                `${Math.round(r.lastSeenMs / 1000)}s ago`,
              ]),
            ),
          );
          if (breakers === undefined)
            out.line('breakers: no audit log here (breaker transitions are signed frames on tm.<mesh>.breaker.<agent>)');
          else {
            const notClosed = breakers.filter((b) => b.state !== 'closed');
            out.line(
              `breakers (last transition per agent and peer, from the audit log): ${notClosed.length} not closed, ${breakers.length} in all`,
            );
            if (notClosed.length > 0) {
              out.line(
                table(
                  ['agent', 'peer', 'state', 'reason', 'failures', 'since'],
                  notClosed.map((b) => [
                    names.get(b.agent) ?? shortDid(b.agent),
                    names.get(b.peer) ?? shortDid(b.peer),
                    b.state,
                    b.reason ?? '',
                    String(b.failures),
                    `${Math.round((Date.now() - b.since) / 1000)}s ago`,
                  ]),
                ),
              );
            }
          }
        } finally {
          await nc.close();
        }
      }),
    );

  const trust = program.command('trust').description('trust scores kept by the broker (0-1000, tiers)');
  withTarget(trust.command('get'))
    .description('the current score and tier of one DID')
    .argument('<did>', "the agent's did:key")
    .option('--key <file>', "operator key file (default: the mesh directory's)")
    .action(
      action(async (out, opts: TargetOpts, did: string) => {
        checkDid(did);
        const { target, nc } = await asOperator(opts, out);
        try {
          const score = await readScore(nc, target.mesh, did);
          out.result(score);
          out.line(`${did}: ${score.score} (${score.tier})${score.stored ? '' : ' — never scored: the baseline for a new DID'}`);
        } finally {
          await nc.close();
        }
      }),
    );
  withTarget(trust.command('ls'))
    .description('every scored agent and every agent present, with score and tier')
    .option('--key <file>', "operator key file (default: the mesh directory's)")
    .action(
      action(async (out, opts: TargetOpts) => {
        const { target, nc } = await asOperator(opts, out);
        try {
          const [agents, scores] = await Promise.all([readPresence(nc, target.mesh), readScores(nc, target.mesh)]);
          const names = new Map(agents.map((a) => [a.did, a.name]));
          const all = new Map(scores.map((s) => [s.did, s]));
          for (const a of agents) if (!all.has(a.did)) all.set(a.did, { did: a.did, score: 500, tier: 'standard', stored: false });
          const list = [...all.values()].sort((a, b) => a.score - b.score).map((s) => ({ ...s, name: names.get(s.did) ?? '' }));
          out.result(list);
          out.line(
            table(
              ['did', 'name', 'score', 'tier'],
              list.map((s) => [s.did, s.name, String(s.score), s.tier]),
            ),
          );
        } finally {
          await nc.close();
        }
      }),
    );

  for (const kind of ['send', 'request'] as const) {
    withTarget(program.command(kind))
      .description(
        kind === 'send' ? 'send a signed one-way message to an agent' : 'send a signed request to an agent and print its verified reply',
      )
      .argument('<did>', "the recipient's did:key")
      .argument('<type>', 'message type, e.g. math.add')
      .argument('[data]', 'payload as JSON', 'null')
      .option('--key <file>', 'send as this agent key (default: a fresh key, admitted for this call in secure mode)')
      .option('--timeout <ms>', 'request timeout', positiveInt('--timeout'), 5000)
      .action(
        action(async (out, opts: TargetOpts & { timeout: number }, did: string, typ: string, dataText: string) => {
          checkDid(did);
          const data = parseJson(dataText);
          const target = await resolveTarget(opts);
          const key = opts.key !== undefined ? await loadKey(opts.key) : generateKey();
          const nc = await connectTo(target.urls, target.mode, target.authority, key, 'agent', 'trustmesh-cli');
          const agent = await joinMesh({
            mesh: target.mesh,
            name: 'trustmesh-cli',
            key,
            connection: nc,
            authenticatedTransport: target.mode === 'secure',
            presence: { registry: false },
          });
          try {
            const start = performance.now();
            if (kind === 'send') {
              agent.send(did, typ, data);
              await nc.flush();
              out.result({ sent: true, from: key.did, to: did, type: typ });
              out.line(`sent ${typ} to ${did} (signed by ${key.did})`);
            } else {
              try {
                out.progress(`request ${typ} to ${shortDid(did)}: waiting up to ${opts.timeout} ms for a verified reply`);
                const reply = await agent.request(did, typ, data, { timeoutMs: opts.timeout });
                const ms = performance.now() - start;
                out.result({ from: key.did, to: did, type: typ, reply, ms: Number(ms.toFixed(2)) });
                out.line(JSON.stringify(reply));
                out.progress(`verified reply from ${shortDid(did)} in ${ms.toFixed(1)} ms`);
              } catch (err) {
                const code = (err as { code?: string }).code;
                throw failure(
                  `${typ} to ${did} failed: ${code ?? ''} ${(err as Error).message}${code === 'timeout' ? ' (is the agent on this mesh, and does it handle this type?)' : ''}`,
                  err,
                );
              }
            }
          } finally {
            await agent.leave().catch(() => undefined);
            await nc.close().catch(() => undefined);
          }
        }),
      );
  }

  for (const op of ['kill', 'revive'] as const) {
    withTarget(program.command(op))
      .description(
        op === 'kill'
          ? 'halt every agent (or one with --agent), signed by the operator; prints the acknowledgements and their timing'
          : 'revive every agent (or one with --agent); prints the acknowledgements and their timing',
      )
      .option('--agent <did>', 'only this agent')
      .option('--key <file>', "operator key file (default: the mesh directory's)")
      .option('--timeout <ms>', 'how long to wait for acknowledgements', positiveInt('--timeout'), 2000)
      .action(
        action(async (out, opts: TargetOpts & { agent?: string; timeout: number }) => {
          if (opts.agent !== undefined) checkDid(opts.agent);
          const { target, key, nc } = await asOperator(opts, out);
          const operators = [...new Set([key.did, ...(target.config ? [target.config.operator.did] : [])])];
          // Services (broker, audit) are present but enforce no kill switch: they are not expected to acknowledge.
          const services = new Set([target.config?.broker.did, target.config?.audit.did, key.did]);
          const knownAgents = async () =>
            (await readPresence(nc, target.mesh))
              .filter((a) => a.status !== 'leave' && Date.now() - a.iat < 60_000 && !services.has(a.did))
              .map((a) => a.agentId);
          const operator = await createOperator({
            key,
            mesh: target.mesh,
            connection: nc,
            operators,
            timeoutMs: opts.timeout,
            knownAgents,
          });
          try {
            out.progress(`${op}: signing and publishing; waiting up to ${opts.timeout} ms for acknowledgements`);
            const started = performance.now();
            const result: OperationResult = await (op === 'kill' ? operator.kill : operator.revive).call(operator, {
              ...(opts.agent !== undefined && { agent: opts.agent }),
              timeoutMs: opts.timeout,
            });
            const totalMs = performance.now() - started;
            out.result({ ...result, totalMs: Number(totalMs.toFixed(1)) });
            out.line(
              `${op} ${result.target ? shortDid(result.target) : 'the whole mesh'}: seq ${result.seq}, ${result.acknowledged}/${result.expected} acknowledged ` +
                `(halted ${result.states.halted}, running ${result.states.running}); ack latency p50 ${result.latencyMs.p50.toFixed(1)} ms, ` +
                `p99 ${result.latencyMs.p99.toFixed(1)} ms, max ${result.latencyMs.max.toFixed(1)} ms; total ${totalMs.toFixed(0)} ms`,
            );
            if (result.missing.length > 0) out.line(`missing acknowledgements: ${result.missing.join(', ')}`);
            if (result.missing.length > 0) process.exitCode = EXIT.failure;
          } finally {
            await operator.close();
            await nc.close();
          }
        }),
      );
  }

  for (const op of ['admit', 'revoke'] as const) {
    const cmd = program
      .command(op)
      .description(
        op === 'admit'
          ? 'secure mode: admit a DID to the mesh (prints the user JWT the agent connects with)'
          : 'secure mode: revoke a DID; the server closes its connections and refuses it from now on',
      )
      .argument('<did>', "the agent's did:key");
    if (op === 'admit') {
      cmd.option('--name <name>', 'name carried in the JWT', 'agent').option('--role <role>', `one of ${ROLES.join(', ')}`, 'agent');
    }
    cmd.action(
      action(async (out, opts: { dir: string; name?: string; role?: string }, did: string) => {
        checkDid(did);
        const target = await resolveTarget({ dir: opts.dir });
        if (target.mode !== 'secure' || target.authority === undefined) {
          throw new CliError(EXIT.usage, `the mesh in ${opts.dir} runs in open mode: there is nothing to ${op} (anyone can connect)`);
        }
        if (op === 'admit') {
          if (!ROLES.includes(opts.role as Role)) throw usageError(`--role must be one of ${ROLES.join(', ')}`);
          const admission = await target.authority.admit(did, { name: opts.name ?? 'agent', role: opts.role as Role });
          out.result(admission);
          out.line(admission.jwt);
          out.warn(
            `admitted ${did} as ${admission.role}; connect with secureConnectOptions(key, jwt, '${target.url}') (the JWT is not a secret; the key is)`,
          );
        } else {
          out.progress(`revoking ${did} and pushing the account update to ${target.url}`);
          let pushed: { message: string } | undefined;
          try {
            pushed = await target.authority.revoke(did, { server: target.url });
          } catch (err) {
            throw new CliError(
              EXIT.unreachable,
              `revocation saved in ${target.authority.dir}, but not pushed: ${(err as Error).message} (the next \`trustmesh up\` applies it)`,
              {
                cause: err,
              },
            );
          }
          out.result({ did, revokedAt: target.authority.revokedAt(did), server: pushed?.message });
          out.line(`revoked ${did}: ${pushed?.message ?? 'saved'}`);
        }
      }),
    );
  }
}
