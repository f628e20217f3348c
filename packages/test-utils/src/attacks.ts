/**
 * The scene of the attack suites (test/attacks.spec.ts, test/attacks-secure.spec.ts):
 * alice and bob joined on a real nats-server, and mallory, an attacker with a raw
 * connection and a key of her own.
 *
 * - Open mode (`withNats()`): mallory's connection is anonymous; she can read every
 *   subject and publish any bytes on any subject.
 * - Secure mode (`withSecureNats()`): mallory is an admitted agent. The server lets her
 *   publish only on her own subjects and read only her own inbox, so a frame she
 *   publishes on another agent's subject is refused by the server (a permission
 *   violation on her connection) and never reaches its recipient. The wire is read
 *   through an operator's connection instead (no TLS yet: a network eavesdropper still
 *   sees every frame, docs/security.md).
 *
 * `expectRejected` says what each frame must come to in either mode, so one suite body
 * runs against both fixtures.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { joinMesh, type Agent, type AgentInit, type MessageContext, type RejectionEvent } from '@trustmesh/client';
import { generateKey, subjects, type AgentKey, type RejectReason } from '@trustmesh/protocol';
import { inboxPrefix, meshResources, watchPermissionErrors, type PermissionDeniedError } from '@trustmesh/secure';
import { afterEach, beforeAll, expect } from 'vitest';
import { capture, type Capture, type CapturedMessage } from './capture.ts';
import { uniqueMesh, withNats } from './nats.ts';
import { withSecureNats } from './secure.ts';
import { sleep, waitFor } from './wait.ts';

export type AttackMode = 'open' | 'secure';

/** A real nats-server for the attack suites, in one mode. Registers its hooks where it is called. */
export interface AttackFixture {
  readonly mode: AttackMode;
  /** The mesh of a new scene: a fresh one in open mode, the authority's in secure mode (one mesh per authority). */
  mesh(): string;
  /** Joins an agent (admitted with its key first in secure mode); it leaves after the test. */
  join(init: Omit<AgentInit, 'servers' | 'credentials'>): Promise<Agent>;
  /** The attacker's raw connection, authenticated with `key` in secure mode; closed after the test. */
  connectAttacker(key: AgentKey): Promise<NatsConnection>;
  /** A connection that may read every subject of `mesh`: the attacker's own in open mode, an operator's in secure mode. */
  wiretap(attacker: NatsConnection): Promise<NatsConnection>;
}

export function attackFixture(mode: AttackMode): AttackFixture {
  if (mode === 'open') {
    const nats = withNats();
    return {
      mode,
      mesh: () => uniqueMesh(),
      join: (init) => nats.join(init),
      connectAttacker: () => nats.connect({ name: 'mallory' }),
      wiretap: async (attacker) => attacker,
    };
  }
  const fx = withSecureNats();
  beforeAll(async () => {
    // As `trustmesh up` does: the operator provisions the presence registry (hardened), agents only read and write their record.
    await fx.createBucket(meshResources(fx.mesh).presenceBucket, { history: 1 });
  });
  const joined: Agent[] = [];
  afterEach(async () => {
    await Promise.all(joined.splice(0).map((agent) => agent.leave().catch(() => undefined)));
  });
  return {
    mode,
    mesh: () => fx.mesh,
    async join(init) {
      const key = init.key ?? generateKey();
      const { jwt } = await fx.admit(key, { name: init.name });
      const agent = await joinMesh({ ...init, key, servers: fx.url, credentials: { jwt } });
      joined.push(agent);
      return agent;
    },
    async connectAttacker(key) {
      const { jwt } = await fx.admit(key, { name: 'mallory' });
      return fx.connectAs(key, jwt, { name: 'mallory' });
    },
    async wiretap() {
      return (await fx.admitted('operator')).nc;
    },
  };
}

