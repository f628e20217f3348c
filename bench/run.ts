/**
 * Runs every benchmark of bench/ (each as a child process with its --json),
 * one after another so they do not disturb each other, and prints a table of
 * their ratios against the targets, or one JSON object with each benchmark's
 * own report and a flat `summary` (keys stable, for scripts).
 *
 *   pnpm bench                      # all, table
 *   pnpm -s bench -- --json         # all, one JSON object on stdout
 *   pnpm bench -- --only latency    # one (or a comma-separated list)
 *   npx tsx bench/run.ts --help
 */
import {
  loadAverage,
  machineInfo,
  machineLine,
  parseFlags,
  progress,
  resolveTsx,
  runChildJson,
  runMain,
  table,
  UsageError,
} from './lib/harness.ts';

/** The flat summary: these keys are kept stable (issue 12). null = missing or failed, with the reason in `benchmarks`. */
export interface Summary {
  signedToVerify: number | null;
  multicoreSpeedup: number | null;
  latencyOverheadMs: number | null;
  latencyCryptoFloorMs: number | null;
  killP99Ms100: number | null;
  killP99Ms1000: number | null;
  auditIngestToSigned: number | null;
  auditGaps: number | null;
  auditVerifySpeedup: number | null;
  joinSeconds10k: number | null;
  heapBytesPerAgent10k: number | null;
}

interface Spec {
  name: string;
  what: string;
  /** node flags before the script (tsx is always imported). */
  node?: string[];
  file: string;
  args: string[];
  quick: string[];
  timeoutS: number;
}

const BENCHMARKS: Spec[] = [
  {
    name: 'throughput',
    what: 'signed throughput vs single-core verify',
    file: 'bench/signed-throughput.ts',
    args: [],
    quick: ['--rounds', '3'],
    timeoutS: 1200,
  },
  {
    name: 'multicore',
    what: 'verification pool, 1 worker vs all cores',
    file: 'bench/multicore.ts',
    args: [],
    quick: ['--rounds', '2'],
    timeoutS: 1200,
  },
  {
    name: 'latency',
    what: 'request/reply p50/p99 vs raw NATS and the crypto floor',
    file: 'bench/latency.ts',
    args: [],
    quick: ['--rounds', '3', '--requests', '1000'],
    timeoutS: 900,
  },
  {
    name: 'kill',
    what: 'kill propagation, 100 and 1,000 agents',
    file: 'bench/kill-propagation.ts',
    args: ['--sizes', '100,1000'],
    quick: ['--rounds', '5'],
    timeoutS: 1200,
  },
  {
    name: 'audit-ingest',
    what: 'audit ingest rate and gaps',
    file: 'bench/audit-ingest.ts',
    args: [],
    quick: ['--messages', '20000'],
    timeoutS: 1200,
  },
  {
    name: 'audit-verify',
    what: 'audit verify of 1,000,000 records vs single-core verify',
    file: 'bench/audit-verify.ts',
    args: ['--records', '1000000'],
    quick: [],
    timeoutS: 1800,
  },
  {
    name: 'scale',
    what: '10,000 agents in one process',
    node: ['--expose-gc'],
    file: 'bench/scale.ts',
    args: ['--agents', '10000'],
    quick: [],
    timeoutS: 1800,
  },
];

const HELP = `Usage: pnpm bench [-- flags]        (or: npx tsx bench/run.ts [flags])

Runs the benchmarks one after another, each as a child process with --json:
${BENCHMARKS.map((b) => `  ${b.name.padEnd(13)} ${b.what}\n                ${['node', ...(b.node ?? []), '--import tsx', b.file, ...b.args, '--json'].join(' ')}`).join('\n')}

Flags:
  --only NAMES   run only these (comma-separated names from the list above)
  --quick        fewer rounds/messages (see the source): a smoke run, not the
                 reference figures
  --json         one JSON object on stdout: { machine, benchmarks: { name: { ok,
                 seconds, reason?, report } }, summary: { ${Object.keys(emptySummary()).join(', ')} } }
                 (null where a benchmark was not run or failed; the reason is in benchmarks)
  -h, --help

Exit code: 0 when every benchmark that ran succeeded (targets missed are
reported, not failures), 1 otherwise, 2 on bad flags.
`;

