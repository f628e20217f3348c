import { Kvm } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { MESSAGE_TYPES, meshBuckets, type MeshSubjects, type OpenedFrame, StatelessVerifier } from '@trustmesh/protocol';
import { isAgentId } from './control.ts';

/** Presence frames larger than this are not read (the client's default presence limit). */
const MAX_PRESENCE_BYTES = 8 * 1024;

/**
 * The agents an operator expects to answer: the presence registry read once,
 * then kept current from live presence frames (each verified: signature and
 * subject; a frame applies only if newer than the last one for its signer).
 * A registry read races with heartbeats rewriting records; a record it misses
 * comes back with that agent's next heartbeat.
 */
export class PresenceView {
  private readonly last = new Map<string, { iat: number; leave: boolean }>();
  private readonly verifier = new StatelessVerifier({ maxFrameBytes: MAX_PRESENCE_BYTES });
  private subscription: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly mesh: string,
    private readonly subjects: MeshSubjects,
    private readonly self: string,
  ) {}

  async start(): Promise<void> {
    this.subscription = this.nc.subscribe(this.subjects.presenceAll, {
      callback: (err, msg) => {
        if (err !== null || msg.data.length > MAX_PRESENCE_BYTES) return;
        try {
          const result = this.verifier.verify(msg.data, msg.subject);
          if (result.ok) this.apply(result.frame, result.route.from);
        } catch {
          // never let a frame stop the reader
        }
      },
    });
    await this.nc.flush();
    try {
      const registry = await new Kvm(this.nc).open(meshBuckets(this.mesh).presence);
      if ((await registry.status()).values === 0) return;
      const watch = await registry.watch();
      for await (const entry of watch) {
        if (entry.operation === 'PUT' && isAgentId(entry.key)) {
          const result = this.verifier.verify(entry.value, this.subjects.presence(entry.key));
          if (result.ok) this.apply(result.frame, entry.key);
        }
        if ((entry.delta ?? 0) === 0) break;
      }
      watch.stop();
    } catch {
      // no registry (yet): live presence only
    }
  }

  private apply(frame: OpenedFrame, agentId: string): void {
    if (frame.typ !== MESSAGE_TYPES.presence || agentId === this.self) return;
    const status = (frame.data as { status?: unknown } | null)?.status;
    if (status !== 'join' && status !== 'alive' && status !== 'leave') return;
    const known = this.last.get(agentId);
    if (known !== undefined && known.iat >= frame.iat) return;
    this.last.set(agentId, { iat: frame.iat, leave: status === 'leave' });
  }

  /** Agents whose last presence is not a leave and was issued within `maxAgeMs`. */
  known(now: number, maxAgeMs: number): string[] {
    const out: string[] = [];
    for (const [agentId, { iat, leave }] of this.last) {
      if (iat < now - maxAgeMs) this.last.delete(agentId);
      else if (!leave) out.push(agentId);
    }
    return out;
  }

  stop(): void {
    this.subscription?.unsubscribe();
  }
}
