/** A raw NATS subscriber that records what went over the wire: the attacker's and the auditor's view. */
import type { Msg, NatsConnection } from '@nats-io/transport-node';

export interface CapturedMessage {
  subject: string;
  data: Uint8Array;
}

/** A raw subscriber that records every message on `subject` (wildcards allowed). */
export interface Capture {
  readonly messages: CapturedMessage[];
  /** The next message (already received or still to come) that passes `filter`. */
  next(filter?: (m: CapturedMessage) => boolean, timeoutMs?: number): Promise<CapturedMessage>;
  stop(): void;
}

export async function capture(nc: NatsConnection, subject: string): Promise<Capture> {
  const messages: CapturedMessage[] = [];
  const waiters = new Set<() => void>();
  const sub = nc.subscribe(subject, {
    callback: (err: Error | null, msg: Msg) => {
      if (err !== null) return;
      messages.push({ subject: msg.subject, data: new Uint8Array(msg.data) });
      for (const wake of waiters) wake();
    },
  });
  await nc.flush(); // the server knows the subscription before the test publishes
  let consumed = 0;
  return {
    messages,
    next(filter = () => true, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const look = (): boolean => {
          while (consumed < messages.length) {
            const m = messages[consumed++]!;
            if (filter(m)) {
              resolve(m);
              return true;
            }
          }
          return false;
        };
        if (look()) return;
        const wake = () => {
          if (look()) done();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a message on ${subject}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        waiters.add(wake);
      });
    },
    stop() {
      sub.unsubscribe();
    },
  };
}