function emptySummary(): Summary {
  return {
    signedToVerify: null,
    multicoreSpeedup: null,
    latencyOverheadMs: null,
    latencyCryptoFloorMs: null,
    killP99Ms100: null,
    killP99Ms1000: null,
    auditIngestToSigned: null,
    auditGaps: null,
    auditVerifySpeedup: null,
    joinSeconds10k: null,
    heapBytesPerAgent10k: null,
  };
}

interface Outcome {
  ok: boolean;
  seconds: number;
  reason?: string;
  report?: unknown;
}

// Readers of the children's reports: each returns undefined when the field is absent.
type Json = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Json)[k as string] : undefined), o);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const round = (v: number | null, digits: number): number | null => (v === null ? null : Number(v.toFixed(digits)));

function summarizeAll(outcomes: Map<string, Outcome>): { summary: Summary; missing: Record<string, string> } {
  const s = emptySummary();
  const missing: Record<string, string> = {};
  const report = (name: string) => {
    const o = outcomes.get(name);
    return o?.ok ? o.report : undefined;
  };
  const why = (name: string) => {
    const o = outcomes.get(name);
    return o === undefined ? `${name} not run` : o.ok ? `${name}: field missing in its report` : `${name} failed: ${o.reason ?? 'unknown'}`;
  };
  const set = <K extends keyof Summary>(key: K, value: number | null, source: string) => {
    s[key] = value;
    if (value === null) missing[key] = why(source);
  };
  const throughput = report('throughput');
  set('signedToVerify', round(num(at(throughput, 'ratios', 'signedToVerify', 'value')), 3), 'throughput');
  set('multicoreSpeedup', round(num(at(report('multicore'), 'ratios', 'speedup', 'value')), 3), 'multicore');
  const latency = report('latency');
  set('latencyOverheadMs', round(num(at(latency, 'overheadP50Ms', 'median')), 4), 'latency');
  set('latencyCryptoFloorMs', round(num(at(latency, 'results', 'cryptoFloorMs', 'median')), 4), 'latency');
  const killResults = at(report('kill'), 'results');
  const killP99 = (agents: number) =>
    Array.isArray(killResults)
      ? num(
          at(
            killResults.find((r) => at(r, 'agents') === agents),
            'kill',
            'lastAck',
            'p99',
          ),
        )
      : null;
  set('killP99Ms100', killP99(100), 'kill');
  set('killP99Ms1000', killP99(1000), 'kill');
  const ingest = report('audit-ingest');
  const ingestRate = num(at(ingest, 'live', 'recordsPerSec'));
  const signedRate = num(at(throughput, 'results', 'signedMsgsPerSec', 'median'));
  s.auditIngestToSigned = ingestRate !== null && signedRate !== null ? round(ingestRate / signedRate, 3) : null;
  if (s.auditIngestToSigned === null)
    missing.auditIngestToSigned = ingestRate === null ? why('audit-ingest') : `${why('throughput')} (the signed rate it is compared with)`;
  set('auditGaps', num(at(ingest, 'gaps')), 'audit-ingest');
  const runs = at(report('audit-verify'), 'runs');
  set('auditVerifySpeedup', Array.isArray(runs) ? num(at(runs[0], 'ratioToSingleCoreVerify')) : null, 'audit-verify');
  const scale = report('scale');
  set('joinSeconds10k', num(at(scale, 'agents')) === 10_000 ? round(num(at(scale, 'joinSeconds')), 2) : null, 'scale');
  set('heapBytesPerAgent10k', num(at(scale, 'agents')) === 10_000 ? num(at(scale, 'heapBytesPerAgent')) : null, 'scale');
  return { summary: s, missing };
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    only: { type: 'string' },
    quick: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const names = flags.only === undefined ? BENCHMARKS.map((b) => b.name) : flags.only.split(',').map((n) => n.trim());
  for (const n of names) {
    if (!BENCHMARKS.some((b) => b.name === n))
      throw new UsageError(`unknown benchmark '${n}' (one of: ${BENCHMARKS.map((b) => b.name).join(', ')})`);
  }
  const machine = await machineInfo();
  const tsx = resolveTsx();
  const outcomes = new Map<string, Outcome>();
  for (const b of BENCHMARKS.filter((x) => names.includes(x.name))) {
    const args = [...(b.node ?? []), '--import', tsx, b.file, ...b.args, ...(flags.quick ? b.quick : []), '--json'];
    progress(`${b.name}: node ${args.join(' ')}`);
    const r = await runChildJson(process.execPath, args, b.timeoutS * 1000, b.name);
    // A report that says it failed (ok: false) is a failure too, with its own reasons.
    const failures = at(r.json, 'failures');
    const reportOk = at(r.json, 'ok') !== false;
    const outcome: Outcome = { ok: r.ok && reportOk, seconds: Number(r.seconds.toFixed(1)), report: r.json };
    if (!outcome.ok) outcome.reason = r.reason ?? `report not ok: ${JSON.stringify(failures ?? [])}`;
    outcomes.set(b.name, outcome);
    progress(`${b.name}: ${outcome.ok ? 'ok' : `FAILED (${outcome.reason})`} in ${outcome.seconds} s`);
  }
  const { summary, missing } = summarizeAll(outcomes);
  const ok = [...outcomes.values()].every((o) => o.ok);
  if (flags.json) {
    const benchmarks = Object.fromEntries(outcomes);
    const out = {
      benchmark: 'trustmesh/bench',
      ok,
      machine: { ...machine, loadAverageAtEnd: loadAverage() },
      benchmarks,
      summary,
      missing,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    const f = (v: number | null, unit = '') => (v === null ? '-' : `${v}${unit}`);
    const met = (v: number | null, ok: (x: number) => boolean) => (v === null ? 'n/a' : ok(v) ? 'met' : 'NOT MET');
    const s = summary;
    const rows = [
      ['figure', 'value', 'target', ''],
      ['signed / single-core verify', f(s.signedToVerify), '>= 0.90', met(s.signedToVerify, (x) => x >= 0.9)],
      ['pool speedup, all cores / 1 worker', f(s.multicoreSpeedup), '>= 1.7 (2 cores)', met(s.multicoreSpeedup, (x) => x >= 1.7)],
      ['latency p50 overhead (signed - raw)', f(s.latencyOverheadMs, ' ms'), '<= 1.25 x floor', ''],
      ['  crypto floor (2 signs + 2 verifies)', f(s.latencyCryptoFloorMs, ' ms'), '', ''],
      [
        '  overhead / floor',
        s.latencyOverheadMs === null || s.latencyCryptoFloorMs === null ? '-' : (s.latencyOverheadMs / s.latencyCryptoFloorMs).toFixed(2),
        '<= 1.25',
        s.latencyOverheadMs === null || s.latencyCryptoFloorMs === null
          ? 'n/a'
          : met(s.latencyOverheadMs / s.latencyCryptoFloorMs, (x) => x <= 1.25),
      ],
      ['kill p99, 100 agents', f(s.killP99Ms100, ' ms'), '<= 50 ms', met(s.killP99Ms100, (x) => x <= 50)],
      ['kill p99, 1,000 agents', f(s.killP99Ms1000, ' ms'), '', ''],
      ['audit ingest / signed rate', f(s.auditIngestToSigned), '>= 2', met(s.auditIngestToSigned, (x) => x >= 2)],
      ['audit gaps', f(s.auditGaps), '0', met(s.auditGaps, (x) => x === 0)],
      ['audit verify / single-core verify', f(s.auditVerifySpeedup), '>= 1.7 (2 cores)', met(s.auditVerifySpeedup, (x) => x >= 1.7)],
      ['join 10,000 agents', f(s.joinSeconds10k, ' s'), 'linear', ''],
      ['heap per agent (10,000)', f(s.heapBytesPerAgent10k, ' B'), '<= 16,384 B', met(s.heapBytesPerAgent10k, (x) => x <= 16_384)],
    ];
    process.stdout.write(`TrustMesh benchmarks (bench/run.ts)\n${machineLine(machine)}\n\n${table(rows)}\n`);
    for (const [name, o] of outcomes) process.stdout.write(`${name.padEnd(13)} ${o.ok ? 'ok' : `FAILED: ${o.reason}`} (${o.seconds} s)\n`);
    for (const [key, reason] of Object.entries(missing)) process.stdout.write(`${key}: null (${reason})\n`);
  }
  return ok ? 0 : 1;
}

await runMain(main);
