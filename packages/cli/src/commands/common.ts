import type { Command } from 'commander';
import { createOutput, type Output } from '../output.ts';
import type { GlobalOptions } from '../program.ts';

/** Wraps an action: global options merged in, an Output for --json. */
export function action<A extends unknown[], O>(fn: (out: Output, opts: O & GlobalOptions, ...args: A) => Promise<void>) {
  return async (...raw: unknown[]) => {
    const cmd = raw.at(-1) as Command;
    const opts = cmd.optsWithGlobals() as O & GlobalOptions;
    const args = raw.slice(0, -2) as A;
    await fn(createOutput(opts.json === true), opts, ...args);
  };
}
