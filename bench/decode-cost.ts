/**
 * Decode cost benchmark (issue 6, docs/protocol.md §4 rule 11): what does the
 * strict body decoder spend on a 1 MiB body of the cheapest MessagePack values,
 * compared with a 1 MiB body holding one string?
 *
 *   npx tsx bench/decode-cost.ts            # table
 *   npx tsx bench/decode-cost.ts --json     # one JSON object on stdout
 *   npx tsx bench/decode-cost.ts --runs 9   # runs per case (median reported)
 *
 * Every run is a fresh child process (node --expose-gc --single-threaded-gc,
 * so collection work lands on the decoding thread and is counted), so heap and
 * RSS start from the same place: it builds the body, collects garbage, decodes
 * it and reports CPU time (user + system) and how much heap (+ external) and
 * RSS grew: for the first decode (cold code), and the median CPU of seven more
 * after three warm-ups (optimised code, as under a flood of such bodies). Memory is read before any
 * collection, so it counts garbage made on the way as well as the result. A benchmark, not a test: it prints
 * numbers and exits 1 only if a case decodes differently than expected.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeBody } from '@trustmesh/protocol/internal';

const BODY_BYTES = 1024 * 1024 - 97; // a frame at the default 1 MiB limit, minus the header

interface Case {
  name: string;
  note: string;
  /** One encoded element, repeated in an array32; absent for the string baseline. */
  element?: number[];
}

const CASES: Case[] = [
  { name: 'string', note: 'one ASCII str32 (the baseline)' },
  { name: 'bin-empty', note: 'empty bin8 (c4 00)', element: [0xc4, 0x00] },
  { name: 'fixint', note: 'positive fixint 0', element: [0x00] },
  { name: 'nil', note: 'nil (c0)', element: [0xc0] },
  { name: 'str-empty', note: 'empty fixstr (a0)', element: [0xa0] },
  { name: 'str-utf8', note: 'fixstr "é" (a2 c3 a9), the non-ASCII path', element: [0xa2, 0xc3, 0xa9] },
  { name: 'float32', note: 'float32 1.5 (ca 3f c0 00 00)', element: [0xca, 0x3f, 0xc0, 0x00, 0x00] },
  { name: 'array-empty', note: 'empty fixarray (90)', element: [0x90] },
  { name: 'map-empty', note: 'empty fixmap (80)', element: [0x80] },
  { name: 'map-1', note: 'fixmap {"": nil} (81 a0 c0)', element: [0x81, 0xa0, 0xc0] },
];

const HEAD = [0x82, 0xa1, 0x76, 0x01, 0xa4, 0x64, 0x61, 0x74, 0x61]; // {"v": 1, "data": ...

/**
 * {v: 1, data: ...} of exactly BODY_BYTES. The baseline's data is one string.
 * The others' data is an array32 of `count` elements followed by one str32
 * that pads the body to size: as many cheap values as the budget lets through,
 * and the rest of the megabyte spent as cheaply as the baseline.
 */
function body(c: Case, count: number): Buffer {
  const out = Buffer.alloc(BODY_BYTES, 0x61);
  out.set(HEAD, 0);
  let at = HEAD.length;
  if (c.element) {
    const fits = Math.floor((BODY_BYTES - at - 5 - 5) / c.element.length);
    if (count > fits) count = fits;
    out[at] = 0xdd;
    out.writeUInt32BE(count + 1, at + 1);
    at += 5;
    for (let i = 0; i < count; i++, at += c.element.length) out.set(c.element, at);
  }
  out[at] = 0xdb;
  out.writeUInt32BE(BODY_BYTES - at - 5, at + 1);
  return out;
}

const accepts = (bytes: Buffer) => {
  try {
    decodeBody(bytes);
    return true;
  } catch {
    return false;
  }
};

/** The largest element count the decoder accepts in a 1 MiB body (binary search; 0 for the baseline). */
function maxCount(c: Case): number {
  if (!c.element) return 0;
  let lo = 0;
  let hi = Math.floor(BODY_BYTES / c.element.length);
  if (accepts(body(c, hi))) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (accepts(body(c, mid))) lo = mid;
    else hi = mid;
  }
  return lo;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Sample {
  /** CPU of the first decode in the process (cold code). */
  coldMs: number;
  /** Median CPU of WARM_RUNS decodes after WARM_UP more of the same body (optimised code, as under a flood). */
  warmMs: number;
  heapMiB: number;
  rssMiB: number;
  outcome: string;
}

