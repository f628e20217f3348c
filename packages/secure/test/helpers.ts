/** Shared by the secure-mode specs: wait for the first permission error a connection reports. */
import type { NatsConnection } from '@nats-io/transport-node';
import { watchPermissionErrors, type DeniedContext, type PermissionDeniedError } from '../src/index.ts';

/** Collects every permission error of `nc`; `next()` waits (bounded) for the next one. */
export function deniedErrors(nc: NatsConnection, context?: DeniedContext) {
  const seen: PermissionDeniedError[] = [];
  const waiters: Array<() => void> = [];
  const stop = watchPermissionErrors(
    nc,
    (error) => {
      seen.push(error);
      for (const wake of waiters.splice(0)) wake();
    },
    context,
  );
  let consumed = 0;
  return {
    seen,
    stop,
    async next(timeoutMs = 3_000): Promise<PermissionDeniedError> {
      const deadline = Date.now() + timeoutMs;
      while (consumed >= seen.length) {
        if (Date.now() > deadline) throw new Error(`no permission error within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return seen[consumed++]!;
    },
  };
}

export { sleep } from '@trustmesh/test-utils';
