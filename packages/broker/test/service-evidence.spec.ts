/**
 * The evidence checker alone (no NATS): what each claim proves, by the
 * stateless stage and the blame rule, for forged frames of every kind.
 */
import { type AgentKey, generateKey, meshSubjects, signFrame, toHex } from '@trustmesh/protocol';
import { forgeFrame } from '@trustmesh/test-utils';
import type { TrustReport } from '@trustmesh/trust';
import { describe, expect, it } from 'vitest';
import { type CaptureReader, EvidenceChecker, type EvidenceContext, rulesHash } from '../src/index.ts';

const mesh = 'evid';
const subjects = meshSubjects(mesh);
const reporter = generateKey();
const x = generateKey();
const NOW = Date.now();
const toReporter = subjects.message(reporter.agentId, x.agentId);

function context(over: Partial<EvidenceContext> = {}): EvidenceContext {
  return {
    mesh,
    reporter: reporter.did,
    now: NOW,
    windowMs: 30_000,
    secure: false,
    declaredAt: async () => undefined,
    declarationMarginMs: 0,
    capabilitiesOf: () => undefined,
    capture: undefined,
    ...over,
  };
}

const one = (claim: TrustReport['claim'], subject: string, frame: Uint8Array, extra: Partial<TrustReport> = {}): TrustReport => ({
  v: 1,
  claim,
  frames: [{ subject, frame }],
  ...extra,
});

const signed = (key: AgentKey, data: unknown, over: { typ?: string; aud?: string | null; iat?: number; sub?: string } = {}) =>
  signFrame(key, {
    sub: over.sub ?? toReporter,
    typ: over.typ ?? 'task.run',
    data,
    ...(over.aud !== null && { aud: over.aud ?? reporter.did }),
    ...(over.iat !== undefined && { iat: over.iat }),
  }).bytes;

