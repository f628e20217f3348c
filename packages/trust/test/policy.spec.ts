import { describe, expect, it } from 'vitest';
import { createPolicy, MAX_DETAIL_LENGTH, type PolicyInput, type PolicyRefusal, PolicyRuleError, safeText, z } from '../src/index.ts';

const ALICE = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
const MALLORY = 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG';

const frame = (over: Partial<PolicyInput> = {}): PolicyInput => ({
  from: ALICE,
  typ: 'task.run',
  size: 200,
  data: { task: 'sum', args: [1, 2] },
  senderTier: 'standard',
  senderCapabilities: [],
  now: 0,
  ...over,
});

const refused = (result: ReturnType<ReturnType<typeof createPolicy>['check']>): PolicyRefusal => {
  expect(result.ok).toBe(false);
  return result as PolicyRefusal;
};

const TASK_SCHEMA = {
  type: 'object',
  properties: { task: { type: 'string', maxLength: 32 }, args: { type: 'array', items: { type: 'number' } } },
  required: ['task'],
  additionalProperties: false,
};

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyRuleError);
    return (error as PolicyRuleError).field;
  }
  throw new Error('expected a PolicyRuleError');
}

describe('policy - minTier', () => {
  it('policy - by default the mesh refuses untrusted senders with reason untrusted, not as evidence', () => {
    const policy = createPolicy({ rules: {} });
    expect(policy.check(frame({ senderTier: 'probationary' }))).toEqual({ ok: true });
    const r = refused(policy.check(frame({ senderTier: 'untrusted' })));
    expect(r).toMatchObject({
      reason: 'untrusted',
      rule: 'minTier',
      scope: 'mesh',
      value: 'untrusted',
      limit: 'probationary',
      evidence: false,
    });
  });

  it('policy - a per-type minimum tier', () => {
    const policy = createPolicy({ rules: { types: { 'task.run': { minTier: 'trusted' } } } });
    expect(policy.check(frame({ senderTier: 'trusted' }))).toEqual({ ok: true });
    expect(policy.check(frame({ senderTier: 'verified_partner' }))).toEqual({ ok: true });
    expect(refused(policy.check(frame({ senderTier: 'standard' })))).toMatchObject({
      reason: 'untrusted',
      rule: 'minTier',
      scope: 'task.run',
    });
    expect(policy.check(frame({ typ: 'chat', senderTier: 'standard' }))).toEqual({ ok: true });
  });

  it('policy - the mesh default can be lowered explicitly', () => {
    const policy = createPolicy({ rules: { mesh: { minTier: 'untrusted' } } });
    expect(policy.check(frame({ senderTier: 'untrusted' }))).toEqual({ ok: true });
  });

  it('policy - a tier that is not a tier is treated as the lowest', () => {
    const policy = createPolicy({ rules: {} });
    expect(refused(policy.check(frame({ senderTier: 'admin' as never }))).reason).toBe('untrusted');
  });
});

describe('policy - allow', () => {
  const policy = createPolicy({ rules: { types: { 'task.run': { allow: { dids: [ALICE], capabilities: ['math'] } } } } });

  it('policy - a listed DID is allowed', () => expect(policy.check(frame())).toEqual({ ok: true }));

  it('policy - a sender that announced a listed capability is allowed', () =>
    expect(policy.check(frame({ from: MALLORY, senderCapabilities: ['chat', 'math'] }))).toEqual({ ok: true }));

  it('policy - anyone else is refused, as evidence', () => {
    const r = refused(policy.check(frame({ from: MALLORY, senderCapabilities: ['chat'] })));
    expect(r).toMatchObject({ reason: 'policy', rule: 'allow', scope: 'task.run', evidence: true });
    expect(r.detail).toContain(MALLORY);
  });

  it('policy - odd capability lists are refused, not thrown on', () => {
    for (const senderCapabilities of [undefined, 'math', [null, 42, { math: true }]]) {
      expect(refused(policy.check(frame({ from: MALLORY, senderCapabilities: senderCapabilities as never }))).rule).toBe('allow');
    }
  });
});

