/**
 * A mesh agent in its own process, for test/cluster.spec.ts: the test stops it
 * with SIGSTOP (a stalled consumer that reads nothing) and resumes it with
 * SIGCONT. Usage: tsx test/cluster-stalled-agent.ts <mesh> <url,url,...>.
 * Prints its DID once joined; answers `count` on stdin with one JSON line:
 * notes received, connection status events seen.
 */
import { createInterface } from 'node:readline';
import { connect } from '@nats-io/transport-node';
import { joinMesh } from '@trustmesh/client';

const [mesh, urls] = process.argv.slice(2);
if (!mesh || !urls) throw new Error('usage: cluster-stalled-agent.ts <mesh> <url,url,...>');
const servers = urls.split(',');
const nc = await connect({ servers, noRandomize: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'stalled' });
const events: Record<string, number> = {};
void (async () => {
  for await (const s of nc.status()) events[s.type] = (events[s.type] ?? 0) + 1;
})();
const agent = await joinMesh({ mesh, name: 'stalled', connection: nc });
let received = 0;
agent.handle('note', () => {
  received++;
});
process.stdout.write(`${agent.did}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'count') process.stdout.write(`${JSON.stringify({ received, events, server: nc.info?.server_name })}\n`);
  if (line.trim() === 'quit')
    void agent
      .leave()
      .then(() => nc.close())
      .then(() => process.exit(0));
});
