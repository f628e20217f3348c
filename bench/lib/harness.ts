/**
 * The shared harness of the benchmarks in bench/: flags, rounds and medians,
 * machine facts, child processes (IPC peers, and whole benchmarks run for
 * their --json), CPU accounting from /proc, and table output.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { natsServerVersion } from '@trustmesh/embedded-nats';
import type { Command, PeerEvent, Role } from './peer.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository root (benchmarks run from there). */
export const ROOT = resolve(HERE, '..', '..');
const PEER_FILE = join(HERE, 'peer.ts');

// ---------------------------------------------------------------- flags

/** Bad flags: the benchmark prints the message and exits 2. */
export class UsageError extends Error {}

/**
 * parseArgs, strict, no positionals, with a literal leading `--` dropped
 * (`pnpm bench -- --json` passes one on).
 */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  const args = argv.filter((a, i) => !(a === '--' && i === 0));
  try {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options });
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
    return values;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

/** An integer flag in [min, max], or `fallback` when absent. */
export function intFlag(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d+$/.test(value))
    throw new UsageError(`--${name} must be an integer (got ${JSON.stringify(value)})`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${n})`);
  return n;
}

// ---------------------------------------------------------------- rounds

/** The p-quantile (0..1) of `values` by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

// ---------------------------------------------------------------- machine

export interface Machine {
  cpuModel: string;
  cores: number;
  node: string;
  natsServer: string;
  os: string;
  loadAverageAtStart: number[];
}

export async function machineInfo(): Promise<Machine> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    node: process.version,
    natsServer: (await natsServerVersion().catch(() => undefined)) ?? 'unknown',
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: loadAverage(),
  };
}

export const loadAverage = (): number[] => os.loadavg().map((n) => Number(n.toFixed(2)));

export const machineLine = (m: Machine): string =>
  `machine   ${m.cpuModel}, ${m.cores} cores, node ${m.node}, nats-server ${m.natsServer}, ${m.os}; load average ${m.loadAverageAtStart.join(' ')}`;

// ---------------------------------------------------------------- tables

/** A plain text table: the first row is the header; columns after the first are right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const out = [line(rows[0]!), '-'.repeat(widths.reduce((a, b) => a + b + 2, -2))];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- running a benchmark

/**
 * Runs a benchmark's main: exit code 2 on a UsageError, 1 on any other
 * failure, and `cleanup` (servers, children) in every case, SIGINT/SIGTERM included.
 */
export async function runMain(main: () => Promise<number>, cleanup: () => Promise<void> = async () => {}): Promise<never> {
  let interrupted: number | undefined;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      if (interrupted !== undefined) return;
      interrupted = code;
      progress(`${signal}: stopping`);
      void cleanup().finally(() => process.exit(code));
    });
  }
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\nRun with --help for the flags.\n`);
      code = 2;
    } else if (interrupted === undefined) progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await cleanup().catch(() => undefined);
  }
  process.exit(interrupted ?? code);
}

export interface ChildJson {
  ok: boolean;
  /** The last JSON value printed on stdout. */
  json: unknown;
  /** Why not ok: exit code or signal, a timeout, or no JSON on stdout; with the end of stderr. */
  reason?: string;
  seconds: number;
}

/**
 * Runs a command (another benchmark with its --json) from the repository root
 * and parses its stdout as JSON (the whole of it, or else its last line that
 * parses). Its stderr (progress) is passed through to ours with a prefix.
 */
export function runChildJson(command: string, args: string[], timeoutMs: number, tag: string): Promise<ChildJson> {
  return new Promise((resolvePromise) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      errTail = (errTail + s).slice(-2000);
      for (const line of s.split('\n')) if (line.trim() !== '') process.stderr.write(`[${tag}] ${line}\n`);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutMs);
    const finish = (why: string | undefined) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      const json = parseLastJson(out);
      const reason = timedOut ? `timed out after ${timeoutMs / 1000} s` : (why ?? (json === undefined ? 'no JSON on stdout' : undefined));
      resolvePromise(
        reason === undefined
          ? { ok: true, json, seconds }
          : { ok: false, json, reason: `${reason}; stderr: ${errTail.trim().slice(-500)}`, seconds },
      );
    };
    child.on('error', (err) => finish(`could not start: ${err.message}`));
    child.on('exit', (code, signal) => finish(signal ? `killed by ${signal}` : code === 0 ? undefined : `exited with code ${code}`));
  });
}

