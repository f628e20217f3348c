import type { Permissions } from '@nats-io/jwt';
import { inboxPrefix, meshResources } from './names.ts';
import { invalid } from './errors.ts';

/**
 * THE permission table of secure mode: every subject each role may publish or
 * subscribe to, as data. `renderPermissions` turns a row set into the `pub` and
 * `sub` allow lists of a user JWT; docs/security.md shows the same table (a
 * test checks that they agree). Anything not listed is refused by nats-server.
 *
 * Placeholders: `{mesh}` the mesh name, `{self}` the connection's agent id
 * (`z6Mk…`, the last token of every subject it publishes), `{inbox}` its private
 * reply inbox `_tm.{mesh}.inbox.{self}`, `{KV}` each read-only bucket's stream
 * (`KV_tm_{mesh}_presence`, `KV_tm_{mesh}_trust`, `KV_tm_{mesh}_kill`),
 * `{trust}` / `{kill}` / `{presence}` one bucket, `{AUDIT}` each stream of the audit
 * service (`meshResources(mesh).auditStreams`).
 */
export const ROLES = ['agent', 'operator', 'broker', 'audit'] as const;
export type Role = (typeof ROLES)[number];

export interface Grant {
  readonly subject: string;
  readonly why: string;
}

export interface RoleGrants {
  /** The role's connection also joins the mesh as an agent: it gets every agent row too. */
  readonly joinsAsAgent?: boolean;
  readonly publish: readonly Grant[];
  readonly subscribe: readonly Grant[];
}

/**
 * Read-only JetStream KV access, verified against nats.js v3 (`Kvm.create` of an
 * existing bucket, `Kvm.open`, `kv.get`) by test/permissions.spec.ts. Listing a
 * bucket works with `STREAM.MSG.GET` and `next_by_subj`.
 *
 * Every JetStream API request names its own reply subject, and nats-server 2.9
 * publishes the answer there without checking it against the requester's
 * permissions: an agent can make the server publish on ANY subject, another
 * agent's included. So agents get only API calls whose answers are JSON
 * documents (never frame bytes: a frame starts with version byte 1, JSON with
 * `{`), and receivers must blame nobody for bytes that are not a frame.
 * Deliberately NOT granted, for that reason (tests in permissions.spec.ts):
 * - `$JS.API.DIRECT.GET.*`: answers with the stored bytes themselves, which an
 *   agent chooses (its presence record), so it could publish any bytes under
 *   another agent's id;
 * - `$JS.API.CONSUMER.CREATE.*` (`kv.watch`, `kv.keys`): a push consumer's
 *   deliver subject is not checked either, and it repeats deliveries.
 */
const kvRead: readonly Grant[] = [
  { subject: '$JS.API.INFO', why: 'nats.js `Kvm.create` checks the JetStream account first' },
  { subject: '$JS.API.STREAM.INFO.{KV}', why: '`Kvm.create` of an existing bucket and `kv.status` read its configuration' },
  { subject: '$JS.API.STREAM.MSG.GET.{KV}', why: 'kv.get (a bucket opened without `allow_direct`), and listing with `next_by_subj`' },
];

