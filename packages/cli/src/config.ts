/**
 * The mesh directory that `trustmesh up` creates and every other command
 * reads: `<dir>/trustmesh.json` (public data only: names, DIDs, URLs, mode),
 * the key files of the operator, broker and audit service (0600), the secure
 * mode authority under `authority/`, the nats-server store under `nats/`, and
 * the audit log under `audit/`.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type AgentKey, assertMeshName, generateKey, loadKeyFile, saveKeyFile } from '@trustmesh/protocol';
import type { ClusterNodeConfig } from './cluster.ts';
import { writeFileAtomic } from './files.ts';
import { CliError, EXIT, failure } from './errors.ts';

export const CONFIG_FILE = 'trustmesh.json';
export const DEFAULT_DIR = '.trustmesh';
export const DEFAULT_MESH = 'local';

export type Mode = 'secure' | 'open';

export interface MeshConfig {
  type: 'trustmesh-cli-mesh';
  version: 1;
  mesh: string;
  mode: Mode;
  /**
   * The NATS the mesh lives on; `embedded` when `up` runs its own nats-server.
   * A local cluster (`up --nodes N`) records every node (fixed ports, so `up`
   * resumes it) and `urls`, all of which clients are given; `url` is the first.
   */
  nats: { url: string; port?: number; embedded: boolean; urls?: string[]; cluster?: { name: string; nodes: ClusterNodeConfig[] } };
  /** Key files are relative to the mesh directory. */
  operator: { did: string; keyFile: string };
  broker: { did: string; keyFile: string };
  audit: { did: string; keyFile: string; log: string };
  createdAt: string;
}

export const paths = (dir: string) => {
  const root = resolve(dir);
  return {
    root,
    config: join(root, CONFIG_FILE),
    authority: join(root, 'authority'),
    natsStore: join(root, 'nats'),
    auditDir: join(root, 'audit'),
    pidFile: join(root, 'up.pid'),
  };
};

export async function readConfig(dir: string): Promise<MeshConfig | undefined> {
  const file = paths(dir).config;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let config: MeshConfig;
  try {
    config = JSON.parse(text) as MeshConfig;
  } catch (cause) {
    throw failure(`${file} is not JSON; move it away and run \`trustmesh up\` again`, cause);
  }
  if (config?.type !== 'trustmesh-cli-mesh' || config.version !== 1)
    throw failure(`${file} is not a trustmesh mesh configuration (version 1)`);
  return config;
}

/** The configuration of the mesh in `dir`, or an error that says to run `trustmesh up` there. */
export async function requireConfig(dir: string): Promise<MeshConfig> {
  const config = await readConfig(dir);
  if (config === undefined) {
    throw new CliError(
      EXIT.unreachable,
      `no mesh in ${paths(dir).root} (${CONFIG_FILE} missing): start one with \`trustmesh up --dir ${dir}\`, or pass --dir of a running mesh, or --nats URL --mesh NAME`,
    );
  }
  return config;
}

export async function writeConfig(dir: string, config: MeshConfig): Promise<void> {
  await writeFileAtomic(paths(dir).config, `${JSON.stringify(config, null, 2)}\n`, 0o644);
}

/** A key file of the mesh directory, created (0600) on first use. */
export async function ensureKey(dir: string, file: string): Promise<AgentKey> {
  const path = join(paths(dir).root, file);
  if (await exists(path)) return loadKey(path);
  const key = generateKey();
  await saveKeyFile(path, key);
  return key;
}

export async function loadKey(path: string): Promise<AgentKey> {
  try {
    return await loadKeyFile(path);
  } catch (cause) {
    throw failure(`cannot load the key file ${path}: ${(cause as Error).message}`, cause);
  }
}

export const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
}

export function checkMeshName(mesh: string): string {
  try {
    assertMeshName(mesh);
  } catch (cause) {
    throw new CliError(EXIT.usage, `invalid mesh name ${JSON.stringify(mesh)}: ${(cause as Error).message}`);
  }
  return mesh;
}
