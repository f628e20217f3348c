import { join } from 'node:path';
import type { Command } from 'commander';
import { writeFile, rm, readFile } from 'node:fs/promises';
import { paths } from '../config.ts';
import { CliError, EXIT } from '../errors.ts';
import { startMesh } from '../mesh.ts';
import { port, positiveInt } from '../program.ts';
import { action } from './common.ts';

export function registerUp(program: Command): void {
  program
    .command('up')
    .description(
      'start (or resume) the mesh of --dir: nats-server with JetStream (or, with --nodes N, a local N-node cluster with R3 state), the trust broker and the audit service; Ctrl-C stops everything',
    )
    .option('--port <port>', 'NATS client port (default: a free port chosen once and kept in the mesh directory)', port)
    .option(
      '--nodes <n>',
      'run a local nats-server cluster of N nodes (3 or more; stores and ports kept in the mesh directory, state replicated R3); default 1',
      positiveInt('--nodes'),
    )
    .option('--open', 'open mode: no authentication (development only; printed loudly)', false)
    .option('--nats <url>', 'use this NATS instead of starting one (open mode)')
    .option('--mesh <name>', 'mesh name, for a new mesh directory (default: "local"; a resumed mesh keeps its name)')
    .action(
      action(async (out, opts: { port?: number; nodes?: number; open: boolean; nats?: string; mesh?: string; dir: string }) => {
        const p = paths(opts.dir);
        const pid = await readFile(p.pidFile, 'utf8').catch(() => undefined);
        if (pid !== undefined && alive(Number(pid))) {
          throw new CliError(EXIT.failure, `the mesh in ${p.root} is already up (pid ${pid}); stop it first (Ctrl-C, or kill ${pid})`);
        }
        // A signal during start-up is kept and honoured once everything started is there to stop
        // (a Node process killed by an unhandled signal would leave nats-server running).
        let early: string | undefined;
        const onEarly = (signal: string) => {
          early ??= signal;
        };
        process.on('SIGINT', onEarly);
        process.on('SIGTERM', onEarly);
        let running: Awaited<ReturnType<typeof startMesh>>;
        try {
          running = await startMesh({
            dir: opts.dir,
            mesh: opts.mesh,
            port: opts.port,
            nodes: opts.nodes,
            open: opts.open,
            nats: opts.nats,
            out,
          });
        } finally {
          process.off('SIGINT', onEarly);
          process.off('SIGTERM', onEarly);
        }
        if (early !== undefined) {
          out.progress(`${early} during start-up: stopping`);
          await running.stop();
          process.exitCode = EXIT.failure;
          return;
        }
        await writeFile(p.pidFile, String(process.pid));
        const { config } = running;
        const info = {
          ready: true,
          pid: process.pid,
          mesh: config.mesh,
          mode: config.mode,
          dir: p.root,
          nats: config.nats.url,
          natsUrls: running.urls,
          natsStore: running.server?.storeDir,
          natsNodes: running.cluster?.nodes.map((n) => ({ name: n.name, url: n.url, pid: n.pid, store: n.storeDir })),
          operator: { did: config.operator.did, keyFile: join(p.root, config.operator.keyFile) },
          broker: config.broker.did,
          audit: { did: config.audit.did, log: join(p.root, config.audit.log) },
          config: p.config,
          authority: config.mode === 'secure' ? p.authority : undefined,
        };
        out.result(info);
        out.line(`mesh ${config.mesh} is up (${config.mode} mode)`);
        if (running.cluster !== undefined) {
          out.line(`  nats:      ${running.cluster.nodes.length}-node cluster (clients get every URL: ${running.urls.join(',')})`);
          for (const n of running.cluster.nodes) out.line(`    ${n.name}  ${n.url}  pid ${n.pid}  store ${n.storeDir}`);
        } else {
          out.line(
            `  nats:      ${config.nats.url}${running.server ? ` (nats-server pid ${running.server.pid}, store ${running.server.storeDir})` : ' (external)'}`,
          );
        }
        out.line(`  config:    ${p.config}`);
        out.line(`  operator:  ${config.operator.did}  key ${info.operator.keyFile} (0600)`);
        out.line(`  broker:    ${config.broker.did}`);
        out.line(`  audit:     ${config.audit.did}  log ${info.audit.log}`);
        if (config.mode === 'secure') out.line(`  authority: ${p.authority} (admit agents with \`trustmesh admit DID\`)`);
        out.line(`from another shell: trustmesh status --dir ${opts.dir}   (Ctrl-C here stops the mesh)`);
        await new Promise<void>((resolveStop) => {
          const stop = (signal: string) => {
            out.progress(
              `${signal}: stopping the audit service (last checkpoint), the broker and nats-server${running.cluster ? ` (${running.cluster.nodes.length} nodes)` : ''}`,
            );
            process.off('SIGINT', onInt);
            process.off('SIGTERM', onTerm);
            running
              .stop()
              .catch((err: Error) => out.warn(`stop: ${err.message}`))
              .finally(() => rm(p.pidFile, { force: true }).finally(resolveStop));
          };
          const onInt = () => stop('SIGINT');
          const onTerm = () => stop('SIGTERM');
          process.on('SIGINT', onInt);
          process.on('SIGTERM', onTerm);
        });
        out.progress('stopped');
      }),
    );
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
