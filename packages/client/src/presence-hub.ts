import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { FrameVerifier, MESSAGE_TYPES, meshBuckets, meshSubjects, type OpenedFrame, type MeshSubjects } from '@trustmesh/protocol';
import { readBucket } from '@trustmesh/secure';
import { publisherOf, type RejectionEvent } from './ledger.ts';
import { Intake } from './intake.ts';
import { parsePresence, type PeerInfo, type PresenceStatus } from './presence.ts';
import { replicasFor } from './replicas.ts';

export interface PresenceSettings {
  mesh: string;
  /** Presence frames larger than this are refused unread (much smaller than the message limit); default 8 KiB. */
  maxPresenceBytes: number;
  /** Mean interval of `alive` heartbeats; each is jittered by ±20 %. Default 15 s. */
  heartbeatMs: number;
  /** A peer silent for this long is expired (`peerLeft` with reason `expired`). Default 3 heartbeats. */
  expiryMs: number;
  /** Most peers tracked; past it the least recently seen is evicted. Default 65,536. */
  maxPeers: number;
  /** Read and write the JetStream KV presence registry (when the server has JetStream). Default true. */
  registry: boolean;
  /** Secure mode: agents may not create consumers, so the registry is read record by record. */
  secure: boolean;
  windowMs?: number;
  maxReplayEntries?: number;
  now: () => number;
}

export const DEFAULT_PRESENCE = {
  maxPresenceBytes: 8 * 1024,
  heartbeatMs: 15_000,
  maxPeers: 65_536,
} as const;

/** A local agent, as the hub sees it. */
export interface PresenceMember {
  readonly agentId: string;
  /** The agent's public key as a latin1 string (the intake's key id). */
  readonly keyId: string;
  /** Signs and publishes a presence frame; returns its bytes (for the registry), or undefined if it could not be sent. */
  announce(status: PresenceStatus): Uint8Array | undefined;
  peerJoined(peer: PeerInfo): void;
  peerLeft(peer: PeerInfo, reason: 'leave' | 'expired' | 'evicted'): void;
  rejected(event: RejectionEvent): void;
}

interface Peer extends PeerInfo {
  keyId: string;
}

export interface PresenceStats {
  received: number;
  accepted: number;
  rejected: Map<string, number>;
  registryReads: number;
}

const hubs = new WeakMap<NatsConnection, Map<string, PresenceHub>>();

/**
 * Presence for every agent of one (connection, mesh): one subscription, one
 * verifier, one peer directory and one timer, however many local agents.
 *
 * Work is O(joins) per process, never O(agents x joins): nobody answers a join.
 * A joiner reads the JetStream KV registry of signed presence records once
 * (each record verified once, statelessly), and learns later changes from live
 * presence frames, each verified once per process. Heartbeats keep peers alive
 * and refresh the registry; silent peers expire. A presence frame applies only
 * if its `iat` is newer than the last one applied for its signer, and a leave
 * or expiry leaves a tombstone for one window, so replayed old joins and leaves
 * change nothing. The directory is capped (least recently seen goes first).
 * See docs/decisions/0015-presence-registry.md.
 */