export const PERMISSION_TABLE: Readonly<Record<Role, RoleGrants>> = {
  agent: {
    publish: [
      { subject: 'tm.{mesh}.presence.{self}', why: 'its own presence (join, alive, leave)' },
      { subject: 'tm.{mesh}.msg.*.{self}', why: 'one-way messages it sends' },
      { subject: 'tm.{mesh}.req.*.{self}', why: 'requests it sends' },
      { subject: 'tm.{mesh}.rep.*.{self}', why: 'replies it sends' },
      { subject: '$KV.{presence}.{self}', why: 'its own signed record in the presence registry (key = its agent id)' },
      // ---- kinds of the kill switch, breakers, trust and delegation packages: same rule ----
      { subject: 'tm.{mesh}.ack.*.{self}', why: 'its signed "halted" acknowledgement, to the operator who killed (kill switch)' },
      { subject: 'tm.{mesh}.breaker.{self}', why: 'its breaker transitions (breakers)' },
      { subject: 'tm.{mesh}.rules.{self}', why: 'its declared policy rules, which its trust reports cite (trust)' },
      { subject: 'tm.{mesh}.task.*.{self}', why: 'task frames to one agent (delegation)' },
      { subject: 'tm.{mesh}.ctask.*.{self}', why: 'task offers to a capability, served by a queue group (delegation)' },
      // ---- read-only JetStream state ----
      ...kvRead,
    ],
    subscribe: [
      { subject: 'tm.{mesh}.*.{self}.*', why: 'its own inbox: frames addressed to it' },
      { subject: 'tm.{mesh}.presence.*', why: 'presence of every agent' },
      { subject: 'tm.{mesh}.trust.*', why: 'trust score updates (signed by a broker)' },
      { subject: 'tm.{mesh}.ctl.*', why: 'kill and revive (signed by an operator)' },
      { subject: 'tm.{mesh}.ctask.*.*', why: 'task offers to the capabilities it serves (as a queue group)' },
      { subject: 'tm.{mesh}.rules.{self}', why: 'its own rules declaration, read back for the exact bytes its reports carry' },
      { subject: '{inbox}.>', why: 'its JetStream API replies, to it only' },
    ],
  },
  operator: {
    joinsAsAgent: true,
    publish: [
      { subject: 'tm.{mesh}.ctl.{self}', why: 'kill and revive snapshots it signs' },
      { subject: '$JS.API.>', why: 'the JetStream admin API: create the buckets and streams, and delete them' },
      { subject: '$KV.{kill}.>', why: 'write kill state' },
      { subject: '$JS.ACK.>', why: 'acknowledge consumers it reads with' },
    ],
    subscribe: [
      { subject: 'tm.{mesh}.>', why: 'observe the whole mesh (status, halted acks)' },
      { subject: '{inbox}.>', why: 'its JetStream API replies' },
    ],
  },
  broker: {
    joinsAsAgent: true,
    publish: [
      { subject: 'tm.{mesh}.trust.{self}', why: 'signed score updates' },
      { subject: '$KV.{trust}.>', why: 'write scores' },
      { subject: '$JS.API.INFO', why: 'JetStream account check' },
      { subject: '$JS.API.STREAM.CREATE.KV_{trust}', why: 'create its bucket (no delete, no purge)' },
      { subject: '$JS.API.STREAM.INFO.KV_{trust}', why: 'open its bucket' },
      { subject: '$JS.API.STREAM.MSG.GET.KV_{trust}', why: 'read scores' },
      { subject: '$JS.API.DIRECT.GET.KV_{trust}.>', why: 'read scores' },
      { subject: '$JS.API.CONSUMER.CREATE.KV_{trust}.>', why: 'watch scores' },
      { subject: '$JS.API.CONSUMER.INFO.KV_{trust}.*', why: 'list scored agents (kv.keys)' },
      { subject: '$JS.API.STREAM.INFO.{AUDIT}', why: 'evidence: the audit capture stream (read only)' },
      { subject: '$JS.API.STREAM.MSG.GET.{AUDIT}', why: 'evidence: a captured frame at the position a report cites' },
    ],
    subscribe: [
      { subject: 'tm.{mesh}.>', why: 'evidence: the mesh traffic it scores' },
      { subject: '{inbox}.>', why: 'its JetStream API replies' },
    ],
  },
  audit: {
    publish: [
      { subject: 'tm.{mesh}.audit.{self}', why: 'signed checkpoints' },
      { subject: 'tmaudit.{mesh}.>', why: 'its JetStream store: log records and stored checkpoints (outside the mesh root)' },
      { subject: '$JS.API.INFO', why: 'JetStream account check' },
      { subject: '$JS.API.STREAM.CREATE.{AUDIT}', why: 'create its streams (no delete, no purge)' },
      { subject: '$JS.API.STREAM.INFO.{AUDIT}', why: 'read its streams' },
      { subject: '$JS.API.STREAM.MSG.GET.{AUDIT}', why: 'read one record' },
      { subject: '$JS.API.DIRECT.GET.{AUDIT}.>', why: 'read one record' },
      { subject: '$JS.API.CONSUMER.CREATE.{AUDIT}.>', why: 'its durable consumer' },
      { subject: '$JS.API.CONSUMER.DURABLE.CREATE.{AUDIT}.>', why: 'its durable consumer (older API form)' },
      { subject: '$JS.API.CONSUMER.INFO.{AUDIT}.>', why: 'resume: where its consumer stands' },
      { subject: '$JS.API.CONSUMER.DELETE.{AUDIT}.>', why: 'recreate its consumer when it is ahead of the store' },
      { subject: '$JS.API.CONSUMER.MSG.NEXT.{AUDIT}.>', why: 'pull records' },
      { subject: '$JS.ACK.{AUDIT}.>', why: 'acknowledge records' },
    ],
    subscribe: [
      { subject: 'tm.{mesh}.audit.>', why: 'checkpoints' },
      { subject: '{inbox}.>', why: 'its JetStream API replies and pulled records' },
    ],
  },
};