describe('policy - maxBytes', () => {
  const policy = createPolicy({ rules: { mesh: { maxBytes: 4096 }, types: { 'task.run': { maxBytes: 1024 } } } });

  it('policy - a frame at the limit is allowed', () => expect(policy.check(frame({ size: 1024 }))).toEqual({ ok: true }));

  it('policy - one byte over is refused, with the value and the limit', () => {
    expect(refused(policy.check(frame({ size: 1025 })))).toMatchObject({
      reason: 'policy',
      rule: 'maxBytes',
      scope: 'task.run',
      value: 1025,
      limit: 1024,
      evidence: true,
    });
  });

  it('policy - mesh rules apply to every type and are checked first', () => {
    expect(refused(policy.check(frame({ typ: 'chat', size: 5000 })))).toMatchObject({ rule: 'maxBytes', scope: 'mesh', limit: 4096 });
    expect(refused(policy.check(frame({ size: 5000 })))).toMatchObject({ scope: 'mesh' });
  });

  it('policy - a size that is not a number is refused', () => {
    expect(refused(policy.check(frame({ size: Number.NaN }))).rule).toBe('maxBytes');
  });
});

describe('policy - rate', () => {
  it('policy - a sender beyond its rate is refused until its bucket refills (injected time)', () => {
    const policy = createPolicy({ rules: { types: { 'task.run': { rate: { count: 2, perMs: 1000 } } } } });
    expect(policy.check(frame({ now: 0 })).ok).toBe(true);
    expect(policy.check(frame({ now: 0 })).ok).toBe(true);
    expect(refused(policy.check(frame({ now: 0 })))).toMatchObject({ reason: 'policy', rule: 'rate', limit: 2, evidence: true });
    expect(policy.check(frame({ from: MALLORY, now: 0 })).ok).toBe(true); // another sender
    expect(policy.check(frame({ now: 499 })).ok).toBe(false); // 0.998 tokens
    expect(policy.check(frame({ now: 500 })).ok).toBe(true); // 2 per 1000 ms: one token per 500 ms
  });

  it("policy - without a per-check time the engine's clock is used", () => {
    let now = 0;
    const policy = createPolicy({ rules: { mesh: { rate: { count: 1, perMs: 1000 } } }, now: () => now });
    const { now: _drop, ...input } = frame();
    expect(policy.check(input).ok).toBe(true);
    expect(policy.check(input).ok).toBe(false);
    now = 1000;
    expect(policy.check(input).ok).toBe(true);
  });

  it('policy - a frame refused by an earlier rule spends no rate token', () => {
    const policy = createPolicy({ rules: { mesh: { maxBytes: 100, rate: { count: 1, perMs: 1000 } } } });
    expect(refused(policy.check(frame({ size: 101 }))).rule).toBe('maxBytes');
    expect(policy.check(frame({ size: 100 }))).toEqual({ ok: true });
  });
});

describe('policy - schema', () => {
  const policy = createPolicy({ rules: { types: { 'task.run': { schema: TASK_SCHEMA } } } });

  it('policy - a payload matching the JSON Schema is allowed', () => expect(policy.check(frame())).toEqual({ ok: true }));

  it('policy - a payload that does not match is refused, naming the path', () => {
    const r = refused(policy.check(frame({ data: { task: 'sum', args: [1, 'two'] } })));
    expect(r).toMatchObject({ reason: 'policy', rule: 'schema', scope: 'task.run', evidence: true });
    expect(r.detail).toMatch(/^payload does not match the schema: args\.1: /);
  });

  it('policy - odd data shapes are refused, never thrown on', () => {
    const odd: unknown[] = [
      undefined,
      null,
      42n,
      new Uint8Array(8),
      'x'.repeat(1_000_000),
      [TASK_SCHEMA],
      { task: 'sum', __proto__: { polluted: true } },
      JSON.parse('{"task":"sum","__proto__":{"x":1}}'),
      { task: { toString: 'not a function' } },
    ];
    for (const data of odd) {
      const result = policy.check(frame({ data }));
      expect(result.ok).toBe(false);
      expect((result as PolicyRefusal).detail.length).toBeLessThanOrEqual(MAX_DETAIL_LENGTH);
    }
  });

  it('policy - a huge attacker-chosen key yields a bounded detail', () => {
    const data = { task: 'sum', ['k'.repeat(100_000)]: 1 };
    const r = refused(policy.check(frame({ data })));
    expect(r.detail.length).toBeLessThanOrEqual(MAX_DETAIL_LENGTH);
  });

  it('policy - a zod schema works in code', () => {
    const zoded = createPolicy({ rules: { types: { 'task.run': { schema: z.object({ task: z.enum(['sum']) }) } } } });
    expect(zoded.check(frame())).toEqual({ ok: true });
    expect(refused(zoded.check(frame({ data: { task: 'rm -rf' } }))).rule).toBe('schema');
  });

  it('policy - a validator that throws refuses the frame without blaming the sender', () => {
    const throwing = z.unknown().refine(() => {
      throw new Error('bug in\nthe validator');
    });
    const policy = createPolicy({ rules: { types: { 'task.run': { schema: throwing } } } });
    const r = refused(policy.check(frame()));
    expect(r).toMatchObject({ reason: 'policy', rule: 'schema', evidence: false });
    expect(r.detail).toBe('schema validator threw: bug in\\u000athe validator');
  });

  it('policy - `false` refuses every payload and `true` allows every payload', () => {
    const policy = createPolicy({ rules: { types: { deny: { schema: false }, any: { schema: true } } } });
    expect(policy.check(frame({ typ: 'deny' })).ok).toBe(false);
    expect(policy.check(frame({ typ: 'any', data: 7n })).ok).toBe(true);
  });
});

