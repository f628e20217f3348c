/**
 * The `delegation` report claim: a capability link whose issuer signed more
 * than its parent grants (docs/trust.md §9.7, docs/delegation.md §7, T8).
 * First the evidence checker and the wire alone, then the whole path on a
 * real nats-server: a worker's task module refuses the link, the worker
 * reports it with `reportDelegationViolation`, the broker lowers the issuer.
 */
import { randomBytes } from 'node:crypto';
import { type Agent, type AgentExtension, type ChainViolation, type ExtensionPort, tasks } from '@trustmesh/client';
import {
  type AgentKey,
  type CapabilityToken,
  decodeToken,
  delegate,
  generateKey,
  issueRootToken,
  MAX_TOKEN_BYTES,
  meshSubjects,
  publicKeyFromDid,
  signFrame,
  TOKEN_VERSION,
  toHex,
  tokenHash,
  tokenSigningInput,
} from '@trustmesh/protocol';
import { uniqueMesh, waitFor, withNats } from '@trustmesh/test-utils';
import { parseTrustReport, reportDelegationViolation, type TrustReport, type TrustView, trustGuard } from '@trustmesh/trust';
import { describe, expect, it } from 'vitest';
import { type BrokerChange, createScorer, DELEGATION_EVENTS, EvidenceChecker, type EvidenceContext } from '../src/index.ts';
import { Mesh, report } from './service-helpers.ts';

interface LinkFields {
  audience: string;
  parent?: CapabilityToken;
  notBefore: number;
  expiry: number;
  depth: number;
  scope: string[];
}

/**
 * Signs a link with whatever fields it is given, no rule checked (the honest
 * `delegate()` refuses to). Encoded from the layout of docs/delegation.md §4.1.
 */
function link(issuer: AgentKey, f: LinkFields): CapabilityToken {
  const patterns = f.scope.map((p) => Buffer.from(p, 'ascii'));
  const payload = Buffer.alloc(131 + patterns.reduce((n, p) => n + 1 + p.length, 0));
  payload[0] = TOKEN_VERSION;
  payload.set(issuer.publicKey, 1);
  payload.set(publicKeyFromDid(f.audience), 33);
  if (f.parent !== undefined) payload.set(f.parent.hash, 65);
  payload.set(randomBytes(16), 97);
  payload.writeBigUInt64BE(BigInt(f.notBefore), 113);
  payload.writeBigUInt64BE(BigInt(f.expiry), 121);
  payload[129] = f.depth;
  payload[130] = patterns.length;
  let at = 131;
  for (const p of patterns) {
    payload[at++] = p.length;
    payload.set(p, at);
    at += p.length;
  }
  const decoded = decodeToken(Buffer.concat([payload, issuer.sign(tokenSigningInput(payload))]));
  if (!decoded.ok) throw new Error(`test link does not decode: ${decoded.detail}`);
  return decoded.token;
}

/** A copy with one bit of the signature flipped. */
const badSignature = (token: CapabilityToken): Uint8Array => {
  const out = Uint8Array.from(token.bytes);
  out[out.length - 1]! ^= 1;
  return out;
};

const hashHex = (token: CapabilityToken | Uint8Array) => toHex(tokenHash(token instanceof Uint8Array ? token : token.bytes));

const NOW = Date.now();