/** Who a rendered permission set is for. */
export interface GrantContext {
  mesh: string;
  /** The connection's agent id (`z6Mk…`). */
  agentId: string;
}

const AGENT_ID = /^z[1-9A-HJ-NP-Za-km-z]{40,60}$/;

/** One row's subjects for this mesh and agent (`{KV}` expands to one subject per read-only bucket). */
export function renderSubject(pattern: string, context: GrantContext): string[] {
  const names = meshResources(context.mesh);
  if (!AGENT_ID.test(context.agentId)) invalid(`agentId must be a did:key agent id (z6Mk…), got ${String(context.agentId).slice(0, 80)}`);
  const one = pattern
    .replaceAll('{inbox}', inboxPrefix(context.mesh, context.agentId))
    .replaceAll('{mesh}', context.mesh)
    .replaceAll('{self}', context.agentId)
    .replaceAll('{presence}', names.presenceBucket)
    .replaceAll('{trust}', names.trustBucket)
    .replaceAll('{kill}', names.killBucket);
  if (one.includes('{KV}')) return names.agentBuckets.map((bucket) => one.replaceAll('{KV}', `KV_${bucket}`));
  if (one.includes('{AUDIT}')) return names.auditStreams.map((stream) => one.replaceAll('{AUDIT}', stream));
  return [one];
}

/** The rows of a role (and the agent's rows, if it joins as an agent) as NATS allow lists. */
export function renderPermissions(role: Role, context: GrantContext): Required<Pick<Permissions, 'pub' | 'sub'>> {
  const grants = PERMISSION_TABLE[role];
  if (grants === undefined) invalid(`role must be one of ${ROLES.join(', ')} (got ${String(role).slice(0, 40)})`);
  const render = (rows: readonly Grant[]) => [...new Set(rows.flatMap((row) => renderSubject(row.subject, context)))];
  const agent = grants.joinsAsAgent === true ? PERMISSION_TABLE.agent : { publish: [], subscribe: [] };
  return {
    pub: { allow: render([...agent.publish, ...grants.publish]), deny: [] },
    sub: { allow: render([...agent.subscribe, ...grants.subscribe]), deny: [] },
  };
}

/** The table as Markdown, as docs/security.md shows it. */
export function permissionTableMarkdown(): string {
  const lines = ['| role | may | subject | why |', '| --- | --- | --- | --- |'];
  for (const role of ROLES) {
    if (PERMISSION_TABLE[role].joinsAsAgent === true) {
      lines.push(`| ${role} | publish, subscribe | every agent row | it also joins the mesh as an agent, with its own key |`);
    }
    for (const [may, rows] of [
      ['publish', PERMISSION_TABLE[role].publish],
      ['subscribe', PERMISSION_TABLE[role].subscribe],
    ] as const) {
      for (const row of rows) lines.push(`| ${role} | ${may} | \`${row.subject}\` | ${row.why} |`);
    }
  }
  return lines.join('\n');
}