const WARM_UP = 3;
const WARM_RUNS = 7;

function child(name: string, count: number): void {
  const c = CASES.find((k) => k.name === name)!;
  const bytes = body(c, count);
  const gc = (globalThis as { gc?: () => void }).gc!;
  let kept: unknown;
  let outcome = '';
  const once = () => {
    gc();
    gc();
    const before = process.memoryUsage();
    const cpu = process.cpuUsage();
    try {
      kept = decodeBody(bytes);
      outcome = 'decoded';
    } catch (err) {
      outcome = `refused: ${(err as Error).message}`;
    }
    const used = process.cpuUsage(cpu);
    const after = process.memoryUsage();
    // Memory is read before any collection: garbage made on the way counts too.
    const heapMiB = (after.heapUsed + after.external - before.heapUsed - before.external) / 2 ** 20;
    const rssMiB = (after.rss - before.rss) / 2 ** 20;
    kept = undefined;
    return { ms: (used.user + used.system) / 1000, heapMiB, rssMiB };
  };
  const cold = once();
  for (let i = 0; i < WARM_UP; i++) once();
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) warm.push(once().ms);
  const sample: Sample = { coldMs: cold.ms, warmMs: median(warm), heapMiB: cold.heapMiB, rssMiB: cold.rssMiB, outcome };
  if (kept !== undefined) console.error('unreachable');
  process.stdout.write(JSON.stringify(sample));
}

function main(): void {
  const { values } = parseArgs({
    options: { json: { type: 'boolean' }, runs: { type: 'string' }, child: { type: 'string' }, count: { type: 'string' } },
  });
  if (values.child) {
    child(values.child, Number(values.count));
    return;
  }
  const runs = Number(values.runs ?? 5);
  const self = fileURLToPath(import.meta.url);
  const rows = CASES.map((c) => {
    const count = maxCount(c);
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const args = [...process.execArgv, '--expose-gc', '--single-threaded-gc', self, '--child', c.name, '--count', String(count)];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child ${c.name} failed: ${r.stderr}`);
      samples.push(JSON.parse(r.stdout));
    }
    return {
      name: c.name,
      note: c.note,
      values: count,
      outcome: samples[0]!.outcome,
      coldMs: median(samples.map((s) => s.coldMs)),
      warmMs: median(samples.map((s) => s.warmMs)),
      heapMiB: median(samples.map((s) => s.heapMiB)),
      rssMiB: median(samples.map((s) => s.rssMiB)),
    };
  });
  const base = rows[0]!;
  const ratio = (r: (typeof rows)[number]) => ({
    cold: r.coldMs / base.coldMs,
    warm: r.warmMs / base.warmMs,
    heap: r.heapMiB / base.heapMiB,
    rss: r.rssMiB / base.rssMiB,
  });
  const worst = { cold: 0, warm: 0, heap: 0, rss: 0 };
  for (const r of rows.slice(1))
    for (const [k, v] of Object.entries(ratio(r))) worst[k as keyof typeof worst] = Math.max(worst[k as keyof typeof worst], v);
  if (values.json) {
    console.log(
      JSON.stringify({
        bodyBytes: BODY_BYTES,
        runs,
        node: process.version,
        rows: rows.map((r) => ({ ...r, ratio: ratio(r) })),
        worstRatio: worst,
      }),
    );
    return;
  }
  console.log(`decode cost of a ${BODY_BYTES}-byte body, median of ${runs} fresh processes (${process.version})`);
  console.log('case          values  cold ms  warm ms  heap MiB  RSS MiB   xcold  xwarm  xheap   outcome');
  for (const r of rows) {
    const x = ratio(r);
    const cols = [
      r.name.padEnd(11),
      String(r.values).padStart(8),
      r.coldMs.toFixed(2).padStart(8),
      r.warmMs.toFixed(2).padStart(8),
      r.heapMiB.toFixed(2).padStart(9),
      r.rssMiB.toFixed(2).padStart(8),
      x.cold.toFixed(2).padStart(7),
      x.warm.toFixed(2).padStart(6),
      x.heap.toFixed(2).padStart(6),
    ];
    console.log(`${cols.join(' ')}   ${r.outcome.slice(0, 50)}`);
  }
  console.log(
    `worst ratio to the string: CPU cold ${worst.cold.toFixed(2)}x, warm ${worst.warm.toFixed(2)}x; heap ${worst.heap.toFixed(2)}x; RSS ${worst.rss.toFixed(2)}x`,
  );
}

main();
