import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  base58btcEncode,
  fromHex,
  generateKey,
  InvalidArgumentError,
  KeyError,
  keyFromSeed,
  loadKeyFile,
  nobleEd25519,
  nodeEd25519,
  publicKeyFromDid,
  saveKeyFile,
  toHex,
  type AgentKey,
  type KeyErrorCode,
} from '../src/index.ts';

// RFC 8032 section 7.1 TEST 1 (https://www.rfc-editor.org/rfc/rfc8032#section-7.1).
const RFC_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trustmesh-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCounter = 0;
const freshPath = () => join(dir, `key-${++fileCounter}.json`);

/** Every textual form a seed could leak in. */
function secretForms(seed: Uint8Array): string[] {
  const b = Buffer.from(seed);
  return [
    b.toString('hex'),
    b.toString('hex').toUpperCase(),
    b.toString('base64'),
    b.toString('base64url'),
    base58btcEncode(seed),
    Array.from(seed).join(','),
    Array.from(seed).join(', '),
  ];
}

function expectNoSecret(text: string, seed: Uint8Array): void {
  for (const form of secretForms(seed)) expect(text.includes(form), `leaked as ${form.slice(0, 12)}…`).toBe(false);
}

async function rejection(promise: Promise<unknown>): Promise<KeyError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(KeyError);
    return err as KeyError;
  }
  throw new Error('expected a rejection');
}

async function expectKeyError(promise: Promise<unknown>, code: KeyErrorCode): Promise<KeyError> {
  const err = await rejection(promise);
  expect(err.code).toBe(code);
  return err;
}

describe('keys generate and derive', () => {
  it('keys - generateKey gives a working did:key identity', () => {
    const key = generateKey();
    expect(key.publicKey.length).toBe(32);
    expect(key.did).toBe('did:key:' + key.agentId);
    expect(key.agentId.startsWith('z6Mk')).toBe(true);
    expect(toHex(publicKeyFromDid(key.did))).toBe(toHex(key.publicKey));
    const message = randomBytes(100);
    expect(nodeEd25519.verify(key.publicKey, message, key.sign(message))).toBe(true);
    expect(key.exportSeed().length).toBe(32);
    expect(toHex(nodeEd25519.publicKeyFromSeed(key.exportSeed()))).toBe(toHex(key.publicKey));
  });

  it('keys - generateKey returns a different key each time', () => {
    const dids = new Set(Array.from({ length: 50 }, () => generateKey().did));
    expect(dids.size).toBe(50);
    const noble = generateKey({ backend: 'noble' });
    expect(toHex(nobleEd25519.publicKeyFromSeed(noble.exportSeed()))).toBe(toHex(noble.publicKey));
  });

  it('keys - keyFromSeed is deterministic and matches RFC 8032 TEST 1', () => {
    const a = keyFromSeed(fromHex(RFC_SEED));
    const b = keyFromSeed(fromHex(RFC_SEED));
    expect(toHex(a.publicKey)).toBe(RFC_PUBLIC);
    expect(a.did).toBe(b.did);
    const msg = new Uint8Array([1, 2, 3]);
    expect(toHex(a.sign(msg))).toBe(toHex(b.sign(msg)));
    expect(toHex(a.sign(new Uint8Array(0)))).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('keys - node and noble backends give the same did and the same signatures for a seed', () => {
    for (let i = 0; i < 20; i++) {
      const seed = randomBytes(32);
      const viaNode = keyFromSeed(seed, { backend: 'node' });
      const viaNoble = keyFromSeed(seed, { backend: 'noble' });
      expect(viaNoble.did).toBe(viaNode.did);
      expect(viaNoble.agentId).toBe(viaNode.agentId);
      const msg = randomBytes(i * 10);
      expect(toHex(viaNoble.sign(msg))).toBe(toHex(viaNode.sign(msg)));
    }
  });

  it('keys - keyFromSeed copies the seed, and exportSeed hands out a copy', () => {
    const seed = randomBytes(32);
    const original = Uint8Array.from(seed);
    const key = keyFromSeed(seed);
    const before = toHex(key.sign(new Uint8Array([9])));
    seed.fill(0);
    expect(toHex(key.sign(new Uint8Array([9])))).toBe(before);
    const exported = key.exportSeed();
    expect(toHex(exported)).toBe(toHex(original));
    exported.fill(0);
    expect(toHex(key.exportSeed())).toBe(toHex(original));
  });

  it('keys - keyFromSeed throws InvalidArgumentError for a seed that is not 32 bytes', () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), RFC_SEED, Array.from(randomBytes(32)), undefined]) {
      expect(() => keyFromSeed(bad as Uint8Array)).toThrow(InvalidArgumentError);
    }
  });
});

