import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 20;

/**
 * The client port nats-server picked, read from the ports file it writes to
 * `dir` once it listens (`<binary name>_<pid>.ports`, JSON with a `nats` list
 * of URLs). Polls until the file is there and complete, or `signal` aborts.
 */
export async function readPortsFile(dir: string, pid: number, signal: AbortSignal): Promise<number> {
  for (;;) {
    signal.throwIfAborted();
    const name = (await readdir(dir)).find((entry) => entry.endsWith(`_${pid}.ports`));
    if (name !== undefined) {
      const port = parsePorts(await readFile(join(dir, name), 'utf8').catch(() => ''));
      if (port !== undefined) return port;
    }
    await sleep(POLL_MS, undefined, { signal });
  }
}

const parsePorts = (text: string): number | undefined => {
  try {
    const url: unknown = (JSON.parse(text) as { nats?: unknown[] }).nats?.[0];
    const port = typeof url === 'string' ? Number(new URL(url).port) : NaN;
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined; // not written completely yet
  }
};

/** Resolves once a TCP connection to host:port gets the server's `INFO` line; retries until `signal` aborts. */
export async function waitForInfo(host: string, port: number, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    if (await receivesInfo(host, port, signal)) return;
    await sleep(POLL_MS, undefined, { signal });
  }
}

const receivesInfo = (host: string, port: number, signal: AbortSignal): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host, port });
    let received = '';
    const done = (ok: boolean) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(ok);
    };
    const onAbort = () => done(false);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\r\n')) done(received.startsWith('INFO '));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
