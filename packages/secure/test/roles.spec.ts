import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { FrameVerifier, generateKey, senderOfSubject, signFrame, subjects } from '@trustmesh/protocol';
import { capture, flipBit, loadKv, waitFor, withSecureNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { identityFromJwt, inboxPrefix, kvStream, meshResources } from '../src/index.ts';
import { deniedErrors, sleep } from './helpers.ts';

const fx = withSecureNats();
const names = () => meshResources(fx.mesh);

async function jsApi(nc: NatsConnection, subject: string, body: unknown = {}) {
  const reply = await nc.request(subject, JSON.stringify(body), { timeout: 3_000 });
  return JSON.parse(reply.string()) as { error?: { code: number; description: string }; [k: string]: unknown };
}

async function as(role: 'broker' | 'audit' | 'operator') {
  const admitted = await fx.admitted(role);
  return { ...admitted, denied: deniedErrors(admitted.nc, identityFromJwt(admitted.admission.jwt)) };
}

describe('attribution', () => {
  it('attribution - a flood of bad signatures from one admitted agent arrives only on subjects naming it, never on another agent', async () => {
    const mallory = await fx.admitted('agent');
    const victim = generateKey();
    const bob = await fx.admitted('agent');
    const inbox = await capture(bob.nc, subjects.inbox(fx.mesh, bob.key.agentId));
    const own = subjects.message(fx.mesh, bob.key.agentId, mallory.key.agentId);
    const framed = subjects.message(fx.mesh, bob.key.agentId, victim.agentId);
    const flood = 200;
    for (let i = 0; i < flood; i++) {
      // A valid frame with one signature bit flipped: a bad signature (bit 300 lies in the signature, bytes 33..96).
      mallory.nc.publish(own, flipBit(signFrame(mallory.key, { sub: own, typ: 'flood', data: i }).bytes, 300));
      // The same under the victim's id, with the victim's key in the header: what would frame the victim.
      const claimed = signFrame(mallory.key, { sub: framed, typ: 'flood', data: i }).bytes;
      claimed.set(victim.publicKey, 1);
      mallory.nc.publish(framed, claimed);
    }
    await mallory.nc.flush().catch(() => undefined);
    await waitFor(() => inbox.messages.length >= flood, `${flood} flood frames at bob`);
    await sleep(200); // and no more than that
    const verifier = new FrameVerifier({ self: bob.key.did });
    expect(inbox.messages.length).toBe(flood);
    for (const m of inbox.messages) {
      expect(senderOfSubject(m.subject)).toBe(mallory.key.agentId); // the server proved this connection published it
      expect(verifier.verify(m.data, { subject: m.subject }).ok).toBe(false);
    }
  });
});

describe('roles - broker and audit', () => {
  it('broker - creates and writes the trust bucket, cannot delete it, cannot write kill state or control subjects', async () => {
    const { Kvm } = await loadKv();
    const broker = await as('broker');
    const trust = await new Kvm(broker.nc).create(names().trustBucket);
    await trust.put('z6MkAgent', '640');
    expect((await trust.get('z6MkAgent'))?.string()).toBe('640');
    const keys: string[] = [];
    for await (const key of await trust.keys()) keys.push(key);
    expect(keys).toEqual(['z6MkAgent']);
    const watch = await trust.watch();
    for await (const entry of watch) {
      expect(entry.key).toBe('z6MkAgent');
      break;
    }
    expect(broker.denied.seen).toEqual([]);
    await expect(jsApi(broker.nc, `$JS.API.STREAM.DELETE.${kvStream(names().trustBucket)}`)).rejects.toThrow(/Permissions Violation/);
    expect((await broker.denied.next()).reason).toMatch(/role broker may not publish/);
    broker.nc.publish(`$KV.${names().killBucket}.all`, 'kill');
    expect((await broker.denied.next()).subject).toBe(`$KV.${names().killBucket}.all`);
    broker.nc.publish(`tm.${fx.mesh}.ctl.kill.${broker.key.agentId}`, 'x');
    expect((await broker.denied.next()).subject).toBe(`tm.${fx.mesh}.ctl.kill.${broker.key.agentId}`);
  });

  it('audit - creates its capture stream, reads it with a durable consumer, cannot delete or purge it', async () => {
    const audit = await as('audit');
    const stream = names().auditStream;
    const created = await jsApi(audit.nc, `$JS.API.STREAM.CREATE.${stream}`, {
      name: stream,
      subjects: [`tm.${fx.mesh}.>`],
      no_ack: true,
      deny_delete: true,
      deny_purge: true,
      storage: 'file',
    });
    expect(created.error).toBeUndefined();
    const consumer = await jsApi(audit.nc, `$JS.API.CONSUMER.CREATE.${stream}.audit`, {
      stream_name: stream,
      config: { durable_name: 'audit', ack_policy: 'explicit', deliver_policy: 'all' },
    });
    expect(consumer.error).toBeUndefined();

    const alice = await fx.admitted('agent');
    const sub = subjects.presence(fx.mesh, alice.key.agentId);
    alice.nc.publish(sub, signFrame(alice.key, { sub, typ: 'tm.presence', data: {} }).bytes);
    await alice.nc.flush();
    // A pull delivers the stored message under its own subject, so read it on a dedicated inbox subscription.
    const pullInbox = `${inboxPrefix(fx.mesh, audit.key.agentId)}.pull`;
    const pulled = audit.nc.subscribe(pullInbox, { max: 1 });
    audit.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.audit`, JSON.stringify({ batch: 1, expires: 2_000_000_000 }), {
      reply: pullInbox,
    });
    let next: Msg | undefined;
    for await (const msg of pulled) next = msg;
    if (next === undefined) throw new Error('no record pulled');
    expect(next.subject).toBe(sub);
    next.respond(); // ack on $JS.ACK.<stream>.…, which the audit role may publish
    await audit.nc.flush();

    for (const admin of [`$JS.API.STREAM.DELETE.${stream}`, `$JS.API.STREAM.PURGE.${stream}`]) {
      await expect(jsApi(audit.nc, admin)).rejects.toThrow(/Permissions Violation/);
      expect((await audit.denied.next()).subject).toBe(admin);
    }
    expect(audit.denied.seen.length).toBe(2);
  });
});
