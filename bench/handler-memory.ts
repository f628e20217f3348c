/**
 * Handler memory under a request flood (issue 6): N requests of about 1 MiB each
 * to a handler that never finishes on its own. Before bounded work, 600 of them put
 * 330 handlers in flight and used 900 MB of RSS. Not a test: it prints numbers.
 *
 *   node --expose-gc --import tsx bench/handler-memory.ts [--requests 600] [--json]
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { joinMesh, RemoteError } from '@trustmesh/client';
import { startNatsServer } from '@trustmesh/embedded-nats';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '600' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    requester: { type: 'boolean', default: false },
  },
});
if (values.requester) {
  // The requester, in its own process so that its frames do not count in the receiver's memory.
  process.once('message', async ({ url, mesh, to, n }: { url: string; mesh: string; to: string; n: number }) => {
    const alice = await joinMesh({ mesh, name: 'alice', servers: url });
    const payload = randomBytes(1_000_000);
    const outcomes = await Promise.all(
      Array.from({ length: n }, async () => {
        try {
          return await alice.request(to, 'slow', payload, { timeoutMs: 60_000 });
        } catch (err) {
          return err instanceof RemoteError
            ? err.remoteCode
            : err instanceof Error
              ? ((err as { code?: string }).code ?? err.message)
              : 'error';
        }
      }),
    );
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[String(o)] = (counts[String(o)] ?? 0) + 1;
    process.send?.(counts);
    await alice.leave();
    process.exit(0);
  });
} else {
  await main();
}

async function main(): Promise<void> {
  if (values.help) {
    console.log('Usage: node --expose-gc --import tsx bench/handler-memory.ts [--requests N] [--json]');
    process.exit(0);
  }
  const n = Number(values.requests);
  const gc = () => (globalThis as { gc?: () => void }).gc?.();
  const mib = (b: number) => Math.round(b / 1024 / 1024);

  const server = await startNatsServer({ maxPayload: 4 * 1024 * 1024 });
  try {
    const mesh = `mem${randomBytes(4).toString('hex')}`;
    const bob = await joinMesh({ mesh, name: 'bob', servers: server.url });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let peakInFlight = 0;
    bob.handle('slow', async () => {
      peakInFlight = Math.max(peakInFlight, bob.stats().inFlight);
      await gate;
      return 'ok';
    });
    gc();
    const rss0 = process.memoryUsage().rss;
    let peakRss = rss0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 20);
    const child = fork(fileURLToPath(import.meta.url), ['--requester'], { execArgv: ['--import', 'tsx'] });
    const counts = new Promise<Record<string, number>>((resolve) => child.once('message', (m: Record<string, number>) => resolve(m)));
    child.send({ url: server.url, mesh, to: bob.did, n });
    const t0 = Date.now();
    while (bob.stats().inFlight + bob.stats().queued < Math.min(n, 80) && Date.now() - t0 < 30_000)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 2_000)); // let the rest arrive and be answered busy
    const held = { inFlight: bob.stats().inFlight, queued: bob.stats().queued };
    release();
    const outcome = await counts;
    clearInterval(sampler);
    const served = outcome.ok ?? 0;
    const busy = outcome.busy ?? 0;
    const result = {
      requests: n,
      payloadBytes: 1_000_000,
      peakInFlight,
      held,
      outcomes: outcome,
      rssStartMiB: mib(rss0),
      rssPeakMiB: mib(peakRss),
      rssGrowthMiB: mib(peakRss - rss0),
    };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(
        `${n} requests of 1.0 MB to a handler that waits: at most ${peakInFlight} in flight (+${held.queued} queued), ${served} served, ${busy} answered busy; all outcomes ${JSON.stringify(outcome)}`,
      );
      console.log(
        `  receiver RSS ${result.rssStartMiB} MiB -> peak ${result.rssPeakMiB} MiB (+${result.rssGrowthMiB} MiB); the requester runs in its own process`,
      );
    }
    await bob.leave();
  } finally {
    await server.stop();
  }
}
