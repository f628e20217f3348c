import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireNatsServer } from './binary.ts';
import { type ClusterConfig, renderConfig } from './config.ts';
import { NatsServerError } from './errors.ts';
import { readPortsFile, waitForInfo } from './ready.ts';

/** Options of {@link startNatsServer}; every field is optional. */
export interface NatsServerInit {
  /** Enable JetStream. Default `true`. */
  jetstream?: boolean;
  /** JetStream store directory. Default: a fresh temp directory, removed by `stop()`. A directory you pass is kept. */
  storeDir?: string;
  /** The nats-server to run (a path, or a name looked up on `$PATH`). Default: {@link findNatsServer}. */
  binary?: string;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /**
   * A fixed client port, e.g. to restart a server where its clients reconnect
   * (pass the old handle's `port` and `storeDir`). Default: a free port the
   * server picks. A port in use makes the start fail with `nats_server_start_failed`.
   */
  port?: number;
  /** How long to wait for the server to accept clients. Default 10 000 ms. */
  startTimeoutMs?: number;
  /** The server's `max_payload` in bytes. Default: the server's own (1 MiB). */
  maxPayload?: number;
  /** `server_name`; JetStream in a cluster needs a stable one per node. Default: the server's generated id. */
  serverName?: string;
  /** HTTP monitoring port (`/varz`, `/jsz`, `/routez`) on `host`. Default: off. */
  httpPort?: number;
  /** Join a cluster: listen for routes on `cluster.port` and dial `cluster.routes`. See {@link startNatsCluster}. */
  cluster?: ClusterConfig;
  /** nats-server config text appended to the generated config; its keys win. */
  extraConfig?: string;
  /** Receives every line the server logs. */
  log?: (line: string) => void;
}

/** A running nats-server. Stop it with `stop()` or `await using`. */
export interface NatsServerHandle {
  /** Where clients connect, e.g. `nats://127.0.0.1:41234`. */
  readonly url: string;
  /** The port the server picked. */
  readonly port: number;
  /** The server's process id. */
  readonly pid: number;
  /** The JetStream store directory (created even when JetStream is off). */
  readonly storeDir: string;
  /**
   * SIGTERM, wait for exit (SIGKILL after 3 s), then remove the temp
   * directories this handle created. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void>;
  /**
   * SIGKILL at once (a crash: no flush, no goodbye to clients or routes), wait
   * for the exit, then clean up like `stop()`. A `storeDir` you passed is kept,
   * so a server started again on it finds its JetStream state.
   */
  kill(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const STOP_GRACE_MS = 3_000;
const TAIL_LINES = 20;

/**
 * Starts a private nats-server on a free port of 127.0.0.1 and resolves once
 * it answers clients. Throws {@link NatsServerError}: `nats_server_missing`,
 * `nats_server_start_failed` (with the last lines of its output) or
 * `nats_server_timeout`; a failed start leaves no process and no temp files.
 */
export async function startNatsServer(init: NatsServerInit = {}): Promise<NatsServerHandle> {
  validateInit(init);
  const binary = requireNatsServer(init.binary);
  const host = init.host ?? '127.0.0.1';
  const timeoutMs = init.startTimeoutMs ?? 10_000;

  const ownDirs: string[] = [];
  let server: ServerProcess | undefined;
  try {
    const workDir = await mkdtemp(join(tmpdir(), 'trustmesh-nats-'));
    ownDirs.push(workDir);
    const storeDir = init.storeDir ?? (await mkdtemp(join(tmpdir(), 'trustmesh-nats-store-')));
    if (init.storeDir === undefined) ownDirs.push(storeDir);

    const configFile = join(workDir, 'nats-server.conf');
    await writeFile(
      configFile,
      renderConfig({
        host,
        port: init.port,
        portsFileDir: workDir,
        jetstreamStoreDir: init.jetstream === false ? undefined : storeDir,
        maxPayload: init.maxPayload,
        serverName: init.serverName,
        httpPort: init.httpPort,
        cluster: init.cluster,
        extraConfig: init.extraConfig,
      }),
    );

    const child = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = (server = new ServerProcess(child, ownDirs, init.log));
    const port = await proc.whenReady(timeoutMs, async (signal) => {
      const picked = await readPortsFile(workDir, proc.pid, signal);
      await waitForInfo(connectHost(host), picked, signal);
      return picked;
    });

    const stop = () => proc.stop();
    return Object.freeze({
      url: `nats://${urlHost(connectHost(host))}:${port}`,
      port,
      pid: proc.pid,
      storeDir,
      stop,
      kill: () => proc.stop('SIGKILL'),
      [Symbol.asyncDispose]: stop,
    });
  } catch (error) {
    if (server) await server.stop();
    else await Promise.all(ownDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    throw error;
  }
}

function validateInit(init: NatsServerInit): void {
  const invalid = (field: string, constraint: string): never => {
    throw new NatsServerError('invalid_init', `startNatsServer: ${field} must be ${constraint}`);
  };
  const { startTimeoutMs, maxPayload } = init;
  if (startTimeoutMs !== undefined && !(Number.isFinite(startTimeoutMs) && startTimeoutMs > 0))
    invalid('startTimeoutMs', 'a positive number');
  if (maxPayload !== undefined && !(Number.isSafeInteger(maxPayload) && maxPayload > 0)) invalid('maxPayload', 'a positive integer');
  for (const field of ['port', 'httpPort'] as const) {
    const value = init[field];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 65_535)) invalid(field, 'an integer from 1 to 65535');
  }
  if (init.cluster !== undefined) {
    const { name, port } = init.cluster;
    if (!(Number.isInteger(port) && port >= 1 && port <= 65_535)) invalid('cluster.port', 'an integer from 1 to 65535');
    if (!/^[A-Za-z0-9_-]+$/.test(name)) invalid('cluster.name', 'letters, digits, _ or -');
  }
  if (init.serverName !== undefined && !/^[A-Za-z0-9_-]+$/.test(init.serverName)) invalid('serverName', 'letters, digits, _ or -');
  for (const field of ['binary', 'host', 'storeDir'] as const) {
    if (init[field] === '') invalid(field, 'a non-empty string');
  }
}

/** A wildcard listen address is reached through loopback. */
const connectHost = (host: string): string => (host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host);
const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** Servers still running, killed if the Node process exits before stopping them. */
const running = new Set<ServerProcess>();
let exitHookInstalled = false;

const killAllOnExit = () => {
  for (const server of running) server.killNow();
};

/** The child process, its output, its temp dirs; the handle's internals. */
class ServerProcess {
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #ownDirs: readonly string[];
  readonly #tail: string[] = [];
  readonly #exited: Promise<string>;
  #alive: boolean;
  #stopping: Promise<void> | undefined;

