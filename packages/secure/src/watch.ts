import { PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { PermissionDeniedError } from './errors.ts';
import { inboxPrefix } from './names.ts';
import { PERMISSION_TABLE, type GrantContext, type Role } from './permissions.ts';

/** Who the refused connection is, to explain the refusal. */
export interface DeniedContext extends GrantContext {
  role: Role;
}

const AGENT_KINDS = PERMISSION_TABLE.agent.publish.filter((row) => row.subject.startsWith('tm.')).map((row) => row.subject.split('.')[2]!);

/** Says which rule of the permission table refused `subject` (docs/security.md). */
export function explainDenied(operation: 'publish' | 'subscribe', subject: string, context?: DeniedContext): string {
  if (context === undefined) return `it is not in this connection's ${operation} allow list (secure mode; see docs/security.md)`;
  const { mesh, agentId, role } = context;
  const root = `tm.${mesh}.`;
  const tokens = subject.split('.');
  if (role !== 'agent')
    return `role ${role} may not ${operation} there: it is not in the ${role} rows of the permission table (docs/security.md)`;
  if (operation === 'publish') {
    if (subject.startsWith('$JS.API.CONSUMER.CREATE.')) {
      return "agents may not create JetStream consumers (kv.watch, kv.keys): nats-server does not check a push consumer's deliver subject against its creator's permissions, so it could route stored records into other agents' subscriptions; read buckets with kv.get, and list them with STREAM.MSG.GET and next_by_subj";
    }
    if (subject.startsWith('$JS.API.DIRECT.GET.')) {
      return "agents may not use direct get: its answer is the stored bytes, published on a reply subject of the requester's choosing; use kv.get on a bucket opened without allow_direct (STREAM.MSG.GET)";
    }
    if (subject.startsWith('$JS.API.')) {
      return 'agents have read-only JetStream access to the buckets of their mesh and no stream or consumer admin API (creating, deleting or purging streams and buckets is for operators)';
    }
    if (subject.startsWith('$KV.'))
      return 'agents may read the KV buckets but not write them (the broker writes trust scores, operators write kill state)';
    if (!subject.startsWith(root)) return `this connection was admitted to mesh ${mesh} only, and may publish only under ${root}`;
    if (tokens[2] === 'ctl') return 'the control subjects (kill, revive) are for operators only';
    if (!AGENT_KINDS.includes(tokens[2]!)) {
      return `'${tokens[2]}' is not a kind an agent may publish (${AGENT_KINDS.join(', ')}); each kind is granted explicitly, never a wildcard over kinds`;
    }
    return `an agent may publish only on subjects whose last token is its own agent id (${agentId}), so the subject proves who published it; this subject's last token is ${tokens.at(-1)}`;
  }
  if (subject.startsWith(root) && tokens.length >= 4 && tokens[3] !== agentId && tokens[3] !== '*' && tokens[3] !== '>') {
    return `an agent may read only its own inbox (${root}*.${agentId}.*), never another agent's`;
  }
  if (subject.startsWith('_INBOX') || subject.startsWith('_tm.')) {
    return `reply inboxes are private: this connection's is ${inboxPrefix(mesh, agentId)}.> (set as inboxPrefix by secureConnectOptions)`;
  }
  const allowed = PERMISSION_TABLE.agent.subscribe.map((row) => row.subject.replaceAll('{mesh}', mesh).replaceAll('{self}', agentId));
  return `an agent may subscribe only to ${allowed.join(', ').replace('{inbox}', inboxPrefix(mesh, agentId))}`;
}

/** The typed form of a nats.js permission violation, or `undefined` for any other error. */
export function toPermissionDenied(error: unknown, context?: DeniedContext): PermissionDeniedError | undefined {
  if (!(error instanceof PermissionViolationError)) return undefined;
  const operation = error.operation === 'publish' ? 'publish' : 'subscribe';
  return new PermissionDeniedError(operation, error.subject, explainDenied(operation, error.subject, context), { cause: error });
}

/**
 * Watches a connection for permission violations the server reports (a
 * refused publish or subscription does not throw where it was called: NATS
 * reports it asynchronously) and hands each to `onDenied` as a
 * {@link PermissionDeniedError} that says what was refused and why. Returns a
 * function that stops watching.
 */
export function watchPermissionErrors(
  nc: NatsConnection,
  onDenied: (error: PermissionDeniedError) => void,
  context?: DeniedContext,
): () => void {
  const statuses = nc.status();
  let stopped = false;
  void (async () => {
    for await (const status of statuses) {
      if (stopped) break;
      if (status.type !== 'error') continue;
      const denied = toPermissionDenied(status.error, context);
      if (denied !== undefined) onDenied(denied);
    }
  })();
  return () => {
    stopped = true;
    (statuses as { stop?: () => void }).stop?.();
  };
}
