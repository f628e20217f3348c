import { createHook } from 'node:async_hooks';
import { type Agent, RequestTimeoutError } from '@trustmesh/client';
import { createOperator, KilledError, killSwitch } from '@trustmesh/kill';
import { generateKey, StatelessVerifier } from '@trustmesh/protocol';
import { capture, sleep, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import { BREAKER_TYPE, BreakerOpenError, type BreakerTransition, breakers, rotationTimers } from '../src/index.ts';

const nats = withNats();

/** Live Timeout objects (setTimeout and setInterval, ref'd or not: getActiveResourcesInfo() lists only ref'd ones). */
function timerCounter(): { live: () => number; stop: () => void } {
  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout') live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return { live: () => live.size, stop: () => hook.disable() };
}

describe('breakers - per-peer breaker on a real mesh', () => {
  it('breakers - opens after the configured failures, fails fast while open, half-opens, closes on success; transitions are signed frames', async () => {
    const mesh = uniqueMesh();
    const br = breakers({ volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 400 });
    const a = await nats.join({ mesh, name: 'a', extensions: [br] });
    const b = await nats.join({ mesh, name: 'b' });
    let answer = false;
    b.handle('work', (x) => (answer ? x : new Promise(() => {})));
    const wire = await nats.connect();
    const frames = await capture(wire, `tm.${mesh}.breaker.*`);
    const requests = await capture(wire, `tm.${mesh}.req.${b.agentId}.${a.agentId}`);

    for (let i = 0; i < 3; i++) {
      await expect(a.request(b.did, 'work', i, { timeoutMs: 100 })).rejects.toBeInstanceOf(RequestTimeoutError);
    }
    expect(br.breaker(b.did)).toMatchObject({ state: 'open', reason: 'failures', failures: 3 });
    // fails fast while open: nothing goes on the wire
    const sent = requests.messages.length;
    const t0 = performance.now();
    await expect(a.request(b.did, 'work', 9, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'breaker_open', state: 'open' });
    expect(performance.now() - t0).toBeLessThan(50);
    await sleep(50);
    expect(requests.messages.length).toBe(sent);
    // half-opens after the reset timeout; the trial succeeds and closes it
    await waitFor(() => br.breaker(b.did)?.state === 'half_open', 'the breaker to half-open', 3_000);
    answer = true;
    await expect(a.request(b.did, 'work', 7)).resolves.toBe(7);
    expect(br.breaker(b.did)?.state).toBe('closed');

    // every transition went out signed; check them from the raw capture
    await waitFor(() => frames.messages.length === 3, 'three transition frames');
    const verifier = new StatelessVerifier();
    const seen = frames.messages.map((m) => {
      const result = verifier.verify(m.data, m.subject);
      if (!result.ok) throw new Error(`transition frame refused: ${result.reason}`);
      expect(result.frame.iss).toBe(a.did);
      expect(result.frame.typ).toBe(BREAKER_TYPE);
      return result.frame.data as BreakerTransition;
    });
    expect(seen.map((t) => [t.from, t.to])).toEqual([
      ['closed', 'open'],
      ['open', 'half_open'],
      ['half_open', 'closed'],
    ]);
    expect(seen.every((t) => t.peer === b.did)).toBe(true);
  });

  it('breakers - a failed trial while half-open opens the breaker again', async () => {
    const mesh = uniqueMesh();
    const br = breakers({ volumeThreshold: 2, resetTimeoutMs: 200 });
    const a = await nats.join({ mesh, name: 'a', extensions: [br] });
    const b = await nats.join({ mesh, name: 'b' });
    b.handle('work', () => new Promise(() => {}));
    for (let i = 0; i < 2; i++) await a.request(b.did, 'work', i, { timeoutMs: 80 }).catch(() => undefined);
    expect(br.breaker(b.did)?.state).toBe('open');
    await waitFor(() => br.breaker(b.did)?.state === 'half_open', 'half-open', 3_000);
    await expect(a.request(b.did, 'work', 0, { timeoutMs: 80 })).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(br.breaker(b.did)?.state).toBe('open');
  });

  it('breakers - errors that are not the peer failing (no handler) do not open it', async () => {
    const mesh = uniqueMesh();
    const br = breakers({ volumeThreshold: 2 });
    const a = await nats.join({ mesh, name: 'a', extensions: [br] });
    const b = await nats.join({ mesh, name: 'b' });
    for (let i = 0; i < 5; i++) await expect(a.request(b.did, 'nothing-here', i)).rejects.toMatchObject({ remoteCode: 'no_handler' });
    expect(br.breaker(b.did)).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('breakers - per-peer options', async () => {
    const mesh = uniqueMesh();
    const b = await nats.join({ mesh, name: 'b' });
    const c = await nats.join({ mesh, name: 'c' });
    for (const x of [b, c]) x.handle('work', () => new Promise(() => {}));
    const br = breakers({ volumeThreshold: 10, perPeer: (did) => (did === b.did ? { volumeThreshold: 1 } : undefined) });
    const a = await nats.join({ mesh, name: 'a', extensions: [br] });
    await a.request(b.did, 'work', 1, { timeoutMs: 50 }).catch(() => undefined);
    await a.request(c.did, 'work', 1, { timeoutMs: 50 }).catch(() => undefined);
    expect(br.breaker(b.did)?.state).toBe('open');
    expect(br.breaker(c.did)?.state).toBe('closed');
  });
});

describe('breakers - forced open', () => {
  it('breakers - forced open for a killed peer (kill switch hook), closed again on revive', async () => {
    const mesh = uniqueMesh();
    const opKey = generateKey();
    const ks = killSwitch({ operators: [opKey.did] });
    const br = breakers({ isBlocked: ks.isBlocked });
    ks.on('change', () => br.refresh());
    const a = await nats.join({ mesh, name: 'a', extensions: [br, ks] });
    const b: Agent = await nats.join({ mesh, name: 'b', extensions: [killSwitch({ operators: [opKey.did] })] });
    b.handle('work', (x) => x);
    await expect(a.request(b.did, 'work', 1)).resolves.toBe(1);
    const transitions: BreakerTransition[] = [];
    br.on('transition', (t) => transitions.push(t));
    const operator = await createOperator({ key: opKey, mesh, connection: await nats.connect() });
    try {
      await operator.kill({ agent: b.did }); // returns once b acknowledged; a applies it on its own connection
      await waitFor(() => br.breaker(b.did)?.state === 'forced_open', 'a to force the breaker open');
      expect(br.breaker(b.did)).toMatchObject({ state: 'forced_open', reason: 'killed' });
      await expect(a.request(b.did, 'work', 2)).rejects.toMatchObject({ code: 'breaker_open', state: 'forced_open', reason: 'killed' });
      await operator.revive({ agent: b.did });
      await waitFor(() => br.breaker(b.did)?.state === 'closed', 'a to close the breaker again');
      await expect(a.request(b.did, 'work', 3)).resolves.toBe(3);
      expect(transitions.map((t) => t.to)).toEqual(['forced_open', 'closed']);
    } finally {
      await operator.close();
    }
  });

  it('breakers - forced open while isBlocked says untrusted, without a request ever reaching the peer', async () => {
    const mesh = uniqueMesh();
    let untrusted = true;
    const br = breakers({ isBlocked: () => (untrusted ? 'untrusted' : undefined) });
    const a = await nats.join({ mesh, name: 'a', extensions: [br] });
    const b = await nats.join({ mesh, name: 'b' });
    let calls = 0;
    b.handle('work', (x) => {
      calls++;
      return x;
    });
    const error = await a.request(b.did, 'work', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BreakerOpenError);
    expect(error).not.toBeInstanceOf(KilledError);
    expect(error).toMatchObject({ reason: 'untrusted' });
    untrusted = false;
    await expect(a.request(b.did, 'work', 2)).resolves.toBe(2);
    expect(calls).toBe(1);
  });
});

describe('breakers - timers', () => {
  it('breakers - a thousand peers share one rotation timer and add no per-breaker timer', async () => {
    const timers = timerCounter();
    const rotationBefore = rotationTimers();
    const br = breakers({ rollingCountTimeoutMs: 7_000, rollingCountBuckets: 7 });
    const next = async () => 'ok';
    for (let i = 0; i < 1_000; i++) {
      const key = generateKey();
      await br.interceptRequest!(
        { to: { did: key.did, agentId: key.agentId }, typ: 't', data: null, timeoutMs: 1_000, signal: undefined },
        next,
      );
    }
    expect(br.breakers()).toHaveLength(1_000);
    expect(rotationTimers() - rotationBefore).toBe(1);
    expect(timers.live()).toBe(1); // the rotation interval, and nothing per breaker
    await br.detach!();
    expect(rotationTimers()).toBe(rotationBefore);
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve)); // destroy hooks run batched
    expect(timers.live()).toBe(0);
    timers.stop();
  });
});

describe('breakers - options', () => {
  it('breakers - invalid options name the field and the rule', () => {
    expect(() => breakers({ errorThresholdPercentage: 120 })).toThrow(/breakers\.errorThresholdPercentage must be a number from 0 to 100/);
    expect(() => breakers({ volumeThreshold: -1 })).toThrow(/breakers\.volumeThreshold/);
    expect(() => breakers({ resetTimeoutMs: 0 })).toThrow(/breakers\.resetTimeoutMs/);
    expect(() => breakers({ rollingCountTimeoutMs: 5, rollingCountBuckets: 10 })).toThrow(/rollingCountTimeoutMs/);
    expect(() => breakers({ maxBreakers: 0 })).toThrow(/maxBreakers/);
  });

  it('breakers - maxBreakers drops the least recently used breaker', async () => {
    const br = breakers({ maxBreakers: 2 });
    const keys = [generateKey(), generateKey(), generateKey()];
    const call = (k: (typeof keys)[number]) =>
      br.interceptRequest!(
        { to: { did: k.did, agentId: k.agentId }, typ: 't', data: null, timeoutMs: 1_000, signal: undefined },
        async () => 1,
      );
    await call(keys[0]!);
    await call(keys[1]!);
    await call(keys[0]!); // 0 is now the most recently used
    await call(keys[2]!);
    expect(br.breakers().map((b) => b.peer)).toEqual([keys[0]!.did, keys[2]!.did]);
    await br.detach!();
  });
});
