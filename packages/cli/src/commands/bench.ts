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
      .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
      .map((f) => f.slice(0, -3))
      .sort();
  } catch {
    return [];
  }
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      `run the benchmarks: with no NAME, bench/run.ts (every benchmark, or --only NAMES, one table or one JSON object); with NAME, that file alone (tsx bench/NAME.ts): ${
        benchNames().join(', ') || 'none found'
      }`,
    )
    .argument('[name]', 'one benchmark file of bench/, run alone (default: all, through bench/run.ts)')
    .argument('[args...]', 'more arguments for the benchmark (after --)')
    .option('--only <names>', 'passed through: only these benchmarks (bench/run.ts names, comma-separated)')
    .option('--quick', 'passed through to bench/run.ts: fewer rounds, a smoke run', false)
    .option('--list', 'list the benchmark files and exit', false)
    .action(
      action(
        async (out, opts: { only?: string; quick: boolean; list: boolean; json: boolean }, name: string | undefined, args: string[]) => {
          const names = benchNames();
          if (name?.startsWith('-')) {
            // `trustmesh bench -- --help`: flags for bench/run.ts, no file name
            args = [name, ...args];
            name = undefined;
          }
          if (opts.list) {
            out.result(names);
            for (const n of names) out.line(n);
            return;
          }
          if (name !== undefined && !names.includes(name))
            throw usageError(`no benchmark ${JSON.stringify(name)}; one of: ${names.join(', ')}`);
          const file = name === undefined ? 'run.ts' : `${name}.ts`;
          const tsx = createRequire(import.meta.url).resolve('tsx/cli');
          const argv = [
            tsx,
            join(BENCH_DIR, file),
            ...(opts.only ? ['--only', opts.only] : []),
            ...(opts.quick && name === undefined ? ['--quick'] : []),
            ...(opts.json ? ['--json'] : []),
            ...args,
          ];
          out.progress(`running bench/${file} (benchmarks take minutes; tables print as they finish)`);
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
          if (code === 2)
            throw usageError(
              `bench/${file} refused its arguments (see its --help: trustmesh bench ${name === undefined ? '' : `${name} `}-- --help)`,
            );
          if (code !== 0) throw failure(`bench/${file} exited with ${code}`);
        },
      ),
    );
}
