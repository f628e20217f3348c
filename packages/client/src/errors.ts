import { TrustMeshError } from '@trustmesh/protocol';
import { cleanText } from './text.ts';

/** A request got no verified reply in time. */
export class RequestTimeoutError extends TrustMeshError {
  declare readonly code: 'timeout';
  constructor(
    readonly to: string,
    readonly typ: string,
    readonly timeoutMs: number,
  ) {
    super('timeout', `no verified reply from ${to} to '${typ}' within ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

const REMOTE_CODE = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The peer answered with a signed `tm.error` reply. `code` is always
 * `remote_error`, so a peer cannot make its answer look like a local failure
 * (`timeout`, `closed`); what the peer said is in `remoteCode` and `remoteMessage`,
 * bounded and with control characters escaped.
 */
export class RemoteError extends TrustMeshError {
  declare readonly code: 'remote_error';
  constructor(
    /** The peer's code (e.g. `no_handler`, `handler_error`, `busy`), or `malformed` when its data had no usable code. */
    readonly remoteCode: string,
    readonly remoteMessage: string,
    /** DID of the peer that signed the reply. */
    readonly from: string,
  ) {
    super('remote_error', `${from} answered ${remoteCode}: ${remoteMessage}`);
    this.name = 'RemoteError';
  }

  /** Reads `tm.error` data (docs/protocol.md §10); malformed data is an error too, with `remoteCode` `malformed`. */
  static fromReply(data: unknown, from: string): RemoteError {
    const d = data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
    const code = d.code;
    const message = d.message;
    if (typeof code !== 'string' || !REMOTE_CODE.test(code) || typeof message !== 'string') {
      return new RemoteError('malformed', 'the peer answered tm.error without a {code, message} map', from);
    }
    return new RemoteError(code, cleanText(message), from);
  }
}

/** The agent has left the mesh (or is leaving); nothing more can be sent. */
export class AgentClosedError extends TrustMeshError {
  declare readonly code: 'closed';
  constructor(message = 'agent has left the mesh') {
    super('closed', message);
    this.name = 'AgentClosedError';
  }
}

/** A frame would exceed the mesh's frame size limit; it was not sent. */
export class FrameTooLargeError extends TrustMeshError {
  declare readonly code: 'frame_too_large';
  constructor(size: number, limit: number) {
    super('frame_too_large', `frame of ${size} bytes exceeds the limit of ${limit} bytes; send less data per message`);
    this.name = 'FrameTooLargeError';
  }
}

/** An outbound guard refused a send; `code` is the guard's (e.g. `not_allowed` in the test guard). */
export class SendRefusedError extends TrustMeshError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'SendRefusedError';
  }
}
