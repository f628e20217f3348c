import { chmod, lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPublic } from '@nats-io/nkeys';
import { generateKey, meshBuckets } from '@trustmesh/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ROLES,
  SECURE_ERRORS,
  SecureModeError,
  createMeshAuthority,
  didFromUserNkey,
  formatCreds,
  loadCreds,
  loadMeshAuthority,
  meshResources,
  openMeshAuthority,
  openModeWarning,
  permissionTableMarkdown,
  renderPermissions,
  userNkeyFromDid,
} from '../src/index.ts';

const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-authority-'));
  dirs.push(dir);
  return dir;
};
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const code = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (error instanceof SecureModeError ? error.code : `not a SecureModeError: ${String(error)}`),
  );

describe('authority - mesh directory', () => {
  it('authority - seeds are written 0600, mesh.json holds no seed, and a load gives the same keys', async () => {
    const dir = await tempDir();
    const created = await createMeshAuthority({ dir, mesh: 'files' });
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(['account.nk', 'mesh.json', 'operator.nk', 'system-account.nk', 'system-user.nk']);
    for (const file of files) expect(((await lstat(join(dir, file))).mode & 0o777).toString(8)).toBe('600');
    const meshFile = await readFile(join(dir, 'mesh.json'), 'utf8');
    expect(meshFile).not.toMatch(/"S[A-Z2-7]{57}"/); // no nkey seed
    expect(JSON.parse(meshFile)).toMatchObject({ mode: 'secure', mesh: 'files' });
    const loaded = await loadMeshAuthority(dir);
    expect([loaded.operatorPublicKey, loaded.accountPublicKey, loaded.systemAccountPublicKey]).toEqual([
      created.operatorPublicKey,
      created.accountPublicKey,
      created.systemAccountPublicKey,
    ]);
    expect((await openMeshAuthority({ dir, mesh: 'files' })).accountPublicKey).toBe(created.accountPublicKey);
    expect(await code(createMeshAuthority({ dir, mesh: 'files' }))).toBe('mesh_dir_exists');
  });

  it('authority - refuses a seed readable by others, a symlinked seed, and a seed that does not match mesh.json', async () => {
    const dir = await tempDir();
    await createMeshAuthority({ dir, mesh: 'files' });
    await chmod(join(dir, 'account.nk'), 0o644);
    expect(await code(loadMeshAuthority(dir))).toBe('secret_file_permissions');
    await chmod(join(dir, 'account.nk'), 0o600);

    const other = await tempDir();
    await createMeshAuthority({ dir: other, mesh: 'other' });
    await rm(join(dir, 'operator.nk'));
    await symlink(join(other, 'operator.nk'), join(dir, 'operator.nk'));
    expect(await code(loadMeshAuthority(dir))).toBe('secret_file_permissions');
    await rm(join(dir, 'operator.nk'));
    await writeFile(join(dir, 'operator.nk'), await readFile(join(other, 'operator.nk')), { mode: 0o600 });
    expect(await code(loadMeshAuthority(dir))).toBe('mesh_dir_invalid');
  });

  it('authority - admissions are recorded (no JWT kept): operators() lists standing operators, revoked and expired ones are marked', async () => {
    const dir = await tempDir();
    const authority = await createMeshAuthority({ dir, mesh: 'adm' });
    const [op1, op2, agent] = [generateKey(), generateKey(), generateKey()];
    await Promise.all([
      authority.admit(op1.did, { name: 'op1', role: 'operator' }),
      authority.admit(op2.did, { name: 'op2', role: 'operator', expiresAt: Date.now() + 60_000 }),
      authority.admit(agent.did, { name: 'a', role: 'agent' }),
    ]);
    expect(authority.operators().sort()).toEqual([op1.did, op2.did].sort());
    await authority.revoke(op2.did);
    expect(authority.operators()).toEqual([op1.did]);
    const reloaded = await loadMeshAuthority(dir);
    expect(reloaded.operators()).toEqual([op1.did]);
    expect(
      reloaded
        .admissions()
        .map((a) => [a.name, a.role, a.revoked])
        .sort(),
    ).toEqual([
      ['a', 'agent', false],
      ['op1', 'operator', false],
      ['op2', 'operator', true],
    ]);
    expect(JSON.stringify(JSON.parse(await readFile(join(dir, 'mesh.json'), 'utf8')).admissions)).not.toMatch(/jwt/i);
  });

  it('authority - the server config uses the operator JWT, the system account and the full resolver', async () => {
    const authority = await createMeshAuthority({ dir: await tempDir(), mesh: 'conf' });
    const config = authority.serverConfig();
    expect(config).toContain(`system_account: ${authority.systemAccountPublicKey}`);
    expect(config).toMatch(/resolver: \{\n {2}type: full\n/);
    expect(config).toContain(`${authority.accountPublicKey}: "${authority.accountJwt}"`);
    expect(config).toMatch(/mode secure/);
    expect(config).toMatch(/max_control_line: 65536/); // service JWTs exceed the default 4 KB CONNECT line
    const path = await authority.writeServerConfig();
    expect(await readFile(path, 'utf8')).toBe(config);
  });
});

describe('authority - keys', () => {
  it('keys - a did:key and its NATS user nkey are the same 32 bytes, both ways', () => {
    for (let i = 0; i < 20; i++) {
      const key = generateKey();
      const nkey = userNkeyFromDid(key.did);
      expect(nkey.startsWith('U')).toBe(true);
      expect(fromPublic(nkey).getPublicKey()).toBe(nkey); // the nkeys library accepts it (checksum, prefix)
      expect(didFromUserNkey(nkey)).toBe(key.did);
    }
    expect(() => userNkeyFromDid('did:key:zQ3sh')).toThrow(SecureModeError);
    expect(() => didFromUserNkey('ABCDEF')).toThrow(SecureModeError);
  });

  it('keys - a creds file round-trips the agent key; a creds file whose seed is not the JWT subject is refused', async () => {
    const authority = await createMeshAuthority({ dir: await tempDir(), mesh: 'creds' });
    const key = generateKey();
    const { jwt } = await authority.admit(key.did, { name: 'a', role: 'agent' });
    const loaded = await loadCreds(formatCreds(key, jwt));
    expect(loaded.key.did).toBe(key.did);
    expect(loaded.jwt).toBe(jwt);
    expect(await code(loadCreds(formatCreds(generateKey(), jwt)))).toBe('key_mismatch');
    expect(await code(loadCreds(new TextEncoder().encode('not creds')))).toBe('creds_invalid');
  });
});

describe('permission table', () => {
  const mesh = 'tbl';
  const self = generateKey().agentId;

  it('table - an agent publishes only mesh subjects ending in its own id, one pattern per kind, never a wildcard over kinds', () => {
    const { pub } = renderPermissions('agent', { mesh, agentId: self });
    const meshSubjects = pub.allow!.filter((s) => s.startsWith('tm.'));
    expect(meshSubjects.sort()).toEqual(
      [
        `tm.${mesh}.presence.${self}`,
        `tm.${mesh}.msg.*.${self}`,
        `tm.${mesh}.req.*.${self}`,
        `tm.${mesh}.rep.*.${self}`,
        `tm.${mesh}.ack.*.${self}`,
        `tm.${mesh}.breaker.${self}`,
        `tm.${mesh}.rules.${self}`,
        `tm.${mesh}.task.*.${self}`,
        `tm.${mesh}.ctask.*.${self}`,
      ].sort(),
    );
    for (const subject of pub.allow!) {
      expect(subject.split('.')[2]).not.toMatch(/^[*>]$/);
      if (!subject.startsWith('$JS.API.')) expect(subject.endsWith(`.${self}`)).toBe(true);
      expect(subject).not.toMatch(/STREAM\.(CREATE|UPDATE|DELETE|PURGE)|CONSUMER\.DELETE|MSG\.DELETE|\$JS\.API\.>/);
    }
  });

  it('table - an agent subscribes to its own inbox, the broadcasts it needs, and its private reply inbox only', () => {
    const { sub } = renderPermissions('agent', { mesh, agentId: self });
    expect(sub.allow!.sort()).toEqual(
      [
        `tm.${mesh}.*.${self}.*`,
        `tm.${mesh}.presence.*`,
        `tm.${mesh}.trust.*`,
        `tm.${mesh}.ctl.*`,
        `tm.${mesh}.ctask.*.*`,
        `tm.${mesh}.rules.${self}`,
        `_tm.${mesh}.inbox.${self}.>`,
      ].sort(),
    );
  });

  it('table - only operators get the control subjects and the JetStream admin API', () => {
    for (const role of ROLES) {
      const { pub } = renderPermissions(role, { mesh, agentId: self });
      expect(pub.allow!.some((subject) => subject.startsWith(`tm.${mesh}.ctl.`))).toBe(role === 'operator');
      expect(pub.allow!.includes('$JS.API.>')).toBe(role === 'operator');
    }
  });

  it('table - docs/security.md shows exactly the table in the code', async () => {
    const doc = await readFile(new URL('../../../docs/security.md', import.meta.url), 'utf8');
    // Compare cell by cell: the formatter pads Markdown tables.
    const rows = (text: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('|') && !/^\|[\s|:-]+\|$/.test(line))
        .map((line) =>
          line
            .split('|')
            .slice(1, -1)
            .map((cell) => cell.trim())
            .join(' | '),
        );
    const table = rows(permissionTableMarkdown());
    const inDoc = rows(doc);
    const start = inDoc.indexOf(table[0]!);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(inDoc.slice(start, start + table.length + 1)).toEqual(table); // every row, in order, and nothing after it
  });

  it('names - bucket names are @trustmesh/protocol meshBuckets, the ones every package uses', () => {
    const names = meshResources('m1');
    const buckets = meshBuckets('m1');
    expect([names.presenceBucket, names.trustBucket, names.killBucket, names.auditStream]).toEqual([
      buckets.presence,
      buckets.trust,
      buckets.kill,
      buckets.auditCapture,
    ]);
    expect(names).toMatchObject({ presenceBucket: 'tm_m1_presence', trustBucket: 'tm_m1_trust', killBucket: 'tm_m1_kill' });
  });
});

describe('errors and open mode', () => {
  it('errors - every code has a description, and the open-mode warning says what is exposed', () => {
    for (const [name, text] of Object.entries(SECURE_ERRORS)) expect(text.length, name).toBeGreaterThan(10);
    const warning = openModeWarning('nats://127.0.0.1:4222');
    expect(warning).toMatch(/OPEN MODE/);
    expect(warning).toMatch(/nats:\/\/127\.0\.0\.1:4222/);
    expect(warning).toMatch(/inbox/);
  });
});
