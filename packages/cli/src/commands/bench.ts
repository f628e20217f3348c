import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { failure, usageError } from '../errors.ts';
import { action } from './common.ts';

const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../bench');

export function benchNames(): string[] {
  try {
    return readdirSync(BENCH_DIR)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3))
      .sort();
  } catch {
    return [];
  }
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(`run a benchmark of bench/ (tsx bench/<name>.ts): ${benchNames().join(', ') || 'none found'}`)
    .argument('[name]', 'benchmark name', 'signed-throughput')
    .argument('[args...]', 'more arguments for the benchmark (after --)')
    .option('--only <name>', 'passed through: run only this part of the benchmark')
    .option('--list', 'list the benchmarks and exit', false)
    .action(
      action(async (out, opts: { only?: string; list: boolean; json: boolean }, name: string, args: string[]) => {
        const names = benchNames();
        if (opts.list) {
          out.result(names);
          for (const n of names) out.line(n);
          return;
        }
        if (!names.includes(name)) throw usageError(`no benchmark ${JSON.stringify(name)}; one of: ${names.join(', ')}`);
        const tsx = createRequire(import.meta.url).resolve('tsx/cli');
        const argv = [
          tsx,
          join(BENCH_DIR, `${name}.ts`),
          ...(opts.only ? ['--only', opts.only] : []),
          ...(opts.json ? ['--json'] : []),
          ...args,
        ];
        out.progress(`running bench/${name}.ts (benchmarks take a while; tables print as they finish)`);
        const code = await new Promise<number>((done) => {
          const child = spawn(process.execPath, argv, { stdio: 'inherit', cwd: resolve(BENCH_DIR, '..') });
          const forward = (s: NodeJS.Signals) => child.kill(s);
          process.on('SIGINT', forward);
          child.on('exit', (c, signal) => {
            process.off('SIGINT', forward);
            done(c ?? (signal ? 1 : 0));
          });
          child.on('error', () => done(1));
        });
        if (code !== 0) throw failure(`bench/${name}.ts exited with ${code}`);
      }),
    );
}
