/**
 * `audit verify` and `audit query` as a command, until the `trustmesh` CLI wraps them:
 *
 *   npx tsx packages/audit/src/cli.ts verify <log> [--trusted <did>] [--checkpoints <file>] [--workers N] [--json]
 *   npx tsx packages/audit/src/cli.ts query <log> [--agent X] [--signer DID] [--type T] [--subject P]
 *                                        [--since ms|ISO] [--until ms|ISO] [--kind frame|gap|outage]
 *                                        [--verdict V] [--from N] [--to N] [--limit N] [--no-frame]
 *
 * verify exits 0 when the log verifies, 1 when it does not (the first bad
 * position and every problem are printed), 2 on usage errors. query prints one
 * JSON object per record. `--checkpoints` is a file of checkpoint frames the
 * auditor kept: JSON lines with a base64 `frame` (the format of `<log>.checkpoints`).
 */
import { readFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openLogFile } from './file-store.ts';
import { type AuditQuery, queryLog, writeJsonLines } from './query.ts';
import type { RecordKind } from './record.ts';
import { verifyLog } from './verify.ts';

export interface CliIo {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
}

const USAGE =
  'usage: audit verify <log> [--trusted <did>] [--checkpoints <file>] [--workers N] [--json]\n       audit query <log> [filters] [--no-frame]\n';

const time = (v: string | undefined): number | undefined => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : Date.parse(v));
const int = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number.parseInt(v, 10));

/** Runs one command; resolves with the exit code. */
export async function runAuditCli(argv: string[], io: CliIo = { out: process.stdout, err: process.stderr }): Promise<number> {
  const [command, path, ...rest] = argv;
  if ((command !== 'verify' && command !== 'query') || path === undefined) {
    io.err.write(USAGE);
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: {
        trusted: { type: 'string' },
        checkpoints: { type: 'string' },
        workers: { type: 'string' },
        json: { type: 'boolean' },
        agent: { type: 'string' },
        signer: { type: 'string' },
        type: { type: 'string' },
        subject: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        kind: { type: 'string' },
        verdict: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        limit: { type: 'string' },
        'no-frame': { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    io.err.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const log = await openLogFile(path);
  if (command === 'query') {
    const q: AuditQuery = {};
    const s = (k: string) => values[k] as string | undefined;
    if (s('agent') !== undefined) q.agent = s('agent');
    if (s('signer') !== undefined) q.signer = s('signer');
    if (s('type') !== undefined) q.type = s('type');
    if (s('subject') !== undefined) q.subject = s('subject');
    if (s('verdict') !== undefined) q.verdict = s('verdict');
    if (s('kind') !== undefined) q.kind = s('kind') as RecordKind;
    const since = time(s('since'));
    const until = time(s('until'));
    if (since !== undefined) q.since = since;
    if (until !== undefined) q.until = until;
    const from = int(s('from'));
    const to = int(s('to'));
    const limit = int(s('limit'));
    if (from !== undefined) q.from = from;
    if (to !== undefined) q.to = to;
    if (limit !== undefined) q.limit = limit;
    await writeJsonLines(queryLog(log, q), io.out, { frame: values['no-frame'] !== true });
    return 0;
  }
  const checkpoints: Uint8Array[] = [];
  if (typeof values.checkpoints === 'string') {
    for (const line of (await readFile(values.checkpoints, 'utf8')).split('\n')) {
      if (line.trim() === '') continue;
      const parsed = JSON.parse(line) as { frame?: unknown };
      if (typeof parsed.frame === 'string') checkpoints.push(new Uint8Array(Buffer.from(parsed.frame, 'base64')));
    }
  }
  const workers = int(values.workers as string | undefined);
  const report = await verifyLog(log, {
    checkpoints,
    ...(typeof values.trusted === 'string' ? { trusted: values.trusted } : {}),
    ...(workers !== undefined ? { workers } : {}),
  });
  if (values.json === true) io.out.write(`${JSON.stringify(report)}\n`);
  else {
    io.out.write(
      `${report.ok ? 'OK' : 'FAILED'}: ${report.records} records (${report.frames} frames, ${report.gapRecords} gaps covering ${report.missing} messages, ` +
        `${report.outages} outages), head ${report.head.hash}\n` +
        `checkpoints: ${report.checkpoints.valid} valid, latest at ${report.checkpoints.latest}, signer ${report.checkpoints.signer ?? 'none'}` +
        `${report.checkpoints.pinned ? '' : ' (NOT pinned: pass --trusted <audit did>)'}\n` +
        `verdicts: ${JSON.stringify(report.verdicts)}\n`,
    );
    for (const p of report.problems) io.out.write(`position ${p.position}: ${p.problem}: ${p.detail}\n`);
  }
  return report.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  process.exitCode = await runAuditCli(process.argv.slice(2));
}