export interface Scene {
  mode: AttackMode;
  /** Secure mode: the server authenticates publishers and enforces the permission table. */
  secure: boolean;
  mesh: string;
  alice: Agent;
  bob: Agent;
  /** The attacker's own key: valid, but nobody's friend (in secure mode admitted as an agent). */
  mallory: AgentKey;
  /** The attacker's raw connection. */
  attacker: NatsConnection;
  /** Prefix of reply subjects the attacker can read: `_INBOX` in open mode, its private inbox in secure mode. */
  attackerInbox: string;
  /** Every call of bob's 'echo' handler. */
  bobCalls: MessageContext[];
  /** Every call of alice's 'echo' handler. */
  aliceCalls: MessageContext[];
  rejectedAt: Map<Agent, RejectionEvent[]>;
  /** A raw subscriber on every subject of the mesh (see `AttackFixture.wiretap`). */
  wire: Capture;
  /** Every permission violation the server reported to the attacker's connection (secure mode). */
  denied: PermissionDeniedError[];
}

/** alice and bob, each with an 'echo' handler, seeing each other; mallory connected and the wire tapped. */
export async function scene(fx: AttackFixture, bobInit: Partial<AgentInit> = {}): Promise<Scene> {
  const mesh = fx.mesh();
  const mallory = generateKey();
  const attacker = await fx.connectAttacker(mallory);
  const denied: PermissionDeniedError[] = [];
  if (fx.mode === 'secure')
    watchPermissionErrors(attacker, (error) => denied.push(error), { mesh, agentId: mallory.agentId, role: 'agent' });
  const wire = await capture(await fx.wiretap(attacker), subjects.all(mesh));
  const alice = await fx.join({ mesh, name: 'alice' });
  const bob = await fx.join({ mesh, name: 'bob', ...bobInit });
  const bobCalls: MessageContext[] = [];
  const aliceCalls: MessageContext[] = [];
  bob.handle('echo', (data, ctx) => {
    bobCalls.push(ctx);
    return data;
  });
  alice.handle('echo', (data, ctx) => {
    aliceCalls.push(ctx);
    return data;
  });
  const rejectedAt = new Map<Agent, RejectionEvent[]>();
  for (const agent of [alice, bob]) {
    const events: RejectionEvent[] = [];
    agent.on('rejected', (event) => events.push(event));
    rejectedAt.set(agent, events);
  }
  // Presence settles first, so the only traffic during an attack is the attack.
  // Counts include each agent's own announcement coming back: alice gets her join and
  // bob's; bob gets his own (he learnt alice from the presence registry).
  await waitFor(
    () => alice.peers().length === 1 && bob.peers().length === 1 && alice.stats().received >= 2 && bob.stats().received >= 1,
    'alice and bob to see each other, and every presence frame to arrive',
  );
  return {
    mode: fx.mode,
    secure: fx.mode === 'secure',
    mesh,
    alice,
    bob,
    mallory,
    attacker,
    attackerInbox: fx.mode === 'secure' ? inboxPrefix(mesh, mallory.agentId) : '_INBOX',
    bobCalls,
    aliceCalls,
    rejectedAt,
    wire,
    denied,
  };
}

/**
 * Whether nats-server lets the attacker publish on `subject`. Open mode: anywhere.
 * Secure mode: only under its own mesh, on its own subjects (the last token is its
 * agent id), of a kind granted to agents; these attacks use msg, req, rep and presence.
 */
export function mayPublish(s: Scene, subject: string): boolean {
  if (!s.secure) return true;
  const [root, mesh, kind, ...rest] = subject.split('.');
  if (root !== 'tm' || mesh !== s.mesh || rest.at(-1) !== s.mallory.agentId) return false;
  return kind === 'presence' ? rest.length === 1 : (kind === 'msg' || kind === 'req' || kind === 'rep') && rest.length === 2;
}

/**
 * Publishes `frames` as the attacker and checks what each comes to:
 * - a frame the attacker may publish (`mayPublish`) is refused by `target` with
 *   `reason`, and nothing more happens (no handler, no reply, no other count);
 * - in secure mode, a frame on a subject it may not publish is refused by the
 *   server: a permission violation on the attacker's connection names that
 *   subject, and `target` never receives the frame.
 * Every rejection names the publisher as authenticated exactly in secure mode.
 */
