import type { NatsConnection } from '@nats-io/transport-node';
import { type AgentKey, type SignedFrame, signFrame } from '@trustmesh/protocol';
import { AgentClosedError, FrameTooLargeError } from './errors.ts';
import type { OutboundGuard, OutboundMessage } from './extensions.ts';
import type { Ledger } from './ledger.ts';

export interface FrameFields {
  typ: string;
  data?: unknown;
  aud?: string;
  cor?: Uint8Array;
}

/**
 * The only way out: outbound guards, then sign, size check and publish. Every
 * frame an agent sends passes here.
 */
export class Outbound {
  private readonly guards: OutboundGuard[] = [];
  closed = false;

  constructor(
    private readonly key: AgentKey,
    private readonly nc: NatsConnection,
    private readonly maxFrameBytes: number,
    private readonly ledger: Ledger,
  ) {}

  addGuard(guard: OutboundGuard): void {
    this.guards.push(guard);
  }

  /** Runs the outbound guards; a guard refuses by throwing its typed error. */
  check(message: OutboundMessage): void {
    for (const guard of this.guards) guard(message);
  }

  /** Guards, then sign and publish. Returns the signed body (its id identifies a request). */
  send(subject: string, message: OutboundMessage, fields: FrameFields): SignedFrame {
    this.check(message);
    return this.publish(subject, fields);
  }

  /** Sign and publish without guards: for the agent's own protocol traffic (presence, leave) and extensions' control frames. */
  publish(subject: string, fields: FrameFields): SignedFrame {
    if (this.closed) throw new AgentClosedError();
    const signed = signFrame(this.key, { sub: subject, ...fields });
    const bytes = signed.bytes;
    if (bytes.length > this.maxFrameBytes) throw new FrameTooLargeError(bytes.length, this.maxFrameBytes);
    this.nc.publish(subject, bytes);
    this.ledger.counters.sent++;
    return signed;
  }
}
