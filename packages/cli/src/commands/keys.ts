import { resolve } from 'node:path';
import type { Command } from 'commander';
import { generateKey, resolveDid, saveKeyFile, tryPublicKeyFromDid } from '@trustmesh/protocol';
import { exists } from '../config.ts';
import { failure, usageError } from '../errors.ts';
import { action } from './common.ts';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('agent keys (Ed25519, did:key)');
  keys
    .command('new')
    .description('generate a key, save it (mode 0600) and print its DID')
    .option('--out <file>', 'where to save the key file (default: ./agent-<last 8 of its id>.key)')
    .option('--force', 'overwrite an existing key file', false)
    .action(
      action(async (out, opts: { out?: string; force: boolean }) => {
        const key = generateKey();
        const file = resolve(opts.out ?? `agent-${key.agentId.slice(-8)}.key`);
        if (!opts.force && (await exists(file))) throw usageError(`${file} exists; pass --force to overwrite it or --out another file`);
        try {
          await saveKeyFile(file, key, { overwrite: opts.force });
        } catch (cause) {
          throw failure(`cannot write ${file}: ${(cause as Error).message}`, cause);
        }
        out.result({ did: key.did, agentId: key.agentId, file });
        out.line(key.did);
        out.warn(`key saved to ${file} (mode 0600); keep it secret`);
      }),
    );

  const did = program.command('did').description('did:key identities');
  did
    .command('resolve')
    .description('print the DID document of a did:key (W3C DID resolution, key-did-resolver)')
    .argument('<did>', 'a did:key, e.g. did:key:z6Mk…')
    .action(
      action(async (out, _opts, didArg: string) => {
        if (tryPublicKeyFromDid(didArg) === undefined)
          throw usageError(`not an Ed25519 did:key: ${JSON.stringify(didArg.slice(0, 120))} (expected did:key:z6Mk…)`);
        const result = await resolveDid(didArg);
        if (result.didDocument === null || result.didResolutionMetadata.error !== undefined) {
          throw failure(`resolution failed: ${result.didResolutionMetadata.error ?? 'no document'}`);
        }
        // The document is the result in both modes: JSON is what a DID document is.
        process.stdout.write(`${JSON.stringify(out.json ? result : result.didDocument, null, 2)}\n`);
      }),
    );
}
