import { describe, expect, it } from 'vitest';
import { cleanText, describeThrown, MAX_PEER_TEXT } from '../src/index.ts';

/** Values a handler could throw when it builds its error from peer data. */
export function hostileValues(): unknown[] {
  const throwingGetter = Object.defineProperty({}, 'message', {
    get() {
      throw new Error('getter bomb');
    },
  });
  const throwingToString = {
    toString: () => {
      throw new Error('toString bomb');
    },
  };
  const nullProto = Object.create(null) as object;
  const notFunctionToString = { toString: 42, message: 7 };
  const proxy = new Proxy(
    {},
    {
      get() {
        throw new Error('proxy bomb');
      },
      getPrototypeOf() {
        throw new Error('proxy proto bomb');
      },
    },
  );
  const errorWithObjectMessage = Object.assign(new Error('x'), { message: { nested: true } });
  const huge = 'A'.repeat(100_000);
  const control = 'line\u0000one\r\nFAKE LOG LINE\u001b[31mred\u202e';
  return [
    throwingGetter,
    throwingToString,
    nullProto,
    notFunctionToString,
    proxy,
    errorWithObjectMessage,
    huge,
    control,
    undefined,
    null,
    42,
    Symbol('s'),
    10n,
    () => 1,
  ];
}

describe('client text', () => {
  it('text - describeThrown never throws, whatever was thrown, and returns a bounded string', () => {
    for (const value of hostileValues()) {
      const text = describeThrown(value);
      expect(typeof text).toBe('string');
      expect(text.length).toBeLessThanOrEqual(MAX_PEER_TEXT * 10);
    }
    expect(describeThrown(new Error('plain'))).toBe('plain');
  });

  it('text - cleanText cuts at 1,024 characters and escapes control characters, so peer text cannot forge log lines', () => {
    const cleaned = cleanText(`${'x'.repeat(2000)}`);
    expect(cleaned.length).toBe(MAX_PEER_TEXT + 1); // the cut mark
    const escaped = cleanText('a\nb\u0000c\u001bd\u202ee');
    expect(escaped).toBe('a\\u{a}b\\u{0}c\\u{1b}d\\u{202e}e');
    expect(escaped).not.toMatch(/[\u0000-\u001f\u202e]/);
  });
});