export async function expectRejected(
  s: Scene,
  target: Agent,
  reason: RejectReason,
  frames: Array<[subject: string, bytes: Uint8Array]>,
): Promise<void> {
  const delivered = frames.filter(([subject]) => mayPublish(s, subject));
  const refused = frames.filter(([subject]) => !mayPublish(s, subject));
  const before = target.stats();
  const events = s.rejectedAt.get(target)!;
  const eventsBefore = events.length;
  const deniedBefore = s.denied.length;
  const calls = s.bobCalls.length + s.aliceCalls.length;
  for (const [subject, bytes] of frames) s.attacker.publish(subject, bytes);
  await s.attacker.flush();
  await waitFor(
    () => target.stats().rejectedTotal >= before.rejectedTotal + delivered.length && s.denied.length >= deniedBefore + refused.length,
    `${delivered.length} '${reason}' rejection(s) by ${target.name} and ${refused.length} refusal(s) by the server`,
  );
  await sleep(10); // anything wrongly accepted (or delivered) would show up now

  const after = target.stats();
  if (process.env.DEBUG_ATTACKS) console.log(JSON.stringify(events.slice(eventsBefore).map((e) => [e.reason, e.detail])));
  expect(after.rejected[reason], `rejected.${reason}`).toBe(before.rejected[reason] + delivered.length);
  expect(after.rejectedTotal).toBe(before.rejectedTotal + delivered.length);
  expect(after.received, 'frames received: none the server refused').toBe(before.received + delivered.length);
  expect(after.accepted).toBe(before.accepted);
  expect(after.sent).toBe(before.sent); // no reply, no error reply, no presence answer
  const fired = events.slice(eventsBefore);
  expect(fired.map((e) => e.reason)).toEqual(delivered.map(() => reason));
  // Known peers' frames are verified first, so events need not follow the publish order.
  const sorted = (pairs: string[]) => [...pairs].sort();
  expect(sorted(fired.map((e) => `${e.subject} ${e.size}`))).toEqual(
    sorted(delivered.map(([subject, bytes]) => `${subject} ${bytes.length}`)),
  );
  // (Not yet for presence frames: their hub says false in either mode; test/attacks-secure.spec.ts has the case.)
  for (const event of fired.filter((e) => e.subject.split('.')[2] !== 'presence')) {
    expect(event.publisherAuthenticated, `${event.reason} on ${event.subject}`).toBe(s.secure);
  }
  const denials = s.denied.slice(deniedBefore);
  expect(sorted(denials.map((e) => `${e.operation} ${e.subject}`))).toEqual(sorted(refused.map(([subject]) => `publish ${subject}`)));
  expect(s.bobCalls.length + s.aliceCalls.length, 'handler calls').toBe(calls);
}

/** The agent attacked still answers genuine requests, and the answer is genuine. */
export async function expectStillServes(s: Scene, server: Agent = s.bob, client: Agent = s.alice): Promise<void> {
  const nonce = randomBytes(8).toString('hex');
  await expect(client.request(server.did, 'echo', nonce, { timeoutMs: 3_000 })).resolves.toBe(nonce);
}

/** A genuine alice → bob one-way frame, as seen on the wire. */
export async function captureAliceToBob(s: Scene, data: unknown = 'genuine'): Promise<CapturedMessage> {
  const subject = msgSubject(s, s.bob, s.alice.agentId);
  const received = s.bobCalls.length;
  s.alice.send(s.bob.did, 'echo', data);
  const captured = await s.wire.next((m) => m.subject === subject);
  await waitFor(() => s.bobCalls.length === received + 1, 'bob to handle the genuine frame');
  return captured;
}

export const msgSubject = (s: Scene, to: Agent, from: string): string => subjects.message(s.mesh, to.agentId, from);