function parseLastJson(out: string): unknown {
  const text = out.trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // progress lines before the object: take the last line that parses
  }
  for (const line of text.split('\n').reverse()) {
    try {
      return JSON.parse(line);
    } catch {
      // not this one
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- rounds and child processes (IPC peers)

/** Progress on stderr (stdout is kept for the report). */
export const progress = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`);
};

export interface Summary {
  median: number;
  min: number;
  max: number;
  rounds: number[];
}

/** Median, min and max of the rounds (and the rounds themselves). */
export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, rounds: values };
}

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fmtRatio = (n: number): string => n.toFixed(3);

// ---------------------------------------------------------------- child processes

/**
 * A child process of a benchmark (bench/lib/peer.ts by default), driven over
 * its IPC channel: commands out, events back.
 */
export class Peer {
  readonly child: ChildProcess;
  private readonly listeners = new Set<(e: PeerEvent) => void>();
  private exitListeners = new Set<(why: string) => void>();
  exited: string | undefined;
  expectExit = false;

  constructor(
    readonly role: Role,
    tsx: string,
    profileDir: string | undefined,
    file: string = PEER_FILE,
  ) {
    const nodeArgs = ['--import', tsx];
    if (profileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, role)}`);
    // stdout of the children goes to our stderr: stdout is kept for the report (--json).
    this.child = spawn(process.execPath, [...nodeArgs, file, role], { stdio: ['ignore', 2, 2, 'ipc'], cwd: resolve(HERE, '..') });
    this.child.on('message', (e: PeerEvent) => {
      for (const l of [...this.listeners]) l(e);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = signal ? `killed by ${signal}` : `exited with code ${code}`;
      for (const l of [...this.exitListeners]) l(this.exited);
    });
    this.child.on('error', (err) => {
      this.exited ??= `could not be started: ${err.message}`;
      for (const l of [...this.exitListeners]) l(this.exited);
    });
  }

  on(listener: (e: PeerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(cmd: Command): void {
    if (this.exited === undefined && this.child.connected) this.child.send(cmd);
  }

  /** Resolves with the first event `match` accepts; rejects on a peer error, the peer's exit, or the timeout. */
  next<E extends PeerEvent>(match: (e: PeerEvent) => e is E, timeoutMs: number | undefined, what: string, roundId?: number): Promise<E> {
    return new Promise<E>((resolvePromise, reject) => {
      const done = () => {
        off();
        this.exitListeners.delete(onExit);
        if (timer) clearTimeout(timer);
      };
      const off = this.on((e) => {
        if (match(e)) {
          done();
          resolvePromise(e);
        } else if (e.ev === 'error' && (e.id === undefined || e.id === roundId)) {
          done();
          reject(new Error(`${this.role} failed while waiting for ${what}: ${e.message}`));
        }
      });
      const onExit = (why: string) => {
        done();
        reject(new Error(`${this.role} process ${why} while waiting for ${what}`));
      };
      if (this.exited !== undefined) return onExit(this.exited);
      this.exitListeners.add(onExit);
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              done();
              reject(new Error(`${this.role} did not report ${what} within ${timeoutMs} ms`));
            }, timeoutMs);
    });
  }

  /** Asks for a normal exit (so profiles get written); SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.expectExit = true;
    if (this.exited !== undefined || this.child.pid === undefined) return;
    const gone = new Promise<void>((r) => this.exitListeners.add(() => r()));
    try {
      this.send({ op: 'exit' });
    } catch {
      // channel already closed
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- CPU accounting (Linux /proc)

/** utime + stime of a process in ms, from /proc (Linux); undefined where that is not available. */
export function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100; // USER_HZ: 100 on every mainstream Linux build

/** Busy CPU time of the whole machine in ms (all cores; /proc/stat), or undefined off Linux. */
export function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

/** CPU ms used so far by this benchmark: this process, its children and the nats-server. */
export function ownCpuMs(pids: (number | undefined)[]): number | undefined {
  const self = process.cpuUsage();
  let total = (self.user + self.system) / 1000;
  for (const pid of pids) {
    const ms = procCpuMs(pid);
    if (ms === undefined) return undefined;
    total += ms;
  }
  return total;
}

/** The tsx loader for child processes' `--import`. */
export function resolveTsx(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}
