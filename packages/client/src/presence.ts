/** Self-description an agent announces when it joins (docs/protocol.md §9). */
export interface Lineage {
  model?: string;
  promptHash?: string;
  configHash?: string;
}

export type PresenceStatus = 'join' | 'alive' | 'leave';

export interface PeerInfo {
  did: string;
  agentId: string;
  name: string;
  version: string;
  capabilities: string[];
  lineage?: Lineage;
  /** When (ms) the last presence frame applied for this peer was issued (its `iat`). */
  iat: number;
  /** Receive time (ms) of the last verified presence frame (or registry read). */
  lastSeen: number;
}

/** The wire form of presence data (snake_case keys, as in the spec). */
export interface PresenceData {
  status: PresenceStatus;
  name: string;
  version: string;
  capabilities: string[];
  lineage?: { model?: string; prompt_hash?: string; config_hash?: string };
}

/** Normative claim bounds of docs/protocol.md §9 (UTF-16 units here are a lower bound of UTF-8 bytes; both are checked). */
export const PRESENCE_LIMITS = { name: 128, version: 64, capabilities: 256, capability: 128, lineageValue: 256 } as const;

export function presenceData(
  status: PresenceStatus,
  name: string,
  version: string,
  capabilities: string[],
  lineage?: Lineage,
): PresenceData {
  const data: PresenceData = { status, name, version, capabilities };
  if (lineage !== undefined) {
    data.lineage = {};
    if (lineage.model !== undefined) data.lineage.model = lineage.model;
    if (lineage.promptHash !== undefined) data.lineage.prompt_hash = lineage.promptHash;
    if (lineage.configHash !== undefined) data.lineage.config_hash = lineage.configHash;
  }
  return data;
}

const isShortText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max && Buffer.byteLength(v) <= max;

export interface ParsedPresence {
  status: PresenceStatus;
  name: string;
  version: string;
  capabilities: string[];
  lineage?: Lineage;
}

/** Validates peer-supplied presence data; undefined when malformed (signed is not the same as well formed). */
export function parsePresence(data: unknown): ParsedPresence | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const d = data as Record<string, unknown>;
  if (d.status !== 'join' && d.status !== 'alive' && d.status !== 'leave') return undefined;
  if (!isShortText(d.name, PRESENCE_LIMITS.name) || !isShortText(d.version, PRESENCE_LIMITS.version)) return undefined;
  if (
    !Array.isArray(d.capabilities) ||
    d.capabilities.length > PRESENCE_LIMITS.capabilities ||
    !d.capabilities.every((c) => isShortText(c, PRESENCE_LIMITS.capability))
  ) {
    return undefined;
  }
  const out: ParsedPresence = { status: d.status, name: d.name, version: d.version, capabilities: [...(d.capabilities as string[])] };
  if (d.lineage !== undefined && d.lineage !== null) {
    if (typeof d.lineage !== 'object' || Array.isArray(d.lineage)) return undefined;
    const l = d.lineage as Record<string, unknown>;
    const lineage: Lineage = {};
    for (const [wire, key] of [
      ['model', 'model'],
      ['prompt_hash', 'promptHash'],
      ['config_hash', 'configHash'],
    ] as const) {
      if (l[wire] === undefined) continue;
      if (!isShortText(l[wire], PRESENCE_LIMITS.lineageValue)) return undefined;
      lineage[key] = l[wire];
    }
    out.lineage = lineage;
  }
  return out;
}
