import { Command, InvalidArgumentError, Option } from 'commander';
import { registerAudit } from './commands/audit.ts';
import { registerBench } from './commands/bench.ts';
import { registerDemo } from './commands/demo.ts';
import { registerKeys } from './commands/keys.ts';
import { registerOps } from './commands/ops.ts';
import { registerUp } from './commands/up.ts';
import { DEFAULT_DIR } from './config.ts';

export interface GlobalOptions {
  json: boolean;
  dir: string;
}

/** A commander parser for a positive integer option. */
export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
    return n;
  };
}

export function port(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || n > 65535)
    throw new InvalidArgumentError(`a port is an integer from 1 to 65535 (got ${JSON.stringify(value)})`);
  return n;
}

/** Options of the commands that talk to a running mesh. */
export function withTarget(cmd: Command): Command {
  return cmd
    .addOption(new Option('--nats <url>', 'NATS URL of a mesh not described by --dir (open mode)'))
    .addOption(new Option('--mesh <name>', 'mesh name (with --nats; default: the one in --dir, else "local")'));
}

export function buildProgram(): Command {
  const program = new Command('trustmesh');
  program
    .description(
      'TrustMesh: a signed, trust-scored multi-agent mesh on NATS.\nExit codes: 0 ok, 1 failure, 2 usage error, 3 nats-server missing, 4 cannot reach the mesh.',
    )
    .version('0.1.0')
    .option('--json', 'print results as JSON on stdout (progress stays on stderr)', false)
    .option('--dir <dir>', 'mesh directory (configuration, keys, NATS store, audit log)', DEFAULT_DIR)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(run the command with --help for its usage)')
    .exitOverride();
  registerUp(program);
  registerDemo(program);
  registerKeys(program);
  registerOps(program);
  registerAudit(program);
  registerBench(program);
  return program;
}