export class PresenceHub {
  readonly stats: PresenceStats = { received: 0, accepted: 0, rejected: new Map(), registryReads: 0 };
  private readonly members = new Map<string, { member: PresenceMember; nextBeat: number; beats: number }>();
  /** Members with listeners for peer or rejection events: only they are told (10,000 silent agents cost nothing per join). */
  private readonly listeners = new Set<PresenceMember>();
  private readonly directory = new Map<string, Peer>();
  private readonly keyIds = new Set<string>();
  /** Header keys of the local agents: their own frames are never "unknown" here. */
  private readonly memberKeys = new Set<string>();
  private readonly tombstones = new Map<string, number>();
  private readonly verifier: FrameVerifier;
  private readonly subjects: MeshSubjects;
  private readonly intake: Intake;
  private subscription: Subscription | undefined;
  private ready: Promise<void> = Promise.resolve();
  private registry: KV | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Set when the registry could not be used (no JetStream): a warning for whoever asks. */
  registryProblem: string | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly settings: PresenceSettings,
    private readonly release: () => void,
  ) {
    this.subjects = meshSubjects(settings.mesh);
    this.verifier = new FrameVerifier({
      maxFrameBytes: settings.maxPresenceBytes,
      now: settings.now,
      isKnown: (agentId) => this.directory.has(agentId),
      ...(settings.windowMs !== undefined && { windowMs: settings.windowMs }),
      ...(settings.maxReplayEntries !== undefined && { maxEntries: settings.maxReplayEntries }),
    });
    this.intake = new Intake(
      (subject, data) => this.onFrame(subject, data),
      (subject, data, detail) =>
        this.refuse({
          reason: 'overloaded',
          detail,
          subject,
          size: data.length,
          blame: 'none',
          ...publisherOf(subject, this.settings.secure),
        }),
      (keyId) => this.keyIds.has(keyId) || this.memberKeys.has(keyId),
    );
  }

  /** The hub for this connection and mesh settings, created (subscribed, registry read) on first use. */
  static async attach(nc: NatsConnection, settings: PresenceSettings, member: PresenceMember, shareable: boolean): Promise<PresenceHub> {
    const key = [
      settings.mesh,
      settings.maxPresenceBytes,
      settings.heartbeatMs,
      settings.expiryMs,
      settings.maxPeers,
      settings.registry,
      settings.windowMs ?? '',
      settings.maxReplayEntries ?? '',
    ].join('\u0000');
    let registry = hubs.get(nc);
    if (registry === undefined) hubs.set(nc, (registry = new Map()));
    let hub = shareable ? registry.get(key) : undefined;
    if (hub === undefined) {
      const own = registry;
      hub = new PresenceHub(nc, settings, shareable ? () => own.delete(key) : () => undefined);
      if (shareable) registry.set(key, hub);
      hub.ready = hub.start();
    }
    // Agents joining at the same time share one start: none may announce before the registry is open.
    await hub.ready;
    hub.members.set(member.agentId, { member, nextBeat: hub.nextBeat(), beats: 0 });
    hub.memberKeys.add(member.keyId);
    return hub;
  }

  /** Known peers' agent ids and header keys: the intake serves them first. */
  isPeer(agentId: string): boolean {
    return this.directory.has(agentId);
  }

  isPeerKey(keyId: string): boolean {
    return this.keyIds.has(keyId);
  }

  peers(except: string): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const peer of this.directory.values()) {
      if (peer.agentId === except) continue;
      const { keyId: _, ...info } = peer;
      out.push({ ...info, capabilities: [...info.capabilities] });
    }
    return out;
  }

  peer(agentId: string): PeerInfo | undefined {
    const peer = this.directory.get(agentId);
    if (peer === undefined) return undefined;
    const { keyId: _, ...info } = peer;
    return { ...info, capabilities: [...info.capabilities] };
  }

  get peerCount(): number {
    return this.directory.size;
  }

  /** Publishes `status` for a member and records it in the registry; resolves once the registry has it. */
  async announce(member: PresenceMember, status: PresenceStatus, toRegistry = true): Promise<void> {
    const bytes = member.announce(status);
    if (bytes === undefined || this.registry === undefined || !toRegistry) return;
    // The registry is an optimisation for joiners; a failed put is repaired by the next heartbeat.
    await this.registry.put(member.agentId, bytes).catch(() => undefined);
  }

  /** Stops serving `member`; the last one out closes the subscription and the timer. */
  /** `member` has listeners for peer or rejection events from now on. */
  listen(member: PresenceMember): void {
    if (this.members.has(member.agentId)) this.listeners.add(member);
  }

  async detach(member: PresenceMember): Promise<void> {
    this.members.delete(member.agentId);
    this.listeners.delete(member);
    this.memberKeys.delete(member.keyId);
    if (this.members.size > 0) return;
    this.release();
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.subscription?.drain().catch(() => undefined);
  }

  private async start(): Promise<void> {
    this.subscription = this.nc.subscribe(this.subjects.presenceAll, {
      callback: (err, msg) => {
        if (err !== null) return; // subscription closed; nothing was delivered
        try {
          this.stats.received++;
          // Checked before anything else, before the frame waits or is verified.
          if (msg.data.length > this.settings.maxPresenceBytes) {
            this.refuse({
              reason: 'too_large',
              detail: `presence frame of ${msg.data.length} bytes > ${this.settings.maxPresenceBytes}`,
              subject: msg.subject,
              size: msg.data.length,
              blame: 'publisher',
              ...publisherOf(msg.subject, this.settings.secure),
            });
            return;
          }
          this.intake.push(msg.subject, msg.data);
        } catch (err) {
          process.emitWarning(`presence callback failed: ${err instanceof Error ? err.message : typeof err}`, {
            code: 'TRUSTMESH_INTERNAL',
          });
        }
      },
    });
    if (this.settings.registry) await this.readRegistry();
    await this.nc.flush();
    const tickMs = Math.max(50, Math.min(1_000, Math.floor(this.settings.heartbeatMs / 4)));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  private async readRegistry(): Promise<void> {
    try {
      const kvm = new Kvm(this.nc);
      const name = meshBuckets(this.settings.mesh).presence;
      const ttl = Math.max(this.settings.expiryMs * 4, 60_000);
      this.registry = await kvm.create(name, { history: 1, ttl, replicas: replicasFor(this.nc) }).catch(() => kvm.open(name));
      const now = this.settings.now();
      for (const { key, value } of await this.readRecords(name)) {
        this.stats.registryReads++;
        this.fromRegistry(key, value, now);
      }
    } catch (err) {
      this.registry = undefined;
      this.registryProblem = `presence registry unavailable (${err instanceof Error ? err.message : typeof err}); peers are learnt from heartbeats only`;
    }
  }

  /**
   * The registry's last values. A watch (an ordered consumer) is fastest; secure
   * mode refuses agents consumers (their deliveries escape subject permissions),
   * so then the records are read one by one with the JSON-only stream API.
   */
  private async readRecords(bucket: string): Promise<Array<{ key: string; value: Uint8Array }>> {
    const registry = this.registry!;
    if (this.settings.secure) return readBucket(this.nc, bucket);
    try {
      const status = await registry.status();
      if (status.values === 0) return [];
      const records: Array<{ key: string; value: Uint8Array }> = [];
      const watch = await registry.watch();
      let seen = 0;
      const deadline = setTimeout(() => watch.stop(), 5_000);
      for await (const entry of watch) {
        seen++;
        if (entry.operation === 'PUT') records.push({ key: entry.key, value: entry.value });
        if (seen >= status.values || (entry.delta ?? 1) === 0) break;
      }
      clearTimeout(deadline);
      watch.stop();
      return records;
    } catch {
      return readBucket(this.nc, bucket);
    }
  }

  private fromRegistry(agentId: string, bytes: Uint8Array, now: number): void {
    // Stateless stage only: a record may be older than the window; order and liveness decide.
    const result = this.verifier.stateless.verify(bytes, this.subjects.presence(agentId));
    if (!result.ok) return;
    const presence = parsePresence(result.frame.data);
    if (presence === undefined || result.frame.typ !== MESSAGE_TYPES.presence || result.frame.aud !== undefined) return;
    if (presence.status === 'leave') {
      // A departed agent's last word: its tombstone stops a replayed older join.
      const agentIdOfSigner = result.frame.iss.slice('did:key:'.length);
      if ((this.tombstones.get(agentIdOfSigner) ?? -1) < result.frame.iat) this.tombstones.set(agentIdOfSigner, result.frame.iat);
      return;
    }
    if (result.frame.iat < now - this.settings.expiryMs) return;
    this.apply(result.frame, presence, result.frame.iat, result.signer.keyId, true);
  }

  private onFrame(subject: string, data: Uint8Array): void {
    const result = this.verifier.verify(data, { subject });
    if (!result.ok) {
      this.refuse({
        reason: result.reason,
        detail: result.detail,
        subject,
        size: data.length,
        blame: result.blame,
        ...(result.blame === 'signer' && result.signedBy !== undefined && { signer: result.signedBy, evidence: Uint8Array.from(data) }),
        ...publisherOf(subject, this.settings.secure),
      });
      return;
    }
    const frame = result.frame;
    const presence =
      frame.typ === MESSAGE_TYPES.presence && frame.aud === undefined && result.route.to === undefined
        ? parsePresence(frame.data)
        : undefined;
    if (presence === undefined) {
      this.refuse({
        reason: 'bad_frame',
        detail: 'presence frame with malformed data, wrong type or an aud',
        subject,
        size: data.length,
        blame: 'signer',
        signer: frame.iss,
        evidence: frame.raw,
        ...publisherOf(subject, this.settings.secure),
      });
      return;
    }
    this.apply(frame, presence, this.settings.now(), result.signer.keyId, false, subject);
  }

  private apply(
    frame: OpenedFrame,
    presence: NonNullable<ReturnType<typeof parsePresence>>,
    seenAt: number,
    keyId: string,
    fromRegistry: boolean,
    subject = '',
  ): void {
    const agentId = frame.iss.slice('did:key:'.length);
    const known = this.directory.get(agentId);
    const last = known?.iat ?? this.tombstones.get(agentId) ?? -1;
    if (frame.iat <= last) {
      if (!fromRegistry) {
        this.refuse({
          reason: 'stale',
          detail: 'older than the last presence applied for this agent',
          subject,
          size: frame.raw.length,
          blame: 'publisher',
          ...publisherOf(subject, this.settings.secure),
        });
      }
      return;
    }
    this.stats.accepted++;
    if (presence.status === 'leave') {
      this.tombstones.set(agentId, frame.iat);
      if (known !== undefined) this.remove(known, 'leave');
      return;
    }
    this.tombstones.delete(agentId);
    const peer: Peer = {
      did: frame.iss,
      agentId,
      name: presence.name,
      version: presence.version,
      capabilities: presence.capabilities,
      iat: frame.iat,
      lastSeen: seenAt,
      keyId,
      ...(presence.lineage !== undefined && { lineage: presence.lineage }),
    };
    // Re-inserting moves the peer to the end: the Map's order is least recently seen first.
    this.directory.delete(agentId);
    this.directory.set(agentId, peer);
    this.keyIds.add(keyId);
    if (known === undefined) {
      while (this.directory.size > this.settings.maxPeers) {
        const oldest = this.directory.values().next().value!;
        this.remove(oldest, 'evicted');
      }
      if (this.directory.has(agentId)) for (const member of this.listeners) if (member.agentId !== agentId) member.peerJoined(peer);
    }
  }

  private remove(peer: Peer, reason: 'leave' | 'expired' | 'evicted'): void {
    this.directory.delete(peer.agentId);
    this.keyIds.delete(peer.keyId);
    if (reason !== 'leave') this.tombstones.set(peer.agentId, peer.iat);
    for (const member of this.listeners) if (member.agentId !== peer.agentId) member.peerLeft(peer, reason);
  }

  private refuse(event: RejectionEvent): void {
    this.stats.rejected.set(event.reason, (this.stats.rejected.get(event.reason) ?? 0) + 1);
    for (const member of this.listeners) member.rejected(event);
  }

  private nextBeat(): number {
    return this.settings.now() + this.settings.heartbeatMs * (0.8 + 0.4 * Math.random());
  }

  private tick(): void {
    try {
      const now = this.settings.now();
      for (const [agentId, entry] of this.members) {
        if (entry.nextBeat > now) continue;
        entry.nextBeat = this.nextBeat();
        // The registry is refreshed every second heartbeat: a record is then at most about
        // 2.4 intervals old, inside the 3-interval expiry a joiner applies to it.
        entry.beats++;
        if (this.members.has(agentId)) void this.announce(entry.member, 'alive', entry.beats % 2 === 0);
      }
      for (const peer of this.directory.values()) {
        if (peer.lastSeen + this.settings.expiryMs < now && !this.members.has(peer.agentId)) this.remove(peer, 'expired');
      }
      const window = this.settings.windowMs ?? 30_000;
      for (const [agentId, iat] of this.tombstones) if (iat < now - window - this.settings.expiryMs) this.tombstones.delete(agentId);
    } catch (err) {
      process.emitWarning(`presence tick failed: ${err instanceof Error ? err.message : typeof err}`, { code: 'TRUSTMESH_INTERNAL' });
    }
  }
}