describe('policy - types from the wire', () => {
  it('policy - a typ named like an Object.prototype member finds no rules', () => {
    const policy = createPolicy({ rules: { types: { 'task.run': { maxBytes: 1 } } } });
    for (const typ of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(policy.check(frame({ typ, size: 10 }))).toEqual({ ok: true });
    }
  });

  it('policy - a typ that is not a string only gets mesh rules', () => {
    const policy = createPolicy({ rules: { mesh: { maxBytes: 100 }, types: { 'task.run': { maxBytes: 1 } } } });
    expect(policy.check(frame({ typ: 42 as never, size: 10 }))).toEqual({ ok: true });
  });

  it('policy - details escape control characters and are bounded to 1024 characters', () => {
    const policy = createPolicy({ rules: { types: { 'task.run': { allow: { dids: [ALICE] } } } } });
    const from = `did:key:z\u001b[31mred\u202e${'A'.repeat(5000)}`;
    const r = refused(policy.check(frame({ from })));
    expect(r.detail.length).toBe(MAX_DETAIL_LENGTH);
    expect(r.detail).toContain('z\\u001b[31mred\\u202e');
    expect(r.detail.endsWith('…')).toBe(true);
  });
});

describe('policy - rule validation', () => {
  it('policy - a bad rule is refused at creation, naming its field', () => {
    expect(fieldOf(() => createPolicy({ rules: { types: { 'task.run': { rate: { count: 0, perMs: 1000 } } } } }))).toBe(
      'types.task.run.rate.count',
    );
    expect(fieldOf(() => createPolicy({ rules: { mesh: { minTier: 'gold' } } }))).toBe('mesh.minTier');
    expect(fieldOf(() => createPolicy({ rules: { mesh: { maxBytes: -5 } } }))).toBe('mesh.maxBytes');
    expect(fieldOf(() => createPolicy({ rules: { mesh: { maxbytes: 5 } } }))).toBe('mesh.maxbytes');
    expect(fieldOf(() => createPolicy({ rules: { mesh: { allow: { dids: 'did:key:z' } } } }))).toBe('mesh.allow.dids');
  });

  it('policy - an unsupported JSON Schema is refused at creation', () => {
    const schema = { type: 'object', unevaluatedProperties: false };
    expect(fieldOf(() => createPolicy({ rules: { types: { x: { schema } } } }))).toBe('types.x.schema');
    expect(fieldOf(() => createPolicy({ rules: { types: { x: { schema: { $ref: 'https://example.com/s.json' } } } } }))).toBe(
      'types.x.schema',
    );
  });
});

describe('policy - safeText', () => {
  it('policy - short safe text is unchanged', () => expect(safeText('rate limit 10/s')).toBe('rate limit 10/s'));
  it('policy - C0, C1, DEL, separators and bidi controls are escaped', () =>
    expect(safeText('a\u0000b\u0085c\u007fd\u2028e\u2067f')).toBe('a\\u0000b\\u0085c\\u007fd\\u2028e\\u2067f'));
  it('policy - truncation never splits an escape or a surrogate pair', () => {
    const escaped = safeText('a'.repeat(1020) + '\n\n\n', 1024);
    expect(escaped).toBe('a'.repeat(1020) + '…');
    const emoji = safeText('a'.repeat(1022) + '😀😀', 1024);
    expect(emoji).toBe('a'.repeat(1022) + '…');
  });
});
