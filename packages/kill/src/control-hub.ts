import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { InboundFrame } from '@trustmesh/client';
import { byteKey, FrameVerifier, HEADER_LENGTH, meshSubjects, tryPublicKeyFromDid } from '@trustmesh/protocol';
import { CONTROL_KIND, KILL_REFUSALS } from './control.ts';

/** Control frames are small (a snapshot of at most 4,096 agent ids is about 200 KiB). */
export const MAX_CONTROL_BYTES = 256 * 1024;

/** A refusal before any kill switch looked at the frame (size, key, wire rules). */
export interface HubRefusal {
  reason: string;
  detail: string;
  subject: string;
  signer?: string;
}

/** A kill switch, as the hub sees it. */
export interface HubMember {
  readonly operators: ReadonlySet<string>;
  /** A frame that passed every wire rule (stateless and stateful), signed by one of the hub's operator keys. */
  deliver(input: InboundFrame): void;
  /** Told of a refusal only if it listens (`wantsRefusals`); counted by the hub either way. */
  refused(refusal: HubRefusal): void;
  readonly wantsRefusals: boolean;
}

const hubs = new WeakMap<NatsConnection, Map<string, ControlHub>>();

/**
 * The control subject `tm.<mesh>.ctl.*` for every kill switch of one (connection,
 * mesh): one subscription, one verifier, each control frame verified once however
 * many agents share the connection, then handed to each switch.
 *
 * Control frames do not go through the agents' intake: its verification budget
 * for unknown keys (an operator does not announce presence, so its key is
 * unknown) is shared by the whole process, and a flood of frames from fresh keys
 * must not make an agent drop a kill. Here the header key is checked first: a
 * frame whose key is not an operator's is refused for a map lookup, unverified.
 * Then the agents' own rules (docs/protocol.md §7): signature, body, subject,
 * window, replay memory, and nothing issued before the hub started.
 */
export class ControlHub {
  /** Refusals by reason, counted once per frame (not per switch). */
  readonly refusals = new Map<string, number>();
  private readonly members = new Set<HubMember>();
  /** Operator header keys (byteKey of the public key) -> how many members list them. */
  private readonly operatorKeys = new Map<string, number>();
  private readonly operatorIds = new Set<string>();
  private readonly verifier: FrameVerifier;
  private subscription: Subscription | undefined;
  readonly ready: Promise<void>;

  private constructor(
    private readonly nc: NatsConnection,
    mesh: string,
    private readonly release: () => void,
  ) {
    this.verifier = new FrameVerifier({
      maxFrameBytes: MAX_CONTROL_BYTES,
      notBefore: Date.now(),
      isKnown: (agentId) => this.operatorIds.has(agentId),
    });
    this.subscription = nc.subscribe(meshSubjects(mesh).broadcast(CONTROL_KIND, '*'), {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          this.onFrame(msg.subject, msg.data);
        } catch {
          // nothing may escape into nats.js
        }
      },
    });
    this.ready = nc.flush();
  }

  /** The hub of (nc, mesh), created on first use; `member` is served until {@link detach}. */
  static attach(nc: NatsConnection, mesh: string, member: HubMember): ControlHub {
    let byMesh = hubs.get(nc);
    if (byMesh === undefined) hubs.set(nc, (byMesh = new Map()));
    let hub = byMesh.get(mesh);
    if (hub === undefined) {
      const own = byMesh;
      hub = new ControlHub(nc, mesh, () => own.delete(mesh));
      byMesh.set(mesh, hub);
    }
    hub.members.add(member);
    for (const did of member.operators) {
      const key = byteKey(tryPublicKeyFromDid(did)!);
      hub.operatorKeys.set(key, (hub.operatorKeys.get(key) ?? 0) + 1);
      hub.operatorIds.add(did.slice('did:key:'.length));
    }
    return hub;
  }

  async detach(member: HubMember): Promise<void> {
    if (!this.members.delete(member)) return;
    for (const did of member.operators) {
      const key = byteKey(tryPublicKeyFromDid(did)!);
      const n = (this.operatorKeys.get(key) ?? 1) - 1;
      if (n > 0) this.operatorKeys.set(key, n);
      else {
        this.operatorKeys.delete(key);
        this.operatorIds.delete(did.slice('did:key:'.length));
      }
    }
    if (this.members.size > 0) return;
    this.release();
    const subscription = this.subscription;
    this.subscription = undefined;
    if (!this.nc.isClosed()) await subscription?.drain().catch(() => undefined);
  }

  private onFrame(subject: string, data: Uint8Array): void {
    if (data.length > MAX_CONTROL_BYTES) {
      this.refuse({ reason: 'too_large', detail: `control frame of ${data.length} bytes > ${MAX_CONTROL_BYTES}`, subject });
      return;
    }
    if (data.length < HEADER_LENGTH + 1 || !this.operatorKeys.has(byteKey(data.subarray(1, 33)))) {
      // Not even claimed by an operator key: refused unverified (nobody is blamed).
      this.refuse({ reason: 'not_operator', detail: `${KILL_REFUSALS.not_operator} (header key, not verified)`, subject });
      return;
    }
    const result = this.verifier.verify(data, { subject });
    if (!result.ok) {
      this.refuse({
        reason: result.reason,
        detail: result.detail,
        subject,
        ...(result.signedBy !== undefined && { signer: result.signedBy }),
      });
      return;
    }
    const input: InboundFrame = { frame: result.frame, route: result.route, subject };
    for (const member of this.members) {
      try {
        member.deliver(input);
      } catch {
        // a switch's failure is its own
      }
    }
  }

  private refuse(refusal: HubRefusal): void {
    this.refusals.set(refusal.reason, (this.refusals.get(refusal.reason) ?? 0) + 1);
    for (const member of this.members) if (member.wantsRefusals) member.refused(refusal);
  }
}
