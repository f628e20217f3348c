import { headers, type NatsConnection } from '@nats-io/transport-node';
import { FRAME_VERSION, FrameVerifier, generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { capture, loadKv, waitFor, withSecureNats, type Admitted } from '@trustmesh/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PERMISSION_TABLE,
  PermissionDeniedError,
  identityFromJwt,
  inboxPrefix,
  kvStream,
  meshResources,
  readBucket,
} from '../src/index.ts';
import { deniedErrors, sleep } from './helpers.ts';

const fx = withSecureNats();
const names = () => meshResources(fx.mesh);
// The presence registry, as `trustmesh up` will provision it (hardened: agents write it).
beforeAll(async () => {
  await fx.createBucket(names().presenceBucket, { history: 1 });
});

/** An agent plus a watcher of its permission errors, explained in its own terms. */
async function agent() {
  const admitted = await fx.admitted('agent');
  return { ...admitted, denied: deniedErrors(admitted.nc, identityFromJwt(admitted.admission.jwt)) };
}

/** An operator-role observer of the whole mesh: what a subscriber would receive. */
async function observer() {
  const op = await fx.admitted('operator');
  return capture(op.nc, `tm.${fx.mesh}.>`);
}

/** Publishes a frame signed by `from` on `subject` (what an attacker would send). */
function publishSigned(from: Admitted, subject: string) {
  from.nc.publish(subject, signFrame(from.key, { sub: subject, typ: 'attack', data: 'x' }).bytes);
}

/** A JetStream API request; resolves with the parsed JSON answer. */
async function jsApi(nc: NatsConnection, subject: string, body: unknown = {}) {
  const reply = await nc.request(subject, JSON.stringify(body), { timeout: 3_000 });
  return JSON.parse(reply.string()) as { error?: { code: number; description: string }; [k: string]: unknown };
}

describe('permissions - publish', () => {
  it("publish - an agent cannot publish on another agent's subjects: refused by the server, explained, never delivered", async () => {
    const mallory = await agent();
    const victim = await fx.admitted('agent');
    const target = await fx.admitted('agent');
    const seen = await observer();
    const forged = [
      subjects.presence(fx.mesh, victim.key.agentId),
      subjects.message(fx.mesh, target.key.agentId, victim.key.agentId),
      subjects.request(fx.mesh, target.key.agentId, victim.key.agentId),
      subjects.reply(fx.mesh, target.key.agentId, victim.key.agentId),
    ];
    for (const subject of forged) {
      publishSigned(mallory, subject);
      const error = await mallory.denied.next();
      expect(error).toBeInstanceOf(PermissionDeniedError);
      expect(error).toMatchObject({ code: 'permission_denied', operation: 'publish', subject });
      expect(error.message).toContain(`its own agent id (${mallory.key.agentId})`);
    }
    // A legitimate frame after the attacks arrives; none of the forged ones did.
    const own = subjects.message(fx.mesh, target.key.agentId, mallory.key.agentId);
    publishSigned(mallory, own);
    await seen.next((m) => m.subject === own);
    expect(seen.messages.map((m) => m.subject)).toEqual([own]);
  });

  it('publish - every mesh row of the agent table works, and the same subject under another id is refused', async () => {
    const alice = await agent();
    const victim = generateKey();
    const seen = await observer();
    const rows = PERMISSION_TABLE.agent.publish.filter((row) => row.subject.startsWith('tm.'));
    const concrete = (pattern: string, self: string) =>
      pattern.replaceAll('{mesh}', fx.mesh).replaceAll('{self}', self).replaceAll('*', generateKey().agentId);
    for (const row of rows) {
      const own = concrete(row.subject, alice.key.agentId);
      publishSigned(alice, own);
      await seen.next((m) => m.subject === own);
      const theirs = concrete(row.subject, victim.agentId);
      publishSigned(alice, theirs);
      expect((await alice.denied.next()).subject).toBe(theirs);
    }
    expect(alice.denied.seen.length).toBe(rows.length);
    expect(seen.messages.every((m) => m.subject.endsWith(`.${alice.key.agentId}`))).toBe(true);
  });

  it('publish - an agent cannot publish on the control subjects (kill, revive)', async () => {
    const mallory = await agent();
    const seen = await observer();
    const subject = `tm.${fx.mesh}.ctl.kill.${mallory.key.agentId}`;
    publishSigned(mallory, subject);
    const error = await mallory.denied.next();
    expect(error.subject).toBe(subject);
    expect(error.reason).toMatch(/operators only/);
    await sleep(200);
    expect(seen.messages).toEqual([]);
  });

  it('publish - an agent cannot publish under a kind outside the list, even ending in its own id', async () => {
    const mallory = await agent();
    const seen = await observer();
    const tries = [
      `tm.${fx.mesh}.trust.${mallory.key.agentId}`,
      `tm.${fx.mesh}.evil.x.${mallory.key.agentId}`,
      `tm.${fx.mesh}.ack.${mallory.key.agentId}`, // an ack is addressed: ack.<operator>.<self>
      `tm.${fx.mesh}.${mallory.key.agentId}`,
      `tm.other.msg.x.${mallory.key.agentId}`,
    ];
    for (const subject of tries) {
      publishSigned(mallory, subject);
      expect((await mallory.denied.next()).subject).toBe(subject);
    }
    expect(mallory.denied.seen[1]!.reason).toMatch(/'evil' is not a kind an agent may publish/);
    expect(mallory.denied.seen[4]!.reason).toMatch(/admitted to mesh/);
    await sleep(200);
    expect(seen.messages).toEqual([]);
  });
});

