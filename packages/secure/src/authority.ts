import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { decode, encodeAccount, encodeOperator, encodeUser, type User } from '@nats-io/jwt';
import { createAccount, createOperator, createUser, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { connect, jwtAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { assertMeshName } from '@trustmesh/protocol';
import { ACCOUNT_LIMITS, USER_LIMITS, afterSecond, decodeUserJwt, signAccount } from './claims.ts';
import { SecureModeError, invalid } from './errors.ts';
import { readSecretFile, writeFileAtomic } from './files.ts';
import { userNkeyFromDid } from './nkeys.ts';
import { ROLES, renderPermissions, type Role } from './permissions.ts';
import { agentIdFromUserNkey, jwtTags } from './tags.ts';

/** `secure` (JWT auth, per-agent permissions) or `open` (no auth: development only). */
export type MeshMode = 'secure' | 'open';

/** What `mesh.json` in a mesh directory holds: public keys and JWTs only, never a seed. */
export interface MeshFile {
  type: 'trustmesh-mesh';
  version: 1;
  mode: MeshMode;
  mesh: string;
  operator: { publicKey: string; jwt: string };
  account: { publicKey: string; jwt: string };
  systemAccount: { publicKey: string; jwt: string };
  systemUser: { publicKey: string; jwt: string };
  /** User nkey → unix seconds: JWTs of that user issued at or before it are refused. */
  revocations: Record<string, number>;
  /** User nkey → its latest admission (for `status` and the operators list). */
  admissions?: Record<string, AdmissionRecord>;
}

/** What the authority remembers of an admission (the JWT itself is not kept). */
export interface AdmissionRecord {
  did: string;
  name: string;
  role: Role;
  /** Unix seconds: the JWT's `iat`. */
  issuedAt: number;
  /** ms since epoch, when set. */
  expiresAt?: number;
}

/** An admission as it stands now. */
export interface AdmissionStatus extends AdmissionRecord {
  /** Revoked after it was issued. */
  revoked: boolean;
  /** Its expiry has passed. */
  expired: boolean;
}

export interface MeshAuthorityInit {
  /** The mesh directory: mesh.json, the seeds (0600), the server config and the resolver's JWT store. */
  dir: string;
  /** The mesh name (subjects under `tm.<mesh>.`). */
  mesh: string;
}

export interface AdmitOptions {
  /** A human-readable name, carried in the JWT. */
  name: string;
  role: Role;
  /** When the admission ends (the server refuses the JWT, and closes its connection, from then on). */
  expiresAt?: Date | number;
}

/** An issued admission: hand `jwt` to the agent (it is not a secret; the agent's key is). */
export interface Admission {
  did: string;
  /** The agent's NATS user public key (`U…`): the same 32 bytes as its did:key. */
  userNkey: string;
  role: Role;
  name: string;
  jwt: string;
  /** ms since epoch, when set. */
  expiresAt?: number;
}

export interface ServerConfigOptions {
  /** Where the resolver keeps account JWTs. Default `<dir>/jwt`. */
  resolverDir?: string;
}

/** How the running server took an account update. */
export interface AccountPushResult {
  account: string;
  /** What the server answered, e.g. `jwt updated`. */
  message: string;
}

/**
 * The mesh operator's authority: the NATS operator, the mesh account and the
 * system account (nkeys and JWTs), admission of agents by DID and their
 * revocation. Create one with {@link createMeshAuthority} or load one with
 * {@link loadMeshAuthority}.
 */
export interface MeshAuthority {
  readonly dir: string;
  readonly mesh: string;
  readonly mode: 'secure';
  readonly operatorPublicKey: string;
  readonly accountPublicKey: string;
  readonly systemAccountPublicKey: string;
  /** The account JWT as it stands (revocations included). */
  readonly accountJwt: string;
  /**
   * Issues a user JWT for `did`: its subject is the agent's key, its permissions
   * the role's rows of the table. Re-admitting a revoked key waits, if needed,
   * for the second after its revocation (JWTs issued up to then stay void).
   */
  admit(did: string, options: AdmitOptions): Promise<Admission>;
  /**
   * Revokes every JWT issued to `did` until now: re-signs the account JWT with
   * the revocation and saves it. Push it to a running server with
   * {@link MeshAuthority.pushAccount} (or pass `server`): the server then closes
   * the agent's connections and refuses it from then on. Takes up to a second
   * when the account JWT was signed in the current second (so the new one is
   * strictly newer: nats-server compares `iat` in whole seconds).
   */
  revoke(did: string, options?: { server?: NatsConnection | string | string[] }): Promise<AccountPushResult | undefined>;
  /** The unix seconds at which `did` was revoked, if it was. */
  revokedAt(did: string): number | undefined;
  /** Every admission on record (the latest per key), with its revoked and expired state. */
  admissions(): AdmissionStatus[];
  /** DIDs of the operators whose admission stands (not revoked, not expired): the mesh's operators. */
  operators(): string[];
  /** nats-server config text: operator JWT, system account, full resolver, the two accounts preloaded. */
  serverConfig(options?: ServerConfigOptions): string;
  /** Writes {@link MeshAuthority.serverConfig} to `<dir>/nats-server.conf` and returns the path. */
  writeServerConfig(options?: ServerConfigOptions): Promise<string>;
  /** Connection options of the system account user (for pushing account updates). */
  systemConnectOptions(servers: string | string[]): ConnectionOptions;
  /** Sends the current account JWT to a running server (`$SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE`). */
  pushAccount(server: NatsConnection | string | string[]): Promise<AccountPushResult>;
}

const FILES = {
  mesh: 'mesh.json',
  operator: 'operator.nk',
  account: 'account.nk',
  systemAccount: 'system-account.nk',
  systemUser: 'system-user.nk',
  config: 'nats-server.conf',
} as const;

const OPERATOR_NAME = 'trustmesh';
const SYSTEM_ACCOUNT_NAME = 'SYS';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Creates the operator, account and system account in a new mesh directory (`mesh_dir_exists` if one is there). */
export async function createMeshAuthority(init: MeshAuthorityInit): Promise<MeshAuthority> {
  assertMeshName(init.mesh);
  const dir = resolve(init.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (await exists(join(dir, FILES.mesh))) {
    throw new SecureModeError('mesh_dir_exists', `${dir} already holds a mesh authority (${FILES.mesh}); load it with loadMeshAuthority`);
  }
  const operator = createOperator();
  const account = createAccount();
  const systemAccount = createAccount();
  const systemUser = createUser();
  const operatorJwt = await encodeOperator(OPERATOR_NAME, operator, { system_account: systemAccount.getPublicKey() });
  const systemAccountJwt = await encodeAccount(SYSTEM_ACCOUNT_NAME, systemAccount, { limits: { ...ACCOUNT_LIMITS } }, { signer: operator });
  const systemUserJwt = await encodeUser('trustmesh-system', systemUser, systemAccount, { ...USER_LIMITS });
  const file: MeshFile = {
    type: 'trustmesh-mesh',
    version: 1,
    mode: 'secure',
    mesh: init.mesh,
    operator: { publicKey: operator.getPublicKey(), jwt: operatorJwt },
    account: { publicKey: account.getPublicKey(), jwt: await signAccount(init.mesh, account, operator, {}) },
    systemAccount: { publicKey: systemAccount.getPublicKey(), jwt: systemAccountJwt },
    systemUser: { publicKey: systemUser.getPublicKey(), jwt: systemUserJwt },
    revocations: {},
    admissions: {},
  };
  // Seeds first, the mesh file last: a directory with mesh.json is complete.
  await writeFileAtomic(join(dir, FILES.operator), operator.getSeed());
  await writeFileAtomic(join(dir, FILES.account), account.getSeed());
  await writeFileAtomic(join(dir, FILES.systemAccount), systemAccount.getSeed());
  await writeFileAtomic(join(dir, FILES.systemUser), systemUser.getSeed());
  await writeFileAtomic(join(dir, FILES.mesh), `${JSON.stringify(file, null, 2)}\n`);
  return new Authority(dir, file, { operator, account, systemAccount, systemUser });
}

/** Loads the authority of a mesh directory, checking that every seed matches the public key on record. */
export async function loadMeshAuthority(dir: string): Promise<MeshAuthority> {
  dir = resolve(dir);
  let file: MeshFile;
  try {
    file = JSON.parse(await readFile(join(dir, FILES.mesh), 'utf8')) as MeshFile;
  } catch (cause) {
    throw new SecureModeError('mesh_dir_invalid', `${join(dir, FILES.mesh)} is missing or not JSON`, { cause });
  }
  if (file?.type !== 'trustmesh-mesh' || file.version !== 1 || file.mode !== 'secure') {
    throw new SecureModeError('mesh_dir_invalid', `${join(dir, FILES.mesh)} is not a version 1 secure mesh file`);
  }
  assertMeshName(file.mesh);
  const load = async (name: string, publicKey: string): Promise<KeyPair> => {
    const path = join(dir, name);
    let pair: KeyPair;
    try {
      pair = fromSeed(await readSecretFile(path));
    } catch (cause) {
      if (cause instanceof SecureModeError) throw cause;
      throw new SecureModeError('mesh_dir_invalid', `${path} does not hold an nkey seed`, { cause });
    }
    if (pair.getPublicKey() !== publicKey)
      throw new SecureModeError('mesh_dir_invalid', `${path} holds the seed of another key than ${FILES.mesh} names`);
    return pair;
  };
  const keys = {
    operator: await load(FILES.operator, file.operator.publicKey),
    account: await load(FILES.account, file.account.publicKey),
    systemAccount: await load(FILES.systemAccount, file.systemAccount.publicKey),
    systemUser: await load(FILES.systemUser, file.systemUser.publicKey),
  };
  return new Authority(dir, { ...file, revocations: { ...file.revocations }, admissions: { ...file.admissions } }, keys);
}

/** Loads the mesh directory's authority, or creates one there if it has none. */
export async function openMeshAuthority(init: MeshAuthorityInit): Promise<MeshAuthority> {
  if (!(await exists(join(resolve(init.dir), FILES.mesh)))) return createMeshAuthority(init);
  const authority = await loadMeshAuthority(init.dir);
  if (authority.mesh !== init.mesh) invalid(`${init.dir} holds the authority of mesh ${authority.mesh}, not ${init.mesh}`);
  return authority;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

interface Keys {
  operator: KeyPair;
  account: KeyPair;
  systemAccount: KeyPair;
  systemUser: KeyPair;
}

class Authority implements MeshAuthority {
  readonly mode = 'secure' as const;
  readonly dir: string;
  readonly #keys: Keys;
  #file: MeshFile;
  #updates: Promise<unknown> = Promise.resolve();

  constructor(dir: string, file: MeshFile, keys: Keys) {
    this.dir = dir;
    this.#file = file;
    this.#keys = keys;
  }

  get mesh() {
    return this.#file.mesh;
  }
  get operatorPublicKey() {
    return this.#file.operator.publicKey;
  }
  get accountPublicKey() {
    return this.#file.account.publicKey;
  }
  get systemAccountPublicKey() {
    return this.#file.systemAccount.publicKey;
  }
  get accountJwt() {
    return this.#file.account.jwt;
  }

  async admit(did: string, options: AdmitOptions): Promise<Admission> {
    const userNkey = userNkeyFromDid(did);
    if (typeof options?.name !== 'string' || options.name.length === 0 || options.name.length > 128)
      invalid('name must be a string of 1 to 128 characters');
    if (!ROLES.includes(options.role)) invalid(`role must be one of ${ROLES.join(', ')} (got ${String(options.role).slice(0, 40)})`);
    let expiresAt: number | undefined;
    if (options.expiresAt !== undefined) {
      expiresAt = options.expiresAt instanceof Date ? options.expiresAt.getTime() : options.expiresAt;
      if (!Number.isFinite(expiresAt) || expiresAt <= Date.now()) invalid('expiresAt must be in the future');
    }
    // A revocation voids every JWT of this key issued up to its second; a re-admission must be signed later.
    const revoked = this.#file.revocations[userNkey];
    if (revoked !== undefined) await afterSecond(revoked);
    const agentId = agentIdFromUserNkey(userNkey);
    const user: Partial<User> = {
      ...USER_LIMITS,
      ...renderPermissions(options.role, { mesh: this.mesh, agentId }),
      bearer_token: false,
      tags: jwtTags(this.mesh, options.role),
    };
    const jwt = await encodeUser(
      options.name,
      userNkey,
      this.#keys.account,
      user,
      expiresAt === undefined ? {} : { exp: Math.ceil(expiresAt / 1000) },
    );
    const record: AdmissionRecord = {
      did,
      name: options.name,
      role: options.role,
      issuedAt: decodeUserJwt(jwt).iat,
      ...(expiresAt !== undefined && { expiresAt }),
    };
    await this.#update((file) => ({ ...file, admissions: { ...file.admissions, [userNkey]: record } }));
    return { did, userNkey, role: options.role, name: options.name, jwt, ...(expiresAt !== undefined && { expiresAt }) };
  }

  admissions(): AdmissionStatus[] {
    const now = Date.now();
    return Object.entries(this.#file.admissions ?? {}).map(([nkey, record]) => {
      const revokedAt = this.#file.revocations[nkey];
      return {
        ...record,
        revoked: revokedAt !== undefined && revokedAt >= record.issuedAt,
        expired: record.expiresAt !== undefined && record.expiresAt <= now,
      };
    });
  }

  operators(): string[] {
    return this.admissions()
      .filter((a) => a.role === 'operator' && !a.revoked && !a.expired)
      .map((a) => a.did);
  }

  /** Applies `change` to the mesh file and saves it, one change at a time. */
  #update(change: (file: MeshFile) => MeshFile | Promise<MeshFile>): Promise<void> {
    const done = this.#updates.then(async () => {
      const file = await change(this.#file);
      await writeFileAtomic(join(this.dir, FILES.mesh), `${JSON.stringify(file, null, 2)}\n`);
      this.#file = file;
    });
    this.#updates = done.catch(() => undefined);
    return done;
  }

  async revoke(did: string, options: { server?: NatsConnection | string | string[] } = {}): Promise<AccountPushResult | undefined> {
    const userNkey = userNkeyFromDid(did);
    await this.#update(async (file) => {
      // nats-server keeps the newer of two account JWTs by `iat` (whole seconds). A revocation signed in the
      // same second as the JWT it replaces would tie, and a restart from a config that preloads the older
      // JWT would then un-revoke. So the new JWT is always signed in a later second (test/revocation.spec.ts).
      await afterSecond(decode(file.account.jwt).iat);
      const revocations = { ...file.revocations, [userNkey]: Math.floor(Date.now() / 1000) };
      const jwt = await signAccount(file.mesh, this.#keys.account, this.#keys.operator, revocations);
      return { ...file, account: { ...file.account, jwt }, revocations };
    });
    return options.server === undefined ? undefined : this.pushAccount(options.server);
  }

  revokedAt(did: string): number | undefined {
    return this.#file.revocations[userNkeyFromDid(did)];
  }

  serverConfig(options: ServerConfigOptions = {}): string {
    const quote = (value: string) => JSON.stringify(value);
    const resolverDir = resolve(options.resolverDir ?? join(this.dir, 'jwt'));
    return [
      `# TrustMesh mesh ${this.mesh}: mode secure (decentralized JWT auth), generated by @trustmesh/secure`,
      `operator: ${quote(this.#file.operator.jwt)}`,
      `system_account: ${this.systemAccountPublicKey}`,
      '# A CONNECT carries the user JWT, whose allow lists make it ~4 KB for a service role: above the default 4 KB line.',
      'max_control_line: 65536',
      'resolver: {',
      '  type: full',
      `  dir: ${quote(resolverDir)}`,
      '  allow_delete: false',
      '  interval: "2m"',
      '  timeout: "1.9s"',
      '}',
      'resolver_preload: {',
      `  ${this.accountPublicKey}: ${quote(this.#file.account.jwt)}`,
      `  ${this.systemAccountPublicKey}: ${quote(this.#file.systemAccount.jwt)}`,
      '}',
      '',
    ].join('\n');
  }

  async writeServerConfig(options: ServerConfigOptions = {}): Promise<string> {
    const path = join(this.dir, FILES.config);
    await writeFileAtomic(path, this.serverConfig(options));
    return path;
  }

  systemConnectOptions(servers: string | string[]): ConnectionOptions {
    return {
      servers,
      name: 'trustmesh-system',
      authenticator: jwtAuthenticator(this.#file.systemUser.jwt, this.#keys.systemUser.getSeed()),
    };
  }

  async pushAccount(server: NatsConnection | string | string[]): Promise<AccountPushResult> {
    const nc = typeof server === 'string' || Array.isArray(server) ? await connect(this.systemConnectOptions(server)) : server;
    try {
      const subject = `$SYS.REQ.ACCOUNT.${this.accountPublicKey}.CLAIMS.UPDATE`;
      const reply = await nc.request(subject, encoder.encode(this.accountJwt), { timeout: 5_000 });
      const answer = JSON.parse(decoder.decode(reply.data)) as {
        data?: { account?: string; code?: number; message?: string };
        error?: { account?: string; code?: number; description?: string };
      };
      if (answer.error !== undefined || answer.data?.code !== 200) {
        throw new SecureModeError(
          'account_update_failed',
          `the server refused the account update: ${answer.error?.description ?? JSON.stringify(answer)}`,
        );
      }
      return { account: answer.data.account ?? this.accountPublicKey, message: answer.data.message ?? '' };
    } catch (cause) {
      if (cause instanceof SecureModeError) throw cause;
      throw new SecureModeError('account_update_failed', `could not push the account JWT: ${(cause as Error).message}`, { cause });
    } finally {
      if (nc !== server) await nc.close();
    }
  }
}