  constructor(child: ChildProcess, ownDirs: readonly string[], log?: (line: string) => void) {
    this.#child = child;
    this.#ownDirs = ownDirs;
    this.pid = child.pid ?? -1;
    this.#alive = child.pid !== undefined;
    this.#exited = new Promise((resolve) => {
      // 'close' rather than 'exit': by then its output has been read to the end.
      child.once('close', (code, signal) => resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`));
      child.once('error', (error) => {
        if (child.pid === undefined) resolve(`could not be spawned: ${error.message}`);
      });
    });
    void this.#exited.then(() => {
      this.#alive = false;
      running.delete(this);
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.#tail.push(line);
        if (this.#tail.length > TAIL_LINES) this.#tail.shift();
        log?.(line);
      });
    }
    if (this.#alive) {
      running.add(this);
      if (!exitHookInstalled) {
        process.on('exit', killAllOnExit);
        exitHookInstalled = true;
      }
    }
  }

  /** Runs `probe` until it resolves, the process exits, or `timeoutMs` passes. */
  async whenReady<T>(timeoutMs: number, probe: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    const { signal } = controller;
    const exited = this.#exited.then((how): never => {
      throw new NatsServerError('nats_server_start_failed', `nats-server ${how} before it was ready.${this.#lastLines()}`);
    });
    const timedOut = sleep(timeoutMs, undefined, { signal }).then((): never => {
      throw new NatsServerError('nats_server_timeout', `nats-server was not ready after ${timeoutMs} ms.${this.#lastLines()}`);
    });
    try {
      return await Promise.race([probe(signal), exited, timedOut]);
    } finally {
      controller.abort();
    }
  }

  stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    this.#stopping ??= this.#stop(signal);
    return this.#stopping;
  }

  async #stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    if (this.#alive) {
      this.#child.kill(signal);
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.#exited;
      clearTimeout(timer);
    }
    running.delete(this);
    await Promise.all(this.#ownDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }

  /** Synchronous last resort for process exit: SIGKILL and remove the temp dirs. */
  killNow(): void {
    if (this.#alive) this.#child.kill('SIGKILL');
    for (const dir of this.#ownDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort: the process is exiting
      }
    }
  }

  #lastLines(): string {
    return this.#tail.length === 0 ? ' It printed nothing.' : ` Last lines of its output:\n  ${this.#tail.join('\n  ')}`;
  }
}
