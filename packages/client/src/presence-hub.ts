import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { FrameVerifier, subjects, type VerifyResult } from '@trustmesh/protocol';

/** An agent, as far as the hub is concerned. */
export interface PresenceListener {
  onPresenceResult(subject: string, size: number, result: VerifyResult): void;
}

export interface PresenceHubSettings {
  mesh: string;
  maxFrameBytes: number;
  windowMs?: number;
  maxReplayEntries?: number;
  /** An injected clock makes the hub private to its agent. */
  now?: () => number;
}

const shared = new WeakMap<NatsConnection, Map<string, PresenceHub>>();

/**
 * One presence subscription and one verifier per (connection, mesh, verifier
 * settings). Presence is broadcast: with N agents on one connection, each
 * frame would otherwise be verified N times and a mesh of N joining agents
 * would cost N² signature checks in one process. The hub verifies each frame
 * once (one replay memory, as for one receiver) and hands the result to every
 * local agent.
 */
export class PresenceHub {
  private readonly listeners = new Set<PresenceListener>();
  private readonly verifier: FrameVerifier;
  private readonly subscription: Subscription;

  private constructor(
    nc: NatsConnection,
    settings: PresenceHubSettings,
    private readonly release: () => void,
  ) {
    this.verifier = new FrameVerifier({
      maxFrameBytes: settings.maxFrameBytes,
      ...(settings.windowMs !== undefined && { windowMs: settings.windowMs }),
      ...(settings.maxReplayEntries !== undefined && { maxEntries: settings.maxReplayEntries }),
      ...(settings.now !== undefined && { now: settings.now }),
    });
    this.subscription = nc.subscribe(subjects.presenceAll(settings.mesh), {
      callback: (err, msg) => {
        if (err !== null) return; // subscription closed; nothing was delivered
        const result = this.verifier.verify(msg.data, { subject: msg.subject });
        for (const listener of this.listeners) listener.onPresenceResult(msg.subject, msg.data.length, result);
      },
    });
  }

  /** The hub for this connection and settings, created on first use. */
  static attach(nc: NatsConnection, settings: PresenceHubSettings, listener: PresenceListener): PresenceHub {
    if (settings.now !== undefined) {
      const hub = new PresenceHub(nc, settings, () => undefined);
      hub.listeners.add(listener);
      return hub;
    }
    const key = [settings.mesh, settings.maxFrameBytes, settings.windowMs ?? '', settings.maxReplayEntries ?? ''].join('\u0000');
    let hubs = shared.get(nc);
    if (hubs === undefined) shared.set(nc, (hubs = new Map()));
    let hub = hubs.get(key);
    if (hub === undefined) {
      const registry = hubs;
      hub = new PresenceHub(nc, settings, () => registry.delete(key));
      hubs.set(key, hub);
    }
    hub.listeners.add(listener);
    return hub;
  }

  /** Stops delivering to `listener`; the last one out closes the subscription. */
  async detach(listener: PresenceListener): Promise<void> {
    this.listeners.delete(listener);
    if (this.listeners.size > 0) return;
    this.release();
    await this.subscription.drain().catch(() => undefined);
  }
}