describe('broker - delegation evidence', () => {
  const mesh = 'deleg';
  const subjects = meshSubjects(mesh);
  const authority = generateKey();
  const x = generateKey(); // the delegator under test
  const reporter = generateKey(); // the worker
  const root = issueRootToken(authority, { audience: x.did, scope: ['read:docs/*'], expiry: NOW + 60_000, depth: 2, now: NOW });
  const child = (over: Partial<LinkFields> = {}, issuer: AgentKey = x) =>
    link(issuer, {
      audience: reporter.did,
      parent: root,
      notBefore: root.notBefore,
      expiry: root.expiry,
      depth: root.depth - 1,
      scope: ['read:docs/a'],
      ...over,
    });
  const checker = new EvidenceChecker();
  const context: EvidenceContext = {
    mesh,
    reporter: reporter.did,
    now: NOW,
    windowMs: 30_000,
    secure: false,
    declaredAt: async () => undefined,
    declarationMarginMs: 0,
    capabilitiesOf: () => undefined,
    capture: undefined,
  };
  const claim = (tokens: Uint8Array[], frames: TrustReport['frames'] = []): TrustReport => ({ v: 1, claim: 'delegation', tokens, frames });
  const check = async (report: TrustReport) => {
    const findings = await checker.check(report, context);
    expect(findings).toHaveLength(1);
    return findings[0]!;
  };
  const submit = (chain: Uint8Array[], over: { typ?: string; aud?: string; to?: AgentKey } = {}) => {
    const to = over.to ?? reporter;
    const subject = subjects.addressed('task', to.agentId, x.agentId);
    const data = { id: 'task-0123456789abcdef', capability: 'read:docs/a', chain, input: null };
    const { bytes } = signFrame(x, { sub: subject, typ: over.typ ?? 'tm.task.submit', aud: over.aud ?? to.did, data });
    return { subject, frame: bytes };
  };

  it('delegation - each link rule its issuer breaks maps to its penalty event, keyed by the token hash', async () => {
    const cases: [string, CapabilityToken, string][] = [
      ['wider scope', child({ scope: ['read:**'] }), 'scope_escalation'],
      ['later expiry', child({ expiry: root.expiry + 1 }), 'expiry_extended'],
      ['earlier not-before', child({ notBefore: root.notBefore - 1 }), 'expiry_extended'],
      ['depth not below', child({ depth: root.depth }), 'depth_exceeded'],
      // x delegates a parent granted to someone else: a scope it never held.
      ['not the audience', child({}, generateKey()), 'scope_escalation'],
    ];
    for (const [name, token, event] of cases) {
      const finding = await check(claim([root.bytes, token.bytes]));
      expect(finding, name).toEqual({
        kind: 'attributed',
        did: token.issuer,
        event,
        key: hashHex(token),
        ref: `token:${hashHex(token)}`,
      });
    }
    expect(DELEGATION_EVENTS).toEqual({
      scope_escalation: 'scope_escalation',
      broken_link: 'scope_escalation',
      expiry_extended: 'expiry_extended',
      depth_exceeded: 'depth_exceeded',
    });
  });

  it('delegation - fabricated evidence proves nothing: a bad signature, an honest link, unlinked tokens, bad bytes', async () => {
    const wider = child({ scope: ['read:**'] });
    const otherRoot = issueRootToken(authority, { audience: x.did, scope: ['read:docs/*'], expiry: NOW + 60_000, now: NOW });
    const honest = delegate(root, x, { audience: reporter.did, scope: ['read:docs/a'] });
    const cases: [string, Uint8Array[], RegExp][] = [
      ['bad signature on the token', [root.bytes, badSignature(wider)], /signature does not verify/],
      ['a link that does not escalate', [root.bytes, honest.bytes], /breaks no rule/],
      ['tokens not linked', [otherRoot.bytes, wider.bytes], /parent hash/],
      ['the pair reversed', [wider.bytes, root.bytes], /./],
      ['a parent that is not a token', [randomBytes(200), wider.bytes], /^delegation: parent:/],
      ['a token that is not a token', [root.bytes, randomBytes(200)], /^delegation: token:/],
    ];
    for (const [name, tokens, detail] of cases) {
      const finding = await check(claim(tokens));
      expect(finding.kind, name).toBe('invalid');
      if (finding.kind === 'invalid') expect(finding.detail, name).toMatch(detail);
    }
    expect(await check({ v: 1, claim: 'delegation', frames: [] })).toMatchObject({ kind: 'invalid' });
  });

  it('delegation - an attached task frame must be the submit that carried this link to the reporter', async () => {
    const wider = child({ scope: ['read:**'] });
    const chain = [root.bytes, wider.bytes];
    expect(await check(claim(chain, [submit(chain)]))).toMatchObject({ kind: 'attributed', did: x.did, event: 'scope_escalation' });
    const tampered = submit(chain);
    tampered.frame[40]! ^= 1;
    const bad: [string, TrustReport['frames'][number], RegExp][] = [
      ['a frame that does not verify', tampered, /does not verify/],
      ['not a task submit', submit(chain, { typ: 'tm.task.status' }), /not a task submit/],
      ['addressed to another agent', submit(chain, { to: generateKey() }), /not addressed to the reporter/],
      ['a chain without this link', submit([root.bytes, child().bytes]), /does not carry this link/],
    ];
    for (const [name, frame, detail] of bad) {
      const finding = await check(claim(chain, [frame]));
      expect(finding.kind, name).toBe('invalid');
      if (finding.kind === 'invalid') expect(finding.detail, name).toMatch(detail);
    }
    expect(await check(claim(chain, [{ ...submit(chain), subject: 'tm.other.task.a.b' }]))).toEqual({
      kind: 'invalid',
      detail: 'evidence from another mesh',
    });
  });

  it('delegation - the report wire: tokens belong to delegation reports, which need no frame', () => {
    const tokens = [root.bytes, child().bytes];
    expect(parseTrustReport({ v: 1, claim: 'delegation', tokens, frames: [] }).ok).toBe(true);
    expect(parseTrustReport({ v: 1, claim: 'delegation', frames: [] })).toMatchObject({ ok: false, detail: /tokens/ });
    expect(parseTrustReport({ v: 1, claim: 'delegation', tokens: [root.bytes], frames: [] })).toMatchObject({ ok: false });
    expect(
      parseTrustReport({ v: 1, claim: 'delegation', tokens: [root.bytes, new Uint8Array(MAX_TOKEN_BYTES + 1)], frames: [] }),
    ).toMatchObject({
      ok: false,
    });
    const frame = submit(tokens);
    expect(parseTrustReport({ v: 1, claim: 'delegation', tokens, frames: [frame, frame] })).toMatchObject({ ok: false });
    expect(parseTrustReport({ v: 1, claim: 'protocol', tokens, frames: [frame] })).toMatchObject({ ok: false, detail: /tokens/ });
    expect(parseTrustReport({ v: 1, claim: 'protocol', frames: [] })).toMatchObject({ ok: false, detail: /frames/ });
  });

  it('delegation - expiry_extended and depth_exceeded take 50, then 75 (growth 1.5), from the default policy', () => {
    const scorer = createScorer();
    for (const event of ['expiry_extended', 'depth_exceeded'] as const) {
      const first = scorer.applyEvidence(scorer.newState(x.did, NOW), { event, key: 'a' }, NOW);
      expect(first.state.score).toBe(450);
      const second = scorer.applyEvidence(first.state, { event, key: 'b' }, NOW);
      expect(second.state.score).toBe(375);
      expect(scorer.applyEvidence(second.state, { event, key: 'b' }, NOW).outcome).toBe('duplicate');
    }
  });
});