describe('keys secrecy', () => {
  const seed = randomBytes(32);
  const key = keyFromSeed(seed);

  it('keys - the seed never appears in String, template, JSON or util.inspect of a key', () => {
    const renderings = [
      String(key),
      `${key}`,
      key.toString(),
      JSON.stringify(key),
      JSON.stringify({ nested: { key } }),
      inspect(key),
      inspect(key, { showHidden: true, depth: Infinity, getters: true }),
      inspect({ key }, { showHidden: true, depth: Infinity }),
      JSON.stringify(Object.entries(key)),
      Object.keys(key).join(','),
    ];
    for (const text of renderings) expectNoSecret(text, seed);
    expect(String(key)).toContain(key.did);
    expect(JSON.parse(JSON.stringify(key))).toEqual({ did: key.did });
    expect(inspect(key)).toContain(key.did);
  });

  it('keys - no enumerable or own property of the key holds the seed bytes', () => {
    for (const name of Reflect.ownKeys(key)) {
      const value = (key as unknown as Record<PropertyKey, unknown>)[name];
      if (value instanceof Uint8Array) expect(toHex(value)).not.toBe(toHex(seed));
      if (typeof value === 'string') expectNoSecret(value, seed);
    }
  });

  it('keys - the seed never appears in any key-file error message', async () => {
    const hex = toHex(seed);
    const messages: string[] = [];
    const capture = async (p: Promise<unknown>) => messages.push((await rejection(p)).message);

    const mismatch = freshPath();
    await writeFile(mismatch, JSON.stringify({ type: 'trustmesh-ed25519-key', version: 1, did: generateKey().did, seed_hex: hex }), {
      mode: 0o600,
    });
    await capture(loadKeyFile(mismatch));

    const loose = freshPath();
    await saveKeyFile(loose, key);
    await chmod(loose, 0o644);
    await capture(loadKeyFile(loose));

    const wrongVersion = freshPath();
    await writeFile(wrongVersion, JSON.stringify({ type: 'trustmesh-ed25519-key', version: 2, seed_hex: hex }), { mode: 0o600 });
    await capture(loadKeyFile(wrongVersion));

    const badJson = freshPath();
    await writeFile(badJson, `{"seed_hex": "${hex}",`, { mode: 0o600 });
    await capture(loadKeyFile(badJson));

    const exists = freshPath();
    await saveKeyFile(exists, key);
    await capture(saveKeyFile(exists, key));

    expect(messages).toHaveLength(5);
    for (const message of messages) expectNoSecret(message, seed);
  });
});