describe('permissions - subscribe', () => {
  it("subscribe - an agent cannot subscribe to another agent's inbox (eavesdropping), nor to the whole mesh or _INBOX", async () => {
    const mallory = await agent();
    const victim = await fx.admitted('agent');
    const tries = [
      subjects.inbox(fx.mesh, victim.key.agentId),
      `tm.${fx.mesh}.>`,
      `tm.${fx.mesh}.msg.${victim.key.agentId}.*`,
      '_INBOX.>',
      '>',
    ];
    const received: string[] = [];
    for (const subject of tries) {
      mallory.nc.subscribe(subject, {
        callback: (error, msg) => {
          if (error === null) received.push(msg.subject);
        },
      });
      const error = await mallory.denied.next();
      expect(error).toMatchObject({ operation: 'subscribe', subject });
    }
    expect(mallory.denied.seen[0]!.reason).toMatch(/only its own inbox/);
    // After stop(), the watcher reports nothing more.
    mallory.denied.stop();
    mallory.nc.subscribe(`tm.${fx.mesh}.ctl2.>`);
    await mallory.nc.flush();
    await sleep(100);
    expect(mallory.denied.seen.length).toBe(tries.length);
    // The victim gets a message; mallory's refused subscriptions receive nothing.
    const bob = await fx.admitted('agent');
    const sub = subjects.message(fx.mesh, victim.key.agentId, bob.key.agentId);
    const victimInbox = await capture(victim.nc, subjects.inbox(fx.mesh, victim.key.agentId));
    publishSigned(bob, sub);
    await victimInbox.next();
    await sleep(100);
    expect(received).toEqual([]);
  });
});

describe('permissions - subscribe rows', () => {
  it('subscribe - every subscribe row of the agent table is accepted (capability offers as a queue group included); rules of another agent are not', async () => {
    const alice = await agent();
    const other = generateKey().agentId;
    for (const row of PERMISSION_TABLE.agent.subscribe) {
      const subject = row.subject
        .replaceAll('{inbox}', inboxPrefix(fx.mesh, alice.key.agentId))
        .replaceAll('{mesh}', fx.mesh)
        .replaceAll('{self}', alice.key.agentId);
      alice.nc.subscribe(subject, subject.includes('.ctask.') ? { queue: 'tm-ctask-x' } : {});
    }
    alice.nc.subscribe(`tm.${fx.mesh}.rules.${other}`);
    await alice.nc.flush();
    expect((await alice.denied.next()).subject).toBe(`tm.${fx.mesh}.rules.${other}`);
    await sleep(100);
    expect(alice.denied.seen.length).toBe(1);
  });
});