describe('broker - delegation reports on the mesh', () => {
  const nats = withNats();

  /** A worker with the task module; each refused link is reported with the helper, through the agent or an extension's port. */
  async function worker(mesh: Mesh, name: string, brokerDid: string, rootAuthority: Record<string, string[]>, via: 'agent' | 'port') {
    const key = generateKey();
    const violations: ChainViolation[] = [];
    let agent: Agent | undefined;
    let port: ExtensionPort | undefined;
    const t = tasks({
      key,
      rootAuthority,
      onViolation: (v) => {
        violations.push(v);
        const target = via === 'agent' ? agent : port;
        if (target !== undefined) reportDelegationViolation(target, brokerDid, v);
      },
    });
    const guard = trustGuard({ brokers: [brokerDid] });
    const grab: AgentExtension = {
      name: 'report-port',
      attach: (p) => {
        port = p;
      },
    };
    agent = await nats.join({ mesh: mesh.mesh, name, key, extensions: [guard, grab, t] });
    t.serve('read:**', () => 'ran');
    return { agent, guard, violations };
  }

  async function delegator(mesh: Mesh, rootAuthority: Record<string, string[]>) {
    const key = generateKey();
    const t = tasks({ key, rootAuthority });
    const agent = await nats.join({ mesh: mesh.mesh, name: 'delegator', key, extensions: [t] });
    return { agent, key, t, did: key.did };
  }

  it("delegation - a worker refuses an escalating link, reports it, and the broker lowers the delegator's score once", async () => {
    const mesh = new Mesh(nats, uniqueMesh('deleg'));
    try {
      const broker = await mesh.broker();
      const changes: BrokerChange[] = [];
      broker.onChange((c) => changes.push(c));
      const authority = generateKey();
      const rootAuthority = { [authority.did]: ['read:**'] };
      const d = await delegator(mesh, rootAuthority);
      const w1 = await worker(mesh, 'worker-1', broker.did, rootAuthority, 'agent');
      const w2 = await worker(mesh, 'worker-2', broker.did, rootAuthority, 'port');
      const root = issueRootToken(authority, { audience: d.did, scope: ['read:docs/*'], expiry: Date.now() + 60_000, depth: 2 });
      const wider = (audience: string) =>
        link(d.key, { audience, parent: root, notBefore: root.notBefore, expiry: root.expiry, depth: 1, scope: ['read:**'] });

      const first = wider(w1.agent.did);
      const task = d.t.delegate({ to: w1.agent.did, capability: 'read:secrets/k', chain: [root, first], presigned: true });
      await expect(task.result).rejects.toMatchObject({ reason: 'scope_escalation' });
      await waitFor(() => changes.length === 1, 'the first penalty');
      expect(changes[0]!.update).toMatchObject({
        did: d.did,
        score: 400,
        tier: 'probationary',
        reason: 'scope_escalation',
        ref: `token:${hashHex(first)}`,
        version: 1,
      });
      // Read back through the broker's query, as any agent can, and seen pushed by the other worker's trust cache.
      const view = await w2.agent.request<TrustView>(broker.did, 'trust.get', { did: d.did });
      expect(view).toMatchObject({ did: d.did, score: 400, version: 1 });
      await waitFor(() => w2.guard.trustOf(d.did) === 400, 'the pushed score at the other worker');

      // The same token reported again (by hand, with the task frame) counts once.
      expect(reportDelegationViolation(w1.agent, broker.did, w1.violations[0]!)).toBe(true);
      await waitFor(() => broker.stats().duplicates === 1, 'the duplicate report');

      // A second escalating token, presented to the other worker and reported through its port: a second, steeper offence.
      const second = wider(w2.agent.did);
      const task2 = d.t.delegate({ to: w2.agent.did, capability: 'read:secrets/k', chain: [root, second], presigned: true });
      await expect(task2.result).rejects.toMatchObject({ reason: 'scope_escalation' });
      await waitFor(() => changes.length === 2, 'the second penalty');
      expect(changes[1]!.update).toMatchObject({ did: d.did, score: 200, tier: 'untrusted', reason: 'scope_escalation', version: 2 });
      expect(w1.violations.map((v) => v.attributableTo)).toEqual([d.did]);
      expect(w2.violations.map((v) => v.attributableTo)).toEqual([d.did]);
      expect(broker.stats()).toMatchObject({ reports: 3, invalid: 0, applied: 2, duplicates: 1 });
    } finally {
      await mesh.close();
    }
  });

  it('delegation - fabricated delegation reports change nobody’s score', async () => {
    const mesh = new Mesh(nats, uniqueMesh('deleg'));
    try {
      const broker = await mesh.broker();
      const authority = generateKey();
      const x = generateKey(); // the agent the reports try to frame
      const y = generateKey(); // a real offender, so the test knows the broker has processed the batch
      const reporter = await nats.join({ mesh: mesh.mesh, name: 'reporter' });
      const root = (audience: string) =>
        issueRootToken(authority, { audience, scope: ['read:docs/*'], expiry: Date.now() + 60_000, depth: 2 });
      const rx = root(x.did);
      const escalate = (issuer: AgentKey, parent: CapabilityToken) =>
        link(issuer, {
          audience: reporter.did,
          parent,
          notBefore: parent.notBefore,
          expiry: parent.expiry,
          depth: 1,
          scope: ['read:**'],
        });
      const send = (tokens: Uint8Array[]) => report(reporter, broker, { v: 1, claim: 'delegation', tokens, frames: [] });
      send([rx.bytes, badSignature(escalate(x, rx))]); // bad signature on the token
      send([rx.bytes, delegate(rx, x, { audience: reporter.did, scope: ['read:docs/a'] }).bytes]); // no escalation
      send([root(x.did).bytes, escalate(x, rx).bytes]); // tokens not linked
      report(reporter, broker, { v: 1, claim: 'delegation', frames: [] } as TrustReport); // no tokens
      const ry = root(y.did);
      send([ry.bytes, escalate(y, ry).bytes]);
      await waitFor(() => broker.stats().reports === 5, 'five reports');
      await broker.idle();
      expect(broker.stats()).toMatchObject({ invalid: 4, applied: 1 });
      expect(await broker.view(x.did)).toEqual({ did: x.did, score: 500, tier: 'standard', version: 0 });
      expect(await broker.view(y.did)).toMatchObject({ score: 400, version: 1 });
    } finally {
      await mesh.close();
    }
  });
});
