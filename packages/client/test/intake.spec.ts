import { generateKey, signFrame, subjects } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { DEFAULT_INTAKE_LIMITS, Intake } from '../src/intake.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));
const known = generateKey();
const frameOf = (key = generateKey()) => signFrame(key, { sub: subjects.presence('m', key.agentId), typ: 't' }).bytes;
const keyIdOf = (frame: Uint8Array) => Buffer.from(frame.subarray(1, 33)).toString('latin1');

describe('client intake', () => {
  it('intake - frames under known keys are processed before frames under unknown keys that arrived earlier', async () => {
    const order: string[] = [];
    const knownId = keyIdOf(frameOf(known));
    const intake = new Intake(
      (subject) => order.push(subject),
      () => order.push('dropped'),
      (keyId) => keyId === knownId,
    );
    for (let i = 0; i < 5; i++) intake.push(`unknown-${i}`, frameOf());
    intake.push('known', frameOf(known));
    await tick();
    expect(order[0]).toBe('known');
    expect(order).toHaveLength(6);
  });

  it('intake - past its queue bound, frames under unknown keys are dropped unread and reported, never lost silently', async () => {
    const processed: string[] = [];
    const dropped: string[] = [];
    const intake = new Intake(
      (subject) => processed.push(subject),
      (subject, _data, detail) => dropped.push(`${subject}: ${detail}`),
      () => false,
      { ...DEFAULT_INTAKE_LIMITS, maxUnknownQueued: 10 },
    );
    for (let i = 0; i < 25; i++) intake.push(`f${i}`, frameOf());
    await tick();
    expect(processed).toHaveLength(10);
    expect(dropped).toHaveLength(15);
    expect(dropped[0]).toContain('queue for unknown keys is full');
  });

  it('intake - one unknown key gets a budget of verifications per second; other keys are not charged for it', async () => {
    let now = 1_000_000;
    const processed: string[] = [];
    const dropped: string[] = [];
    const intake = new Intake(
      (subject) => processed.push(subject),
      (subject) => dropped.push(subject),
      () => false,
      { ...DEFAULT_INTAKE_LIMITS, unknownKeyRate: 5 },
      () => now,
    );
    const flooder = generateKey();
    for (let i = 0; i < 20; i++) intake.push('flood', frameOf(flooder));
    intake.push('other', frameOf());
    await tick();
    expect(processed.filter((s) => s === 'flood')).toHaveLength(5);
    expect(processed).toContain('other');
    expect(dropped).toHaveLength(15);
    now += 1_000; // a second later the budget is back
    for (let i = 0; i < 5; i++) intake.push('flood', frameOf(flooder));
    await tick();
    expect(processed.filter((s) => s === 'flood')).toHaveLength(10);
  });

  it('intake - a waiting frame under an unknown key is a copy, not a view into the caller buffer', async () => {
    const buffer = new Uint8Array(4096);
    const frame = frameOf();
    buffer.set(frame, 100);
    let seen: Uint8Array | undefined;
    const intake = new Intake(
      (_s, data) => {
        seen = data;
      },
      () => undefined,
      () => false,
    );
    intake.push('s', buffer.subarray(100, 100 + frame.length));
    buffer.fill(0);
    await tick();
    expect(seen!.buffer).not.toBe(buffer.buffer);
    expect(Buffer.from(seen!).equals(Buffer.from(frame))).toBe(true);
  });
});
