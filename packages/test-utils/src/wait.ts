/** Bounded waiting: every wait in the integration tests ends, with a message naming what never happened. */
import type { Agent, AgentEvents } from '@trustmesh/client';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; throws after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Resolves with the arguments of the next `event` of `agent` that passes
 * `filter`; rejects after `timeoutMs`.
 */
export function nextEvent<K extends keyof AgentEvents>(
  agent: Agent,
  event: K,
  filter: (...args: Parameters<AgentEvents[K]>) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<Parameters<AgentEvents[K]>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(event)} on ${agent.name}`));
    }, timeoutMs);
    const listener = (...args: Parameters<AgentEvents[K]>) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    };
    const off = agent.on(event, listener as unknown as AgentEvents[K]);
  });
}
