/** Shared set-up of the broker service tests: a broker, agents with the trust guard, hand-made frames. */
import type { Agent } from '@trustmesh/client';
import { type AgentKey, generateKey, meshSubjects, signFrame } from '@trustmesh/protocol';
import type { NatsFixture } from '@trustmesh/test-utils';
import { type PolicyRules, type TrustGuard, type TrustReport, type TrustUpdate, trustGuard } from '@trustmesh/trust';
import { type Broker, type BrokerInit, createBroker } from '../src/index.ts';

export interface Member {
  agent: Agent;
  guard: TrustGuard;
  updates: TrustUpdate[];
}

export class Mesh {
  readonly brokers: Broker[] = [];
  readonly members: Member[] = [];

  constructor(
    readonly nats: NatsFixture,
    readonly mesh: string,
  ) {}

  get subjects() {
    return meshSubjects(this.mesh);
  }

  async broker(init: Partial<BrokerInit> = {}): Promise<Broker> {
    const broker = await createBroker({
      key: init.key ?? generateKey(),
      mesh: this.mesh,
      servers: this.nats.url,
      declarationMarginMs: 0,
      presenceRewards: false,
      ...init,
    });
    this.brokers.push(broker);
    return broker;
  }

  async member(
    name: string,
    options: { brokers?: string[]; policy?: PolicyRules; report?: boolean; key?: AgentKey; heartbeatMs?: number } = {},
  ): Promise<Member> {
    const guard = trustGuard({
      brokers: options.brokers ?? this.brokers.map((b) => b.did),
      ...(options.policy !== undefined && { policy: options.policy }),
      reportViolations: options.report ?? false,
    });
    const updates: TrustUpdate[] = [];
    guard.onUpdate((u) => updates.push(u));
    const agent = await this.nats.join({
      mesh: this.mesh,
      name,
      ...(options.key !== undefined && { key: options.key }),
      extensions: [guard],
      ...(options.heartbeatMs !== undefined && { presence: { heartbeatMs: options.heartbeatMs } }),
    });
    const member = { agent, guard, updates };
    this.members.push(member);
    return member;
  }

  async close(): Promise<void> {
    await Promise.all(this.brokers.splice(0).map((b) => b.close().catch(() => undefined)));
  }
}

/** A frame signed by `key` on its `msg` subject to `to`, with or without `aud`. */
export function message(
  mesh: string,
  key: AgentKey,
  to: { did: string; agentId: string },
  typ: string,
  data: unknown,
  aud = true,
  id?: Uint8Array,
) {
  const subject = meshSubjects(mesh).message(to.agentId, key.agentId);
  const { bytes, body } = signFrame(key, { sub: subject, typ, data, ...(aud && { aud: to.did }), ...(id !== undefined && { id }) });
  return { subject, bytes, body };
}

/** Sends a report to a broker from `reporter`, as any agent can. */
export function report(reporter: Agent, broker: Broker, body: TrustReport): void {
  reporter.send(broker.did, 'trust.report', body);
}