describe('evidence checker', () => {
  const checker = new EvidenceChecker();

  it('protocol - signer faults found by the stateless stage or the inbox rules count against the signer', async () => {
    const cases: [string, Uint8Array][] = [
      ['issuer mismatch', forgeFrame(x, { sub: toReporter, iss: generateKey().did, aud: reporter.did })],
      ['body not a map', forgeFrame(x, { sub: toReporter, data: undefined, v: undefined, id: undefined })],
      ['future iat', signed(x, 1, { iat: NOW + 60_000 })],
      ['msg without aud', signed(x, 1, { aud: null })],
      ['reserved type on msg', signed(x, 1, { typ: 'tm.presence' })],
    ];
    for (const [name, frame] of cases) {
      const [finding] = await checker.check(one('protocol', toReporter, frame), context());
      expect(finding, name).toMatchObject({ kind: 'attributed', did: x.did, event: 'protocol_violation' });
      if (finding?.kind === 'attributed') expect(finding.key).toBe(`protocol_violation:${toHex(frame.subarray(33, 97))}`);
    }
    // Within the window, addressed, application type: nothing.
    expect(await checker.check(one('protocol', toReporter, signed(x, 1, { iat: NOW + 29_000 })), context())).toEqual([
      { kind: 'invalid', detail: 'protocol: the frame is valid; no signer fault found' },
    ]);
  });

  it('protocol - a forgery claiming x, or x’s frame on a subject it was not signed for, blames nobody', async () => {
    const frame = signed(x, 1);
    const forged = Uint8Array.from(frame);
    forged[40]! ^= 1; // in the signature
    expect(await checker.check(one('protocol', toReporter, forged), context())).toEqual([
      { kind: 'unattributed', cause: 'bad_signature', claimed: x.did, publisher: x.did },
    ]);
    const moved = subjects.message(generateKey().agentId, x.agentId);
    const [finding] = await checker.check(one('protocol', moved, frame), context());
    expect(finding).toMatchObject({ kind: 'unattributed', cause: 'subject_mismatch' });
  });

  it('policy - counts only for the declared rules in force when the frame was signed, minus the margin', async () => {
    const rules = { types: { 'task.run': { maxBytes: 400, rate: { count: 1, perMs: 60_000 } } } };
    const sub = subjects.broadcast('rules', reporter.agentId);
    const declaration = signFrame(reporter, { sub, typ: 'trust.rules', data: { v: 1, rules } }).bytes;
    const big = signed(x, 'x'.repeat(500));
    const small = signed(x, 'ok');
    const hash = rulesHash(rules);
    const seenAt = NOW - 10_000;
    const declaredAt = async (_: string, t: number) => (t >= seenAt ? hash : undefined);
    const policy = (frame: Uint8Array, over: Partial<EvidenceContext> = {}) =>
      checker.check(one('policy', toReporter, frame, { declaration }), context({ declaredAt, ...over }));
    expect(await policy(big)).toMatchObject([{ kind: 'attributed', did: x.did, event: 'policy_violation' }]);
    // The rate rule is not evidence: two small frames in a minute prove nothing to the broker.
    expect(await policy(small)).toMatchObject([{ kind: 'invalid' }]);
    expect(await policy(signed(x, 'ok'))).toMatchObject([{ kind: 'invalid' }]);
    // Published 10 s before the frame: not enough with a 30 s margin (the signer's clock may be ahead).
    expect(await policy(big, { declarationMarginMs: 30_000 })).toMatchObject([{ kind: 'invalid' }]);
    // Another receiver's declaration, or one the broker never saw.
    const stranger = generateKey();
    const theirs = signFrame(stranger, {
      sub: subjects.broadcast('rules', stranger.agentId),
      typ: 'trust.rules',
      data: { v: 1, rules },
    }).bytes;
    expect(await checker.check(one('policy', toReporter, big, { declaration: theirs }), context({ declaredAt }))).toMatchObject([
      { kind: 'invalid' },
    ]);
    expect(await checker.check(one('policy', toReporter, big, { declaration }), context())).toMatchObject([{ kind: 'invalid' }]);
  });

  it('policy - an allow rule with capabilities needs the broker to know what the signer announced', async () => {
    const rules = { mesh: { allow: { capabilities: ['math'] } } };
    const declaration = signFrame(reporter, {
      sub: subjects.broadcast('rules', reporter.agentId),
      typ: 'trust.rules',
      data: { v: 1, rules },
    }).bytes;
    const declaredAt = async () => rulesHash(rules);
    const report = one('policy', toReporter, signed(x, 1), { declaration });
    expect(await checker.check(report, context({ declaredAt }))).toMatchObject([{ kind: 'invalid' }]);
    expect(await checker.check(report, context({ declaredAt, capabilitiesOf: () => ['math'] }))).toMatchObject([{ kind: 'invalid' }]);
    expect(await checker.check(report, context({ declaredAt, capabilitiesOf: () => ['poetry'] }))).toMatchObject([
      { kind: 'attributed', event: 'policy_violation' },
    ]);
  });

  it('secure - bad signatures and replays count against the publisher only when the capture stream holds them', async () => {
    const frame = signed(x, 1);
    const forged = Uint8Array.from(frame);
    forged[150]! ^= 1;
    const stream = new Map<number, { subject: string; data: Uint8Array }>([
      [7, { subject: toReporter, data: forged }],
      [8, { subject: toReporter, data: frame }],
      [9, { subject: toReporter, data: frame }],
    ]);
    const capture: CaptureReader = { read: async (seq) => stream.get(seq) };
    const secure = context({ secure: true, capture });
    const bad = (seq?: number): TrustReport => ({
      v: 1,
      claim: 'rejection',
      reason: 'bad_signature',
      frames: [{ subject: toReporter, frame: forged, ...(seq !== undefined && { seq }) }],
    });
    expect(await checker.check(bad(7), secure)).toMatchObject([
      { kind: 'attributed', did: x.did, event: 'bad_signature_authenticated', ref: 'audit:7' },
    ]);
    expect(await checker.check(bad(7), context({ capture }))).toMatchObject([{ kind: 'unattributed', cause: 'bad_signature' }]);
    expect(await checker.check(bad(), secure)).toMatchObject([{ kind: 'unattributed' }]);
    expect(await checker.check(bad(8), secure)).toMatchObject([{ kind: 'invalid' }]);
    const replay = (a: number, b: number): TrustReport => ({
      v: 1,
      claim: 'rejection',
      reason: 'replay',
      frames: [
        { subject: toReporter, frame, seq: a },
        { subject: toReporter, frame, seq: b },
      ],
    });
    const [first, second] = await checker.check(replay(8, 9), secure);
    expect(first).toEqual({ kind: 'invalid', detail: 'replay: counted once, on the second copy' });
    expect(second).toMatchObject({ kind: 'attributed', did: x.did, event: 'replay_authenticated', ref: 'audit:8,9' });
    expect((await checker.check(replay(8, 7), secure))[1]).toMatchObject({ kind: 'invalid' });
    expect((await checker.check(replay(8, 9), context({ capture })))[1]).toMatchObject({ kind: 'unattributed', cause: 'replay' });
  });
});
