/**
 * Two agents on a private nats-server exchange signed requests; the receiver
 * prints what it verified, and three tampered frames show what it refuses.
 *
 *   npx -y pnpm@10 demo            (add -- --json for a machine-readable summary)
 */
import { connect } from '@nats-io/transport-node';
import { joinMesh, type Agent, type RejectionEvent } from '@trustmesh/client';
import { NatsServerError, startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { subjects } from '@trustmesh/protocol';

const json = process.argv.includes('--json');
const say = (line: string) => {
  if (!json) console.log(line);
};
const short = (did: string) => `${did.slice(0, 16)}…${did.slice(-6)}`;
const names = new Map<string, string>();
/** Subjects carry full agent ids; show them as <name> to keep lines readable. */
const pretty = (text: string) => text.replace(/z6Mk[1-9A-HJ-NP-Za-km-z]+/g, (id) => (names.has(id) ? `<${names.get(id)}>` : id));

async function main(): Promise<number> {
  let server: NatsServerHandle;
  try {
    server = await startNatsServer();
  } catch (err) {
    if (err instanceof NatsServerError) {
      console.error(`error [${err.code}]: ${err.message}`);
      return 3;
    }
    throw err;
  }
  const agents: Agent[] = [];
  try {
    say(`nats-server started on ${server.url} (private, JetStream store in ${server.storeDir})`);
    const mesh = 'hello';
    const bob = await joinMesh({ mesh, name: 'bob', servers: server.url, version: '1.0.0', capabilities: ['math.add', 'greet'] });
    const alice = await joinMesh({ mesh, name: 'alice', servers: server.url, version: '1.0.0', lineage: { model: 'demo-model-1' } });
    agents.push(bob, alice);
    names.set(bob.agentId, 'bob').set(alice.agentId, 'alice');
    say(`alice joined as ${alice.did}`);
    say(`bob   joined as ${bob.did}`);

    bob.on('accepted', (frame) => {
      if (frame.typ.startsWith('tm.')) return;
      say(
        `  bob verified: ${frame.typ} from ${short(frame.iss)} on ${pretty(frame.sub)} (Ed25519 ok, issuer = signing key, subject bound, iat ${Date.now() - frame.iat} ms old, fresh id)`,
      );
    });
    const refused: RejectionEvent[] = [];
    bob.on('rejected', (event) => {
      refused.push(event);
      say(`  bob REFUSED a frame on ${pretty(event.subject)}: ${event.reason} (${pretty(event.detail)})`);
    });
    bob.handle('greet', (data, ctx) => `hello ${String((data as { name?: unknown })?.name)}, your DID is ${short(ctx.from)}`);
    bob.handle('math.add', (data) => (data as number[]).reduce((sum, n) => sum + n, 0));

    await waitFor(() => alice.peers().some((p) => p.did === bob.did), 2000);
    say(
      `alice sees peers: ${alice
        .peers()
        .map((p) => `${p.name}@${p.version} [${p.capabilities.join(', ')}]`)
        .join('; ')}`,
    );

    say('\nsigned requests:');
    const greeting = await alice.request<string>(bob.did, 'greet', { name: 'alice' });
    say(`  alice got a verified reply: "${greeting}"`);
    const sum = await alice.request<number>(bob.did, 'math.add', [1, 2, 3, 4]);
    say(`  alice got a verified reply: 1+2+3+4 = ${sum}`);

    say('\ntampered frames (an eavesdropper re-sends what alice signed):');
    const spy = await connect({ servers: server.url });
    const captured = new Promise<Uint8Array>((resolve) => {
      spy.subscribe(subjects.request(mesh, bob.agentId, alice.agentId), { max: 1, callback: (_e, msg) => resolve(msg.data) });
    });
    await spy.flush();
    await alice.request(bob.did, 'math.add', [40, 2]);
    const frame = await captured;
    const original = subjects.request(mesh, bob.agentId, alice.agentId);
    spy.publish(original, frame); // exact replay
    spy.publish(subjects.message(mesh, bob.agentId, alice.agentId), frame); // re-routed onto another subject
    const flipped = Uint8Array.from(frame);
    flipped[flipped.length - 1]! ^= 0x01;
    spy.publish(original, flipped); // one bit changed
    await spy.flush();
    await waitFor(() => refused.length >= 3, 2000);
    await spy.close();

    const stats = bob.stats();
    const rejected = Object.fromEntries(Object.entries(stats.rejected).filter(([, n]) => n > 0));
    say(`\nbob: ${stats.received} frames received, ${stats.accepted} accepted, ${stats.rejectedTotal} refused ${JSON.stringify(rejected)}`);
    const ok =
      greeting.startsWith('hello alice') &&
      sum === 10 &&
      rejected.replay === 1 &&
      rejected.subject_mismatch === 1 &&
      rejected.bad_signature === 1;
    if (json) {
      console.log(JSON.stringify({ ok, server: server.url, alice: alice.did, bob: bob.did, greeting, sum, bob_stats: stats }, null, 2));
    } else {
      say(ok ? '\nall signed traffic verified; every tampered frame refused with its reason.' : '\nUNEXPECTED: see above');
    }
    return ok ? 0 : 1;
  } finally {
    for (const agent of agents) await agent.leave().catch(() => undefined);
    await server.stop();
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('hello example failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
