import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { type AuditQuery, openLogFile, type QueryResult, queryLog, toJsonLine, verifyLog } from '@trustmesh/audit';
import type { LogSource } from '@trustmesh/audit';
import { paths, readConfig } from '../config.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { type Output, shortDid } from '../output.ts';
import { positiveInt } from '../program.ts';
import { action } from './common.ts';

interface LogOpts {
  dir: string;
  log?: string;
  trusted?: string;
}

async function logOf(opts: LogOpts): Promise<{ path: string; trusted: string | undefined; source: LogSource }> {
  let path = opts.log;
  let trusted = opts.trusted;
  if (path === undefined) {
    const config = await readConfig(opts.dir);
    if (config === undefined)
      throw new CliError(
        EXIT.usage,
        `no mesh in ${paths(opts.dir).root}: pass --log FILE, or --dir of a mesh started with \`trustmesh up\``,
      );
    path = join(paths(opts.dir).root, config.audit.log);
    trusted ??= config.audit.did;
  }
  try {
    return { path, trusted, source: await openLogFile(path) };
  } catch (cause) {
    throw new CliError(EXIT.failure, `cannot open the audit log ${path}: ${(cause as Error).message}`, { cause });
  }
}

const time = (name: string) => (v: string) => {
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new InvalidArgumentError(`${name} must be ms since epoch or an ISO date (got ${JSON.stringify(v)})`);
  return t;
};

function printRecord(out: Output, r: QueryResult, withFrame: boolean): void {
  if (out.json) process.stdout.write(`${toJsonLine(r, { frame: withFrame })}\n`);
  else {
    const what =
      r.kind === 'frame'
        ? `${r.typ ?? '?'} ${r.signer ? `by ${shortDid(r.signer)}` : `(claims ${r.iss ? shortDid(r.iss) : '?'})`}`
        : r.kind;
    out.line(`${String(r.position).padStart(6)}  ${new Date(r.time).toISOString()}  ${r.verdict.padEnd(16)}  ${r.subject}  ${what}`);
  }
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit log: verify, query, tail');
  const logOptions = (cmd: Command, trusted = true) => {
    cmd.option('--log <file>', 'audit log file (default: the one in --dir)');
    if (trusted) cmd.option('--trusted <did>', 'DID of the audit service whose checkpoints count (default: the one in --dir)');
    return cmd;
  };

  logOptions(audit.command('verify'))
    .description('recompute the chain, check signed checkpoints and re-verify every frame; names the first bad position')
    .option('--workers <n>', 'signature worker threads (default: one per core)', positiveInt('--workers'))
    .action(
      action(async (out, opts: LogOpts & { workers?: number }) => {
        const { path, trusted, source } = await logOf(opts);
        out.progress(`verifying ${path}${trusted ? ` (checkpoints pinned to ${shortDid(trusted)})` : ''}`);
        const report = await verifyLog(source, {
          ...(trusted !== undefined && { trusted }),
          ...(opts.workers !== undefined && { workers: opts.workers }),
        });
        out.result({ log: path, ...report });
        out.line(
          `${report.ok ? 'OK' : 'FAILED'}: ${report.records} records (${report.frames} frames, ${report.gapRecords} gaps, ${report.outages} outages), head ${report.head.hash}`,
        );
        out.line(
          `checkpoints: ${report.checkpoints.valid} valid, latest at position ${report.checkpoints.latest}, signer ${report.checkpoints.signer ?? 'none'}${report.checkpoints.pinned ? '' : ' (NOT pinned: pass --trusted <audit did>)'}`,
        );
        out.line(`verdicts: ${JSON.stringify(report.verdicts)}`);
        if (report.firstBad) out.line(`first bad position: ${report.firstBad.position} (${report.firstBad.problem})`);
        for (const p of report.problems.slice(0, 20)) out.line(`  position ${p.position}: ${p.problem}: ${p.detail}`);
        if (!report.ok) process.exitCode = EXIT.failure;
      }),
    );

  const queryOptions = (cmd: Command) =>
    cmd
      .option('--agent <did>', 'frames an agent signed, published or received')
      .option('--signer <did>', 'frames whose verified signer is this DID')
      .option('--type <typ>', 'message type, exact')
      .option('--subject <pattern>', 'NATS subject pattern (* one token, > the rest)')
      .option('--since <time>', 'ms since epoch or ISO date', time('--since'))
      .option('--until <time>', 'ms since epoch or ISO date', time('--until'))
      .option('--verdict <v>', 'ok, or a reason code such as bad_signature')
      .option('--kind <kind>', 'frame, gap or outage')
      .option('--frame', 'include the raw frame (base64) in --json output', false);
  const queryOf = (opts: Record<string, unknown>): AuditQuery => {
    const q: AuditQuery = {};
    for (const k of ['agent', 'signer', 'type', 'subject', 'verdict', 'since', 'until'] as const)
      if (opts[k] !== undefined) (q as Record<string, unknown>)[k] = opts[k];
    if (opts.kind !== undefined) {
      if (!['frame', 'gap', 'outage'].includes(String(opts.kind))) throw usageError('--kind must be frame, gap or outage');
      q.kind = opts.kind as AuditQuery['kind'];
    }
    return q;
  };

  queryOptions(logOptions(audit.command('query'), false))
    .description('records matching filters (one JSON object per line with --json)')
    .option('--limit <n>', 'at most this many records', positiveInt('--limit'))
    .action(
      action(async (out, opts: LogOpts & Record<string, unknown>) => {
        const { source } = await logOf(opts);
        const q = queryOf(opts);
        if (opts.limit !== undefined) q.limit = opts.limit as number;
        let n = 0;
        for await (const r of queryLog(source, q)) {
          n++;
          printRecord(out, r, opts.frame === true);
        }
        if (!out.json) out.progress(`${n} record(s)`);
      }),
    );

  queryOptions(logOptions(audit.command('tail'), false))
    .description('the last records of the log; with --follow, new ones as they are written')
    .option('-n, --lines <n>', 'how many of the last records', positiveInt('--lines'), 10)
    .option('-f, --follow', 'keep printing new records until Ctrl-C', false)
    .action(
      action(async (out, opts: LogOpts & Record<string, unknown> & { lines: number; follow: boolean }) => {
        const { path } = await logOf(opts);
        const q = queryOf(opts);
        const last: QueryResult[] = [];
        let position = 0;
        for await (const r of queryLog(await openLogFile(path), q)) {
          last.push(r);
          if (last.length > opts.lines) last.shift();
          position = r.position;
        }
        for (const r of last) printRecord(out, r, opts.frame === true);
        if (!opts.follow) return;
        let stopped = false;
        process.once('SIGINT', () => (stopped = true));
        process.once('SIGTERM', () => (stopped = true));
        while (!stopped) {
          await new Promise((r) => setTimeout(r, 500));
          for await (const r of queryLog(await openLogFile(path), { ...q, from: position + 1 })) {
            printRecord(out, r, opts.frame === true);
            position = r.position;
          }
        }
      }),
    );
}
