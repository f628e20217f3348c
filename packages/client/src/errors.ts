import { TrustMeshError } from '@trustmesh/protocol';

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

/** The peer answered with a signed `tm.error` reply. `code` is the peer's code (e.g. `no_handler`, `handler_error`). */
export class RemoteError extends TrustMeshError {
  constructor(
    code: string,
    message: string,
    readonly from: string,
  ) {
    super(code, `${from} answered ${code}: ${message}`);
    this.name = 'RemoteError';
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
