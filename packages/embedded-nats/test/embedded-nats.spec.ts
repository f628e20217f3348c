import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NatsServerError,
  findNatsServer,
  natsServerVersion,
  startNatsServer,
  type NatsServerHandle,
  type NatsServerInit,
} from '../src/index.ts';

const SHARED_NATS_PORT = 4222;

const servers: NatsServerHandle[] = [];
const connections: NatsConnection[] = [];
const tempDirs: string[] = [];

const start = async (init?: NatsServerInit): Promise<NatsServerHandle> => {
  const server = await startNatsServer(init);
  servers.push(server);
  return server;
};

const dial = async (server: NatsServerHandle): Promise<NatsConnection> => {
  const nc = await connect({ servers: server.url });
  connections.push(nc);
  return nc;
};

const tempDir = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), 'embedded-nats-test-'));
  tempDirs.push(dir);
  return dir;
};

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const startError = (init: NatsServerInit): Promise<NatsServerError> =>
  startNatsServer(init).then(
    (server) => {
      servers.push(server);
      throw new Error('startNatsServer resolved, expected a NatsServerError');
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(NatsServerError);
      return error as NatsServerError;
    },
  );

afterEach(async () => {
  await Promise.all(connections.splice(0).map((nc) => nc.close()));
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('embedded-nats', () => {
  it('start - serves a pub/sub round trip on 127.0.0.1', async () => {
    const server = await start();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);

    const nc = await dial(server);
    const sub = nc.subscribe('greeting', { max: 1 });
    nc.publish('greeting', 'hello');
    const received: string[] = [];
    for await (const msg of sub) received.push(msg.string());
    expect(received).toEqual(['hello']);
  });

  it('jetstream - is enabled by default', async () => {
    const nc = await dial(await start());
    const reply = await nc.request('$JS.API.INFO', '', { timeout: 5_000 });
    const info = reply.json<{ error?: unknown; type?: string }>();
    expect(info.error).toBeUndefined();
    expect(info.type).toBe('io.nats.jetstream.api.v1.account_info_response');
  });

  it('jetstream - is off when jetstream: false', async () => {
    const nc = await dial(await start({ jetstream: false }));
    await expect(nc.request('$JS.API.INFO', '', { timeout: 2_000 })).rejects.toThrow();
  });

  it('start - two servers at once get different ports, neither the shared 4222', async () => {
    const [a, b] = await Promise.all([start(), start()]);
    expect(a!.port).not.toBe(b!.port);
    expect([a!.port, b!.port]).not.toContain(SHARED_NATS_PORT);
    expect(a!.storeDir).not.toBe(b!.storeDir);
    await Promise.all([dial(a!), dial(b!)]);
  });

  it('start - applies maxPayload and extraConfig', async () => {
    const server = await start({ maxPayload: 4096, extraConfig: 'server_name: "embedded-test"' });
    const nc = await dial(server);
    expect(nc.info?.max_payload).toBe(4096);
    expect(nc.info?.server_name).toBe('embedded-test');
  });

  it('start - passes every server log line to log', async () => {
    const lines: string[] = [];
    await start({ log: (line) => lines.push(line) });
    expect(lines.some((line) => line.includes('Server is ready'))).toBe(true);
  });

  it('stop - ends the process and removes the temp store dir', async () => {
    const server = await startNatsServer();
    expect(await exists(server.storeDir)).toBe(true);
    expect(isRunning(server.pid)).toBe(true);

    await server.stop();
    expect(() => process.kill(server.pid, 0)).toThrow();
    expect(await exists(server.storeDir)).toBe(false);
  });

  it('stop - is idempotent', async () => {
    const server = await startNatsServer();
    await Promise.all([server.stop(), server.stop()]);
    await server.stop();
    expect(isRunning(server.pid)).toBe(false);
  });

  it('stop - keeps a storeDir the caller passed, with the JetStream data in it', async () => {
    const storeDir = await tempDir();
    const server = await startNatsServer({ storeDir });
    expect(server.storeDir).toBe(storeDir);
    await server.stop();
    expect(await exists(join(storeDir, 'jetstream'))).toBe(true);
  });

  it('port - a restart on the same port and store keeps JetStream state, and the client reconnects', async () => {
    const storeDir = await tempDir();
    const first = await start({ storeDir });
    const nc = await connect({ servers: first.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    connections.push(nc);
    const created = await nc.request('$JS.API.STREAM.CREATE.keep', JSON.stringify({ name: 'keep', subjects: ['keep.>'], storage: 'file' }));
    expect(JSON.parse(created.string()).error).toBeUndefined();
    const reconnected = (async () => {
      for await (const status of nc.status()) if (status.type === 'reconnect') return status.server;
      return undefined;
    })();
    await first.stop();

    const second = await start({ port: first.port, storeDir });
    expect(second.port).toBe(first.port);
    expect(await reconnected).toContain(String(first.port));
    const info = await nc.request('$JS.API.STREAM.INFO.keep', undefined, { timeout: 5_000 });
    expect(JSON.parse(info.string()).config.name).toBe('keep');
  });

  it('port - a port in use fails with nats_server_start_failed', async () => {
    const running = await start();
    const error = await startError({ port: running.port });
    expect(error.code).toBe('nats_server_start_failed');
  });

  it('stop - await using stops the server at the end of the block', async () => {
    let pid: number;
    {
      await using server = await startNatsServer();
      pid = server.pid;
      expect(isRunning(pid)).toBe(true);
    }
    expect(isRunning(pid)).toBe(false);
  });

  it('errors - a missing binary gives nats_server_missing with the install hint', async () => {
    const error = await startError({ binary: '/nonexistent/nats-server' });
    expect(error.code).toBe('nats_server_missing');
    expect(error.message).toContain('apt-get install nats-server');
    expect(error.message).toContain('NATS_SERVER_BIN');
  });

  it('errors - a server that exits early gives nats_server_start_failed with its last output', async () => {
    const error = await startError({ extraConfig: 'this is not { valid nats config' });
    expect(error.code).toBe('nats_server_start_failed');
    expect(error.message).toMatch(/exited with code \d+ before it was ready/);
    expect(error.message).toContain('Last lines of its output');
  });

  it('errors - a server that never answers gives nats_server_timeout and is killed', async () => {
    const dir = await tempDir();
    const pidFile = join(dir, 'pid');
    const fake = join(dir, 'fake-nats-server');
    await writeFile(fake, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 60\n`);
    await chmod(fake, 0o755);

    const error = await startError({ binary: fake, startTimeoutMs: 300 });
    expect(error.code).toBe('nats_server_timeout');
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('errors - rejects an out-of-range option naming the field', async () => {
    const error = await startError({ startTimeoutMs: 0 });
    expect(error.code).toBe('invalid_init');
    expect(error.message).toContain('startTimeoutMs');
    expect((await startError({ port: 70_000 })).message).toContain('port');
  });

  it('findNatsServer - honours NATS_SERVER_BIN and reports a wrong one as missing', async () => {
    const binary = findNatsServer();
    expect(binary).toBeDefined();
    expect(findNatsServer({ NATS_SERVER_BIN: binary! })).toBe(binary);
    expect(findNatsServer({ NATS_SERVER_BIN: '/nonexistent/nats-server', PATH: process.env.PATH })).toBeUndefined();
  });

  it('natsServerVersion - reports a semantic version', async () => {
    expect(await natsServerVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
