/**
 * The `trustmesh` command. Exit codes: 0 ok, 1 failure, 2 usage error,
 * 3 nats-server missing, 4 cannot reach the mesh (see errors.ts).
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program.ts';
import { CliError, EXIT } from './errors.ts';

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end with code 0; every parse error is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message}\n`);
    if (process.env.TRUSTMESH_DEBUG !== undefined && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return EXIT.failure;
  }
}

const code = await main(process.argv);
process.exit(code);
