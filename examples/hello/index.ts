/**
 * Two agents on a private nats-server exchange signed requests; the receiver
 * prints what it verified, and three tampered frames show what it refuses.
 *
 *   npx -y pnpm@10 hello               (add --json for a machine-readable summary)
 *   npx -y pnpm@10 hello --secure      (secure mode: agents admitted by their DID; ./secure.ts)
 *   npx tsx examples/hello/index.ts [--secure] [--json]
 *
 * In secure mode nats-server itself refuses the eavesdropper and the tampered
 * frames on alice's subjects; what an admitted agent sends on its own subjects
 * reaches bob, and his rejections name it as an authenticated publisher.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { joinMesh, type Agent, type AgentInit, type RejectionEvent } from '@trustmesh/client';
import { NatsServerError, startNatsServer, type NatsServerHandle } from '@trustmesh/embedded-nats';
import { signFrame, subjects } from '@trustmesh/protocol';
import type { SecureMesh } from './secure.ts';

const json = process.argv.includes('--json');
const secureMode = process.argv.includes('--secure');
const say = (line: string) => {
  if (!json) console.log(line);
};
const short = (did: string) => `${did.slice(0, 16)}…${did.slice(-6)}`;
const names = new Map<string, string>();
/** Subjects carry full agent ids; show them as <name> to keep lines readable. */
const pretty = (text: string) => text.replace(/z6Mk[1-9A-HJ-NP-Za-km-z]+/g, (id) => (names.has(id) ? `<${names.get(id)}>` : id));

async function main(): Promise<number> {
  const mesh = 'hello';
  let server: NatsServerHandle;
  let secure: SecureMesh | undefined;
  try {
    if (secureMode) {
      const { startSecureMesh } = await import('./secure.ts');
      secure = await startSecureMesh(mesh);
      server = secure.server;
    } else {
      server = await startNatsServer();
    }
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
    if (secure !== undefined) {
      say(`secure mode: mesh authority in ${secure.dir} (operator, account and system account as nkeys and JWTs, seeds 0600)`);
      say('  the operator provisioned the presence registry and admits each agent by its DID before it joins');
    }
    const join = (init: Omit<AgentInit, 'mesh' | 'servers'>) =>
      secure !== undefined ? secure.join(init) : joinMesh({ ...init, mesh, servers: server.url });
    const bob = await join({ name: 'bob', version: '1.0.0', capabilities: ['math.add', 'greet'] });
    const alice = await join({ name: 'alice', version: '1.0.0', lineage: { model: 'demo-model-1' } });
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
      const from = event.publisherAuthenticated ? `; published by ${pretty(event.publisher ?? '?')}, authenticated by the server` : '';
      say(`  bob REFUSED a frame on ${pretty(event.subject)}: ${event.reason} (${pretty(event.detail)}${from})`);
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

    if (secure !== undefined) return await secureTampering(secure, mesh, alice, bob, refused, { greeting, sum });
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
    const rejected = Object.fromEntries(Object.entries(stats.rejected).filter(([, n]) => (n ?? 0) > 0));
    say(`\nbob: ${stats.received} frames received, ${stats.accepted} accepted, ${stats.rejectedTotal} refused ${JSON.stringify(rejected)}`);
    const ok =
      greeting.startsWith('hello alice') &&
      sum === 10 &&
      rejected.replay === 1 &&
      rejected.subject_mismatch === 1 &&
      rejected.bad_signature === 1;
    if (json) {
      console.log(
        JSON.stringify({ ok, mode: 'open', server: server.url, alice: alice.did, bob: bob.did, greeting, sum, bob_stats: stats }, null, 2),
      );
    } else {
      say(ok ? '\nall signed traffic verified; every tampered frame refused with its reason.' : '\nUNEXPECTED: see above');
    }
    return ok ? 0 : 1;
  } finally {
    for (const agent of agents) await agent.leave().catch(() => undefined);
    await (secure?.stop() ?? server.stop());
  }
}

/**
 * Secure mode's version of the tampering: a connection without credentials is
 * refused; eve, an admitted agent, may neither read alice's subjects nor publish
 * on them; what eve signs badly on her own subject reaches bob, who names her.
 */