describe('keys files', () => {
  it('keys - saveKeyFile writes a 0600 JSON file that loadKeyFile round trips', async () => {
    const key = generateKey();
    const path = freshPath();
    await saveKeyFile(path, key);
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const json = JSON.parse(await readFile(path, 'utf8'));
    expect(json).toEqual({
      type: 'trustmesh-ed25519-key',
      version: 1,
      did: key.did,
      public_key_hex: toHex(key.publicKey),
      seed_hex: toHex(key.exportSeed()),
    });

    const loaded = await loadKeyFile(path);
    expect(loaded.did).toBe(key.did);
    expect(toHex(loaded.publicKey)).toBe(toHex(key.publicKey));
    const msg = randomBytes(64);
    expect(toHex(loaded.sign(msg))).toBe(toHex(key.sign(msg)));

    const viaNoble = await loadKeyFile(path, { backend: 'noble' });
    expect(viaNoble.did).toBe(key.did);
    expect(toHex(viaNoble.sign(msg))).toBe(toHex(key.sign(msg)));
  });

  it('keys - saveKeyFile refuses to overwrite an existing file (key_file_exists) and leaves it intact', async () => {
    const first = generateKey();
    const second = generateKey();
    const path = freshPath();
    await saveKeyFile(path, first);
    const before = await readFile(path, 'utf8');
    await expectKeyError(saveKeyFile(path, second), 'key_file_exists');
    await expectKeyError(saveKeyFile(path, second, { overwrite: false }), 'key_file_exists');
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await loadKeyFile(path)).did).toBe(first.did);

    // Also a file that is not a key file at all is never clobbered.
    const other = freshPath();
    await writeFile(other, 'precious', { mode: 0o600 });
    await expectKeyError(saveKeyFile(other, first), 'key_file_exists');
    expect(await readFile(other, 'utf8')).toBe('precious');
  });

  it('keys - saveKeyFile with overwrite:true replaces the file and forces mode 0600', async () => {
    const first = generateKey();
    const second = generateKey();
    const path = freshPath();
    await saveKeyFile(path, first);
    await chmod(path, 0o644);
    await saveKeyFile(path, second, { overwrite: true });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await loadKeyFile(path)).did).toBe(second.did);
    // Overwriting a longer file leaves no tail of the old content.
    const long = freshPath();
    await writeFile(long, 'x'.repeat(10_000), { mode: 0o644 });
    await saveKeyFile(long, second, { overwrite: true });
    expect((await stat(long)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(long, 'utf8')).did).toBe(second.did);
  });

  it('keys - saveKeyFile into a missing directory fails with the system error, not a KeyError', async () => {
    const err = await saveKeyFile(join(dir, 'no-such-dir', 'k.json'), generateKey()).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(KeyError);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('keys - loadKeyFile reports key_file_missing for a path that does not exist', async () => {
    await expectKeyError(loadKeyFile(join(dir, 'does-not-exist.json')), 'key_file_missing');
  });

  it('keys - loadKeyFile reports key_file_permissions when group or others can read', async () => {
    const key = generateKey();
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o601]) {
      const path = freshPath();
      await saveKeyFile(path, key);
      await chmod(path, mode);
      const err = await expectKeyError(loadKeyFile(path), 'key_file_permissions');
      expect(err.message).toContain('chmod 600');
    }
    // 0400 (owner read-only) is fine.
    const path = freshPath();
    await saveKeyFile(path, key);
    await chmod(path, 0o400);
    expect((await loadKeyFile(path)).did).toBe(key.did);
  });

  it('keys - loadKeyFile reports key_file_invalid for bad JSON', async () => {
    for (const text of ['', '{', 'not json', '{"type": "trustmesh-ed25519-key",}', '\u0000\u0001']) {
      const path = freshPath();
      await writeFile(path, text, { mode: 0o600 });
      await expectKeyError(loadKeyFile(path), 'key_file_invalid');
    }
  });

  it('keys - loadKeyFile reports key_file_invalid for the wrong type, version or seed', async () => {
    const seedHex = toHex(randomBytes(32));
    const good = { type: 'trustmesh-ed25519-key', version: 1, seed_hex: seedHex };
    const bad: unknown[] = [
      null,
      42,
      'trustmesh-ed25519-key',
      [good],
      {},
      { ...good, type: 'ssh-ed25519' },
      { ...good, type: undefined },
      { ...good, version: 2 },
      { ...good, version: '1' },
      { ...good, seed_hex: seedHex.slice(2) },
      { ...good, seed_hex: seedHex + '00' },
      { ...good, seed_hex: 'zz' + seedHex.slice(2) },
      { ...good, seed_hex: 12345 },
      { ...good, seed_hex: Array.from(fromHex(seedHex)) },
      { type: 'trustmesh-ed25519-key', version: 1 },
    ];
    for (const content of bad) {
      const path = freshPath();
      await writeFile(path, JSON.stringify(content), { mode: 0o600 });
      await expectKeyError(loadKeyFile(path), 'key_file_invalid');
    }
    // Control: the same good object loads.
    const path = freshPath();
    await writeFile(path, JSON.stringify(good), { mode: 0o600 });
    expect((await loadKeyFile(path)).did).toBe(keyFromSeed(fromHex(seedHex)).did);
  });

  it('keys - loadKeyFile reports key_file_invalid when the did does not match the seed', async () => {
    const key = generateKey();
    const other = generateKey();
    const base = { type: 'trustmesh-ed25519-key', version: 1, public_key_hex: toHex(key.publicKey), seed_hex: toHex(key.exportSeed()) };
    for (const did of [other.did, key.did + 'x', key.did.toUpperCase(), '', 42, null, { toString: 1 }, [key.did]]) {
      const path = freshPath();
      await writeFile(path, JSON.stringify({ ...base, did }), { mode: 0o600 });
      const err = await expectKeyError(loadKeyFile(path), 'key_file_invalid');
      expect(err.message).toContain(key.did);
    }
  });

  it('keys - a saved key file signs the same as the key it came from, for every backend combination', async () => {
    const keys: AgentKey[] = [generateKey(), generateKey({ backend: 'noble' })];
    for (const key of keys) {
      const path = freshPath();
      await saveKeyFile(path, key);
      for (const backend of ['node', 'noble'] as const) {
        const loaded = await loadKeyFile(path, { backend });
        expect(loaded.did).toBe(key.did);
        expect(toHex(loaded.sign(new Uint8Array([7])))).toBe(toHex(key.sign(new Uint8Array([7]))));
      }
    }
  });

  it('keys - loadKeyFile refuses a symbolic link (never followed to another file) and a directory', async () => {
    const real = freshPath();
    await saveKeyFile(real, generateKey());
    const linkPath = freshPath();
    await symlink(real, linkPath);
    await expectKeyError(loadKeyFile(linkPath), 'key_file_invalid');
    await expectKeyError(loadKeyFile(dir), 'key_file_invalid');
  });

  it('keys - saveKeyFile replaces a symlink planted at the target instead of writing through it, and leaves no temp file', async () => {
    const victim = freshPath();
    await writeFile(victim, 'not yours', { mode: 0o644 });
    const target = freshPath();
    await symlink(victim, target);
    await expectKeyError(saveKeyFile(target, generateKey()), 'key_file_exists');
    const key = generateKey();
    await saveKeyFile(target, key, { overwrite: true });
    expect(await readFile(victim, 'utf8')).toBe('not yours');
    expect((await lstat(target)).isSymbolicLink()).toBe(false);
    expect(((await stat(target)).mode & 0o777).toString(8)).toBe('600');
    expect((await loadKeyFile(target)).did).toBe(key.did);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
