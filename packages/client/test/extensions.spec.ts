import { subjects } from '@trustmesh/protocol';
import { capture, nextEvent, uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { describe, expect, it } from 'vitest';
import {
  type AgentExtension,
  type ExtensionPort,
  AgentClosedError,
  type InboundFrame,
  type RejectionEvent,
  type RequestCall,
  SendRefusedError,
} from '../src/index.ts';

const nats = withNats();

/** The test guard the issue asks for: an allow-list of peers, through all three extension points. */
function allowList(allowed: () => Set<string>) {
  const seenCalls: RequestCall[] = [];
  const extension: AgentExtension = {
    name: 'allow-list',
    inbound: ({ frame }: InboundFrame) =>
      allowed().has(frame.iss) ? undefined : { reason: 'not_allowed', detail: `${frame.iss} is not on the allow-list`, blame: 'none' },
    outbound: (message) => {
      if (message.to !== undefined && !allowed().has(message.to.did)) {
        throw new SendRefusedError('not_allowed', `${message.to.did} is not on the allow-list`);
      }
    },
    interceptRequest: async (call, next) => {
      seenCalls.push(call);
      if (call.typ === 'short-circuit') return 'answered by the interceptor';
      return next({ ...call, data: { wrapped: call.data } });
    },
  };
  return { extension, seenCalls };
}

describe('client extension points', () => {
  it('extensions - an inbound guard refuses with its own reason code, counted and reported, and the handler never runs', async () => {
    const mesh = uniqueMesh();
    const alice = await nats.join({ mesh, name: 'alice' });
    const carol = await nats.join({ mesh, name: 'carol' });
    const allowed = new Set([alice.did]);
    const { extension } = allowList(() => allowed);
    const bob = await nats.join({ mesh, name: 'bob', extensions: [extension] });
    const calls: string[] = [];
    bob.handle('note', (_data, ctx) => {
      calls.push(ctx.from);
    });
    const refused = nextEvent(bob, 'rejected', (e: RejectionEvent) => e.reason === 'not_allowed');
    carol.send(bob.did, 'note', 'from carol');
    const [event] = await refused;
    expect(event.detail).toContain(carol.did);
    expect(event.blame).toBe('none');
    expect(event.signer).toBeUndefined();
    alice.send(bob.did, 'note', 'from alice');
    await waitFor(() => calls.length === 1, 'alice to get through');
    expect(calls).toEqual([alice.did]);
    expect(bob.stats().rejected.not_allowed).toBe(1);
  });

  it('extensions - an outbound guard fails a send and a request with its typed error, and nothing is published', async () => {
    const mesh = uniqueMesh();
    const carol = await nats.join({ mesh, name: 'carol' });
    const { extension } = allowList(() => new Set());
    const bob = await nats.join({ mesh, name: 'bob', extensions: [extension] });
    const observer = await nats.connect();
    const wire = await capture(observer, subjects.inbox(mesh, carol.agentId));
    expect(() => bob.send(carol.did, 'note', 1)).toThrow(SendRefusedError);
    await expect(bob.request(carol.did, 'echo', 1)).rejects.toMatchObject({ name: 'SendRefusedError', code: 'not_allowed' });
    await observer.flush();
    expect(wire.messages).toHaveLength(0);
    expect(bob.stats().pendingRequests).toBe(0);
  });

  it('extensions - a request interceptor wraps every request: it sees the call, can change it, or answer without sending', async () => {
    const mesh = uniqueMesh();
    const bob = await nats.join({ mesh, name: 'bob' });
    bob.handle('echo', (data) => data);
    const { extension, seenCalls } = allowList(() => new Set([bob.did]));
    const alice = await nats.join({ mesh, name: 'alice', extensions: [extension] });
    await expect(alice.request(bob.did, 'echo', 7)).resolves.toEqual({ wrapped: 7 });
    const sentBefore = alice.stats().sent;
    await expect(alice.request(bob.did, 'short-circuit', 1)).resolves.toBe('answered by the interceptor');
    expect(alice.stats().sent).toBe(sentBefore);
    expect(seenCalls.map((c) => [c.to.did, c.typ, c.timeoutMs])).toEqual([
      [bob.did, 'echo', 5000],
      [bob.did, 'short-circuit', 5000],
    ]);
  });

  it('extensions - attach runs before the join is announced, detach on leave', async () => {
    const mesh = uniqueMesh();
    const events: string[] = [];
    const observer = await nats.connect();
    const presence = await capture(observer, subjects.presenceAll(mesh));
    const agent = await nats.join({
      mesh,
      name: 'a',
      extensions: [
        {
          name: 'order',
          attach: async (port) => {
            events.push(`attach ${port.did === undefined ? '?' : 'did'} presence=${presence.messages.length}`);
          },
          detach: () => {
            events.push('detach');
          },
        },
      ],
    });
    await agent.leave();
    expect(events).toEqual(['attach did presence=0', 'detach']);
  });

  it('extensions - a handler sees an AbortSignal that fires when the agent leaves', async () => {
    const mesh = uniqueMesh();
    const bob = await nats.join({ mesh, name: 'bob' });
    const alice = await nats.join({ mesh, name: 'alice' });
    let aborted: unknown;
    let started = false;
    bob.handle('slow', (_data, ctx) => {
      started = true;
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = ctx.signal.reason;
          resolve('too late');
        });
      });
    });
    const outcome = alice.request(bob.did, 'slow', null, { timeoutMs: 500 }).catch((e: unknown) => e);
    await waitFor(() => started, 'the handler to start');
    await bob.leave();
    expect(aborted).toBeInstanceOf(AgentClosedError);
    expect(await outcome).toMatchObject({ code: 'timeout' }); // bob left: no reply goes out
  });

  it('extensions - inspect(agent) shows identity, never the connection or its credentials', async () => {
    const { inspect } = await import('node:util');
    const agent = await nats.join({ mesh: uniqueMesh(), name: 'quiet' });
    const shown = inspect(agent, { depth: 10, showHidden: true });
    expect(shown).toContain(agent.did);
    expect(shown).not.toMatch(/NatsConnection|options|servers|authenticator|token|pass/i);
    expect(JSON.stringify(agent)).not.toMatch(/seed|secret|servers/i);
  });

  it('extensions - the port: send runs the outbound guards, publishSigned does not and refuses foreign subjects, refuse is counted, abort reaches extensions', async () => {
    const mesh = uniqueMesh();
    let port: ExtensionPort | undefined;
    const aborted: unknown[] = [];
    const guarded: AgentExtension = {
      name: 'probe',
      outbound: (m) => {
        if (m.typ === 'forbidden') throw new SendRefusedError('forbidden', 'not this type');
      },
      attach: (p) => {
        port = p;
      },
      abort: (reason) => aborted.push(reason),
    };
    const agent = await nats.join({ mesh, name: 'probe', extensions: [guarded] });
    const own = port!.subjects.broadcast('probe', agent.agentId);
    expect(() => port!.send(own, { kind: 'probe', typ: 'forbidden', data: 1 })).toThrow(SendRefusedError);
    expect(port!.send(own, { kind: 'probe', typ: 'fine', data: 1 }).body.typ).toBe('fine');
    expect(port!.publishSigned(own, 'forbidden', 1).body.sub).toBe(own); // control traffic passes the guards
    expect(() => port!.publishSigned(port!.subjects.broadcast('probe', 'z6MkSomeoneElse'), 't', 1)).toThrow(/own subjects/);
    const got = new Promise<InboundFrame>((resolve) => port!.subscribe(port!.subjects.broadcast('probe', '*'), resolve, { guards: false }));
    port!.publishSigned(own, 'hello', 1);
    const input = await got;
    port!.refuse(input, { reason: 'probe_refused', detail: 'the probe says no', blame: 'signer' });
    expect(agent.stats().rejected.probe_refused).toBe(1);
    port!.abortInFlight('halt');
    expect(aborted).toEqual(['halt']);
  });
});