async function secureTampering(
  secure: SecureMesh,
  mesh: string,
  alice: Agent,
  bob: Agent,
  refused: RejectionEvent[],
  replies: { greeting: string; sum: number },
): Promise<number> {
  const { watchPermissionErrors } = await import('@trustmesh/secure');
  say('\nan outsider, and an admitted agent (eve) trying what the eavesdropper does in open mode:');
  const outsider = await connect({ servers: secure.server.url, reconnect: false }).then(
    async (nc) => {
      await nc.close();
      return undefined;
    },
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  say(`  a connection without credentials: ${outsider === undefined ? 'ACCEPTED' : `refused (${outsider})`}`);

  const eve = await secure.connectAdmitted('eve');
  names.set(eve.key.agentId, 'eve');
  const denied: Array<{ operation: string; subject: string }> = [];
  watchPermissionErrors(
    eve.nc,
    (error) => {
      denied.push({ operation: error.operation, subject: error.subject });
      say(`  nats-server REFUSED eve's ${error.operation} on ${pretty(error.subject)}: ${pretty(error.reason)}`);
    },
    { mesh, agentId: eve.key.agentId, role: 'agent' },
  );
  const original = subjects.request(mesh, bob.agentId, alice.agentId);
  eve.nc.subscribe(original);
  await eve.nc.flush();
  await waitFor(() => denied.length >= 1, 2000);

  // A frame alice signed, as a network tap sees it (no TLS yet); the operator's connection stands in for the tap.
  const frame = await tap(secure.operator, original, () => alice.request(bob.did, 'math.add', [40, 2]));
  const flipped = Uint8Array.from(frame);
  flipped[flipped.length - 1]! ^= 0x01;
  eve.nc.publish(original, frame); // exact replay
  eve.nc.publish(subjects.message(mesh, bob.agentId, alice.agentId), frame); // re-routed onto another subject
  eve.nc.publish(original, flipped); // one bit changed
  await eve.nc.flush();
  await waitFor(() => denied.length >= 4, 2000);

  // On her own subject eve's frames do reach bob: one with a broken signature is refused, and blamed on her.
  const own = subjects.request(mesh, bob.agentId, eve.key.agentId);
  const bad = signFrame(eve.key, { sub: own, typ: 'math.add', aud: bob.did, data: [6, 6, 6] }).bytes;
  bad[bad.length - 1]! ^= 0x01;
  eve.nc.publish(own, bad);
  await eve.nc.flush();
  await waitFor(() => refused.length >= 1, 2000);

  const stats = bob.stats();
  const rejected = Object.fromEntries(Object.entries(stats.rejected).filter(([, n]) => (n ?? 0) > 0));
  say(`\nbob: ${stats.received} frames received, ${stats.accepted} accepted, ${stats.rejectedTotal} refused ${JSON.stringify(rejected)}`);
  const blamed = refused[0];
  const ok =
    replies.greeting.startsWith('hello alice') &&
    replies.sum === 10 &&
    outsider !== undefined &&
    denied.length === 4 &&
    denied.every((d) => d.subject.endsWith(alice.agentId)) &&
    refused.length === 1 &&
    blamed?.reason === 'bad_signature' &&
    blamed.publisher === eve.key.did &&
    blamed.publisherAuthenticated;
  if (json) {
    const summary = { ok, mode: 'secure', server: secure.server.url, alice: alice.did, bob: bob.did, eve: eve.key.did, ...replies };
    console.log(JSON.stringify({ ...summary, outsider_refused: outsider, refused_by_server: denied, bob_stats: stats, blamed }, null, 2));
  } else {
    say(
      ok
        ? "\nall signed traffic verified; the server refused the outsider, the eavesdropping and the frames on alice's subjects; bob named eve for hers."
        : '\nUNEXPECTED: see above',
    );
  }
  return ok ? 0 : 1;
}

/** Runs `action` and returns the first message it causes on `subject`, as a connection allowed to read it sees it. */
async function tap(nc: NatsConnection, subject: string, action: () => Promise<unknown>): Promise<Uint8Array> {
  const captured = new Promise<Uint8Array>((resolve) => {
    nc.subscribe(subject, { max: 1, callback: (_e, msg) => resolve(msg.data) });
  });
  await nc.flush();
  await action();
  return captured;
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
