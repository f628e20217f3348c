import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { fromHex, toHex } from '../util/bytes.ts';
import { agentIdFromPublicKey } from './did.ts';
import { ed25519Backend, SEED_LENGTH, type Ed25519Backend } from './ed25519.ts';
import { InvalidArgumentError, KeyError } from '../errors.ts';

/**
 * An agent's Ed25519 identity. The secret seed is held in a private field and
 * never appears in `toString`, `toJSON`, `util.inspect` or error messages; only
 * `exportSeed()` (for key files) hands it out.
 */
export interface AgentKey {
  readonly publicKey: Uint8Array;
  /** `did:key:z6Mk…` */
  readonly did: string;
  /** `z6Mk…`: the DID's method-specific id, used in subjects. */
  readonly agentId: string;
  sign(message: Uint8Array): Uint8Array;
  exportSeed(): Uint8Array;
}

class Ed25519AgentKey implements AgentKey {
  readonly #seed: Uint8Array;
  readonly #backend: Ed25519Backend;
  readonly publicKey: Uint8Array;
  readonly did: string;
  readonly agentId: string;

  constructor(seed: Uint8Array, backend: Ed25519Backend) {
    this.#seed = Uint8Array.from(seed);
    this.#backend = backend;
    this.publicKey = backend.publicKeyFromSeed(this.#seed);
    this.agentId = agentIdFromPublicKey(this.publicKey);
    this.did = 'did:key:' + this.agentId;
  }
  sign(message: Uint8Array): Uint8Array {
    return this.#backend.sign(this.#seed, message);
  }
  exportSeed(): Uint8Array {
    return Uint8Array.from(this.#seed);
  }
  toString(): string {
    return `AgentKey(${this.did})`;
  }
  toJSON(): { did: string } {
    return { did: this.did };
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

export interface KeyOptions {
  /** Which Ed25519 implementation signs; default `node` (node:crypto). */
  backend?: 'node' | 'noble';
}

export function generateKey(options: KeyOptions = {}): AgentKey {
  return new Ed25519AgentKey(randomBytes(SEED_LENGTH), ed25519Backend(options.backend));
}

export function keyFromSeed(seed: Uint8Array, options: KeyOptions = {}): AgentKey {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH) {
    throw new InvalidArgumentError(`seed must be a Uint8Array of ${SEED_LENGTH} bytes`);
  }
  return new Ed25519AgentKey(seed, ed25519Backend(options.backend));
}

/** On-disk form of a key file (JSON). */
export interface KeyFile {
  type: 'trustmesh-ed25519-key';
  version: 1;
  did: string;
  public_key_hex: string;
  seed_hex: string;
}

export interface SaveKeyOptions {
  /** Replace an existing file; default false (a key file is never overwritten by accident). */
  overwrite?: boolean;
}

/** Writes the key as JSON with mode 0600 (created with that mode, so it is never readable by others). */
export async function saveKeyFile(path: string, key: AgentKey, options: SaveKeyOptions = {}): Promise<void> {
  const seed = key.exportSeed();
  const file: KeyFile = {
    type: 'trustmesh-ed25519-key',
    version: 1,
    did: key.did,
    public_key_hex: toHex(key.publicKey),
    seed_hex: toHex(seed),
  };
  if (!options.overwrite && (await exists(path))) {
    throw new KeyError('key_file_exists', `key file ${path} already exists; refusing to overwrite it`);
  }
  // Written to a fresh temp file beside the target (O_EXCL: never an existing file; O_NOFOLLOW:
  // never through a symlink planted there), created 0600, synced, then renamed over the target:
  // a reader sees the old file or the whole new one, and the seed never lands in a file others can read.
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  if (!options.overwrite) {
    // link() fails if the target appeared meanwhile, where rename() would replace it.
    try {
      await link(temp, path);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new KeyError('key_file_exists', `key file ${path} already exists; refusing to overwrite it`);
      }
      throw err;
    }
    await unlink(temp);
    return;
  }
  await rename(temp, path);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

export async function loadKeyFile(path: string, options: KeyOptions = {}): Promise<AgentKey> {
  let text: string;
  let handle: FileHandle | undefined;
  try {
    // One open, then fstat on that descriptor: the file checked is the file read (no swap in between),
    // and a symlink is not followed to someone else's file.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    const info = await handle.stat();
    if (!info.isFile()) throw new KeyError('key_file_invalid', `${path} is not a regular file`);
    if (typeof process.getuid === 'function' && info.uid !== process.getuid()) {
      throw new KeyError('key_file_permissions', `key file ${path} belongs to another user (uid ${info.uid}); a key file must be your own`);
    }
    if ((info.mode & 0o077) !== 0) {
      throw new KeyError(
        'key_file_permissions',
        `key file ${path} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
      );
    }
    text = await handle.readFile('utf8');
  } catch (err) {
    if (err instanceof KeyError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyError('key_file_missing', `no key file at ${path}`);
    if (code === 'ELOOP') throw new KeyError('key_file_invalid', `${path} is a symbolic link; point to the key file itself`);
    throw err;
  } finally {
    await handle?.close().catch(() => undefined);
  }
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(text) as Partial<KeyFile>;
  } catch {
    throw new KeyError('key_file_invalid', `key file ${path} is not valid JSON`);
  }
  if (
    parsed?.type !== 'trustmesh-ed25519-key' ||
    parsed.version !== 1 ||
    typeof parsed.seed_hex !== 'string' ||
    !/^[0-9a-f]{64}$/i.test(parsed.seed_hex)
  ) {
    throw new KeyError('key_file_invalid', `key file ${path} is not a TrustMesh Ed25519 key file (version 1 with a 32-byte seed_hex)`);
  }
  const key = keyFromSeed(fromHex(parsed.seed_hex), options);
  if (parsed.did !== undefined && parsed.did !== key.did) {
    throw new KeyError(
      'key_file_invalid',
      `key file ${path} names ${typeof parsed.did === 'string' ? parsed.did.slice(0, 80) : `a ${typeof parsed.did}`} but its seed derives ${key.did}`,
    );
  }
  return key;
}