describe('permissions - JetStream', () => {
  it('jetstream - an agent reads a KV bucket (kv.get, and a listing by next_by_subj) but its put is refused', async () => {
    const { Kvm } = await loadKv();
    const operator = await fx.admitted('operator');
    const broker = await fx.admitted('broker');
    await new Kvm(operator.nc).create(names().trustBucket);
    const written = await new Kvm(broker.nc).open(names().trustBucket);
    await written.put('alice', '700');
    await written.put('bob', '450');

    const reader = await agent();
    const kv = await new Kvm(reader.nc).open(names().trustBucket);
    expect((await kv.get('alice'))?.string()).toBe('700');
    const listed: string[] = [];
    for (let seq = 1; ; ) {
      const answer = await jsApi(reader.nc, `$JS.API.STREAM.MSG.GET.${kvStream(names().trustBucket)}`, {
        seq,
        next_by_subj: `$KV.${names().trustBucket}.>`,
      });
      if (answer.error !== undefined) break;
      const message = answer.message as { subject: string; seq: number };
      listed.push(message.subject.split('.').at(-1)!);
      seq = message.seq + 1;
    }
    expect(listed).toEqual(['alice', 'bob']);
    await expect(kv.put('alice', '1000')).rejects.toThrow(/Permissions Violation for Publish to "\$KV\./);
    const error = await reader.denied.next();
    expect(error.reason).toMatch(/read the KV buckets but not write them/);
    expect((await kv.get('alice'))?.string()).toBe('700');
    expect(reader.denied.seen.length).toBe(1);
  });

  it('jetstream - readBucket lists a bucket as an agent (no consumer): live keys only, newest value', async () => {
    const { Kvm } = await loadKv();
    const broker = await fx.admitted('broker');
    const trust = await new Kvm(broker.nc).create(names().trustBucket, { history: 5 });
    const tag = Math.random().toString(36).slice(2, 8);
    await trust.put(`${tag}a`, 'a1');
    await trust.put(`${tag}b`, 'b1');
    await trust.put(`${tag}a`, 'a2');
    await trust.put(`${tag}c`, 'c1');
    await (trust as unknown as { delete(key: string): Promise<void> }).delete(`${tag}b`);
    const reader = await agent();
    const entries = (await readBucket(reader.nc, names().trustBucket)).filter((e) => e.key.startsWith(tag));
    expect(entries.map((e) => [e.key, new TextDecoder().decode(e.value)])).toEqual([
      [`${tag}a`, 'a2'],
      [`${tag}c`, 'c1'],
    ]);
    expect(reader.denied.seen).toEqual([]);
  });

  it("jetstream - an agent cannot create a consumer (kv.watch), so it cannot route stored records into another agent's inbox", async () => {
    const { Kvm } = await loadKv();
    const victim = await fx.admitted('agent');
    await (await new Kvm(victim.nc).open(names().presenceBucket)).put(victim.key.agentId, 'victim record');
    const mallory = await agent();
    const bob = generateKey();
    const target = subjects.message(fx.mesh, bob.agentId, victim.key.agentId);
    // A push consumer delivering the victim's stored record to bob's inbox, under the victim's id.
    const create = `$JS.API.CONSUMER.CREATE.${kvStream(names().presenceBucket)}.evil`;
    await expect(
      jsApi(mallory.nc, create, {
        stream_name: kvStream(names().presenceBucket),
        config: { name: 'evil', deliver_subject: target, ack_policy: 'none' },
      }),
    ).rejects.toThrow(/Permissions Violation/);
    const error = await mallory.denied.next();
    expect(error.subject).toBe(create);
    expect(error.reason).toMatch(/may not create JetStream consumers/);
    // nats.js kv.watch is refused the same way.
    const kv = await new Kvm(mallory.nc).open(names().presenceBucket);
    await expect(kv.watch()).rejects.toThrow(/Permissions Violation/);
    // bob subscribes afterwards, on the literal subject (what would start a push consumer): nothing arrives.
    const bobNc = await fx.connectAs(bob, (await fx.admit(bob)).jwt);
    const inbox = await capture(bobNc, target);
    await sleep(300);
    expect(inbox.messages).toEqual([]);
  });

  it("jetstream - why consumers are withheld: one created by a role that may, delivers stored records into another agent's inbox", async () => {
    const { Kvm } = await loadKv();
    const operator = await fx.admitted('operator');
    const victim = await fx.admitted('agent');
    await (await new Kvm(victim.nc).open(names().presenceBucket)).put(victim.key.agentId, 'victim record');
    const bob = generateKey();
    const target = subjects.message(fx.mesh, bob.agentId, victim.key.agentId);
    const created = await jsApi(operator.nc, `$JS.API.CONSUMER.CREATE.${kvStream(names().presenceBucket)}.route`, {
      stream_name: kvStream(names().presenceBucket),
      config: {
        name: 'route',
        deliver_subject: target,
        ack_policy: 'none',
        deliver_policy: 'all',
      },
    });
    expect(created.error).toBeUndefined(); // nats-server 2.9 does not check the deliver subject against the creator's permissions
    // A push consumer starts when a subscription on its literal deliver subject appears (bob may subscribe to
    // it: it is inside his inbox). A wildcard-only subscriber did not start it in our runs; not a guarantee.
    const bobNc = await fx.connectAs(bob, (await fx.admit(bob)).jwt);
    const inbox = await capture(bobNc, target);
    const got = await inbox.next((m) => m.subject.endsWith(victim.key.agentId));
    // It arrives on bob's inbox subscription, but under the stream's subject: never a tm.<mesh> subject.
    expect(got.subject).toBe(`$KV.${names().presenceBucket}.${victim.key.agentId}`);
    expect(new TextDecoder().decode(got.data)).toBe('victim record');
  });

  it('jetstream - an agent opens a bucket the nats.js ways (create of an existing bucket, get) without a refusal; direct get is refused', async () => {
    const { Kvm } = await loadKv();
    const operator = await fx.admitted('operator');
    // Mesh buckets are created without direct get (nats.js would enable it by default), so readers use MSG.GET.
    await new Kvm(operator.nc).create(names().killBucket, { allow_direct: false });
    await (await new Kvm(operator.nc).open(names().killBucket)).put('all', 'running');
    const reader = await agent();
    const viaCreate = await new Kvm(reader.nc).create(names().killBucket); // finds it (STREAM.INFO), creates nothing
    expect((await viaCreate.get('all'))?.string()).toBe('running');
    expect(reader.denied.seen).toEqual([]);
    const direct = await new Kvm(reader.nc).open(names().killBucket, { allow_direct: true });
    await expect(direct.get('all')).rejects.toThrow(/Permissions Violation/);
    expect((await reader.denied.next()).reason).toMatch(/may not use direct get/);
  });

  it("jetstream - what an agent can still route onto another agent's subject through the JetStream API is JSON, never frame bytes", async () => {
    const { Kvm } = await loadKv();
    const victim = await fx.admitted('agent');
    const bob = await fx.admitted('agent');
    const mallory = await agent();
    const forged = signFrame(mallory.key, { sub: 'x', typ: 'forged' }).bytes;
    await (await new Kvm(mallory.nc).open(names().presenceBucket)).put(mallory.key.agentId, new TextDecoder('latin1').decode(forged));
    const inbox = await capture(bob.nc, subjects.inbox(fx.mesh, bob.key.agentId));
    const onVictimsSubject = subjects.message(fx.mesh, bob.key.agentId, victim.key.agentId);
    const record = `$KV.${names().presenceBucket}.${mallory.key.agentId}`;
    // The reply subject is the attacker's choice, and the server answers there.
    mallory.nc.publish('$JS.API.INFO', '', { reply: onVictimsSubject });
    mallory.nc.publish(`$JS.API.STREAM.MSG.GET.${kvStream(names().presenceBucket)}`, JSON.stringify({ last_by_subj: record }), {
      reply: onVictimsSubject,
    });
    mallory.nc.publish(`$JS.API.DIRECT.GET.${kvStream(names().presenceBucket)}.${record}`, '', { reply: onVictimsSubject }); // refused
    expect((await mallory.denied.next()).subject).toMatch(/^\$JS\.API\.DIRECT\.GET\./);
    await waitFor(() => inbox.messages.length >= 2, 'the two JSON answers');
    await sleep(200);
    expect(inbox.messages.length).toBe(2);
    for (const m of inbox.messages) {
      expect(m.subject).toBe(onVictimsSubject); // under the victim's id, published by the server for mallory
      expect(m.data[0]).toBe('{'.charCodeAt(0)); // a JSON document: never a frame (version byte 1)
      expect(m.data[0]).not.toBe(FRAME_VERSION);
      expect(new FrameVerifier({ self: bob.key.did }).verify(m.data, { subject: m.subject }).ok).toBe(false);
    }
  });

  it('jetstream - an agent writes its own presence record (key = its agent id) and no other', async () => {
    const { Kvm } = await loadKv();
    const operator = await fx.admitted('operator');
    const alice = await agent();
    const victim = await fx.admitted('agent');
    const registry = await new Kvm(alice.nc).open(names().presenceBucket);
    await registry.put(alice.key.agentId, 'signed presence record');
    await expect(registry.put(victim.key.agentId, 'forged')).rejects.toThrow(/Permissions Violation/);
    expect((await alice.denied.next()).subject).toBe(`$KV.${names().presenceBucket}.${victim.key.agentId}`);
    const read = await new Kvm(operator.nc).open(names().presenceBucket);
    expect((await read.get(alice.key.agentId))?.string()).toBe('signed presence record');
    expect(await read.get(victim.key.agentId)).toBeNull();
  });

  it('jetstream - an agent cannot wipe the presence registry with a rollup header; on a bucket left as nats.js makes it, one message would', async () => {
    const { Kvm } = await loadKv();
    const a1 = await fx.admitted('agent');
    await (await new Kvm(a1.nc).open(names().presenceBucket)).put(a1.key.agentId, 'record of a1');
    const mallory = await agent();
    const rollupAll = headers();
    rollupAll.set('Nats-Rollup', 'all');
    const ack = await mallory.nc.request(`$KV.${names().presenceBucket}.${mallory.key.agentId}`, 'wipe', {
      headers: rollupAll,
      timeout: 3_000,
    });
    expect(JSON.parse(ack.string()).error?.description).toMatch(/rollup not permitted/);
    const reader = await new Kvm((await fx.admitted('agent')).nc).open(names().presenceBucket);
    expect((await reader.get(a1.key.agentId))?.string()).toBe('record of a1');

    // Why: the broker's trust bucket as nats.js creates it (rollup allowed) loses every key to one message.
    const broker = await fx.admitted('broker');
    const trust = await new Kvm(broker.nc).create(names().trustBucket);
    await trust.put('z6MkOne', '600');
    await trust.put('z6MkTwo', '700');
    await broker.nc.request(`$KV.${names().trustBucket}.z6MkThree`, '500', { headers: rollupAll, timeout: 3_000 });
    expect(await trust.get('z6MkOne')).toBeNull();
    expect((await trust.get('z6MkThree'))?.string()).toBe('500');
  });

  it('jetstream - an agent cannot delete or purge the trust bucket or the audit stream, nor create streams', async () => {
    const operator = await fx.admitted('operator');
    const { trustBucket, auditStream } = names();
    const { Kvm } = await loadKv();
    await new Kvm(operator.nc).create(trustBucket).catch(() => undefined); // exists already when run after the test above
    const created = await jsApi(operator.nc, `$JS.API.STREAM.CREATE.${auditStream}`, {
      name: auditStream,
      subjects: [`tm.${fx.mesh}.>`],
      no_ack: true,
      deny_delete: true,
      deny_purge: true,
    });
    expect(created.error).toBeUndefined();

    const mallory = await agent();
    const attacks = [
      `$JS.API.STREAM.DELETE.${kvStream(trustBucket)}`,
      `$JS.API.STREAM.PURGE.${kvStream(trustBucket)}`,
      `$JS.API.STREAM.DELETE.${auditStream}`,
      `$JS.API.STREAM.PURGE.${auditStream}`,
      `$JS.API.STREAM.UPDATE.${auditStream}`,
      `$JS.API.STREAM.MSG.DELETE.${auditStream}`,
      '$JS.API.STREAM.CREATE.mine',
      `$JS.API.CONSUMER.DELETE.${auditStream}.any`,
    ];
    for (const subject of attacks) {
      await expect(jsApi(mallory.nc, subject, { name: auditStream })).rejects.toThrow(/Permissions Violation/);
      const error = await mallory.denied.next();
      expect(error.subject).toBe(subject);
      expect(error.reason).toMatch(/no stream or consumer admin API/);
    }
    // Both are still there.
    expect((await jsApi(operator.nc, `$JS.API.STREAM.INFO.${kvStream(trustBucket)}`)).error).toBeUndefined();
    expect((await jsApi(operator.nc, `$JS.API.STREAM.INFO.${auditStream}`)).error).toBeUndefined();
  });

  it('jetstream - the operator may delete a bucket (the admin API is the operator role)', async () => {
    const operator = await fx.admitted('operator');
    const { Kvm } = await loadKv();
    const bucket = `${names().killBucket}_scratch`;
    await new Kvm(operator.nc).create(bucket);
    const deleted = await jsApi(operator.nc, `$JS.API.STREAM.DELETE.${kvStream(bucket)}`);
    expect(deleted).toMatchObject({ success: true });
  });
});
