import { describe, expect, it } from 'vitest';
import { hostileValues } from '@trustmesh/test-utils';
import { cleanText, describeThrown, MAX_PEER_TEXT } from '../src/index.ts';

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
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    expect(escaped).not.toMatch(/[\u0000-\u001f\u202e]/);
  });
});
