import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fromHex, nobleEd25519, nodeEd25519, SignerCache, type Ed25519Backend } from '../src/index.ts';

/**
 * Two Ed25519 suites no one in this project wrote, kept read-only beside the
 * repository (CI has a copy of shared/ next to the clone):
 *
 * - Wycheproof, C2SP/wycheproof testvectors_v1/ed25519_test.json at commit
 *   dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166 (Apache-2.0):
 *   https://github.com/C2SP/wycheproof/blob/dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166/testvectors_v1/ed25519_test.json
 * - The 12 edge cases of "Taming the many EdDSAs" (Chalkias, Garillot,
 *   Nikolaenko, SSR 2020), novifinancial/ed25519-speccheck cases.json at commit
 *   65519336fda78a3d016e947df6d82848aca0c9da (Apache-2.0):
 *   https://github.com/novifinancial/ed25519-speccheck/blob/65519336fda78a3d016e947df6d82848aca0c9da/cases.json
 *
 * Both backends must agree with Wycheproof on all 151 tests, and give the
 * verdicts of docs/protocol.md §5 on the 12 edge cases.
 */
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const dir = resolve(repoRoot, '..', 'shared', 'vectors', 'ed25519');
const present = existsSync(resolve(dir, 'wycheproof_ed25519_test.json')) && existsSync(resolve(dir, 'speccheck_cases.json'));
if (!present) console.warn(`external-vectors: ${dir} is absent; the Wycheproof and speccheck suites are skipped`);

interface WycheproofTest {
  tcId: number;
  comment: string;
  msg: string;
  sig: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface WycheproofFile {
  numberOfTests: number;
  testGroups: { publicKey: { pk: string }; tests: WycheproofTest[] }[];
}
interface SpeccheckCase {
  message: string;
  pub_key: string;
  signature: string;
}

const BACKENDS: Ed25519Backend[] = [nodeEd25519, nobleEd25519];

/**
 * docs/protocol.md §5, the verdict on each speccheck case (true = accepted) and why.
 * Only 2 and 3 pass: a key of mixed order is allowed, and both satisfy the cofactorless equation.
 */
const SPECCHECK_VERDICTS: [boolean, string][] = [
  [false, '0: small-order A (refused key), small-order R, S = 0'],
  [false, '1: small-order A (refused key), mixed-order R'],
  [true, '2: mixed-order A, small-order R, cofactorless equation holds'],
  [true, '3: mixed-order A and R, cofactorless equation holds'],
  [false, '4: mixed-order A and R, only the cofactored equation holds'],
  [false, '5: mixed-order A, order-L R, only the cofactored equation holds'],
  [false, '6: S > L'],
  [false, '7: S much larger than L'],
  [false, '8: non-canonical R (small order), cofactorless with R reduced'],
  [false, '9: non-canonical R (small order), cofactored with R reduced'],
  [false, '10: non-canonical small-order A (x = 0, sign bit set): refused key'],
  [false, '11: the same A, hashed as received: refused key'],
];

/** Each backend's verify, and a signer cache's verify (the receiver path: prepare once per key). */
function verdicts(backend: Ed25519Backend, pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean[] {
  const cache = new SignerCache(backend, 4);
  return [backend.verify(pk, msg, sig), backend.prepare(pk)(msg, sig), cache.get(pk).verify(msg, sig)];
}

describe.skipIf(!present)('external Ed25519 suites', () => {
  const wycheproof = present
    ? (JSON.parse(readFileSync(resolve(dir, 'wycheproof_ed25519_test.json'), 'utf8')) as WycheproofFile)
    : undefined;
  const speccheck = present ? (JSON.parse(readFileSync(resolve(dir, 'speccheck_cases.json'), 'utf8')) as SpeccheckCase[]) : [];

  it('external - the suites are the files the README describes (151 Wycheproof tests, 12 speccheck cases)', () => {
    const tests = wycheproof!.testGroups.flatMap((g) => g.tests);
    expect(tests.length).toBe(151);
    expect(wycheproof!.numberOfTests).toBe(151);
    expect(tests.filter((t) => t.result === 'valid').length).toBe(88);
    expect(tests.filter((t) => t.result === 'invalid').length).toBe(63);
    expect(speccheck.length).toBe(12);
  });

  for (const backend of BACKENDS) {
    it(`external - ${backend.name} agrees with every Wycheproof result (verify, prepare and SignerCache)`, () => {
      const disagreements: string[] = [];
      let agreed = 0;
      for (const group of wycheproof!.testGroups) {
        const pk = fromHex(group.publicKey.pk);
        for (const t of group.tests) {
          const expected = t.result === 'valid';
          const got = verdicts(backend, pk, fromHex(t.msg), fromHex(t.sig));
          if (got.every((g) => g === expected)) agreed++;
          else disagreements.push(`tcId ${t.tcId} (${t.comment}): expected ${t.result}, got ${got.join('/')}`);
        }
      }
      expect(disagreements).toEqual([]);
      expect(agreed).toBe(151);
    });

    it(`external - ${backend.name} gives the §5 verdict on each of the 12 "Taming the many EdDSAs" cases`, () => {
      const got = speccheck.map((c) => {
        const v = verdicts(backend, fromHex(c.pub_key), fromHex(c.message), fromHex(c.signature));
        expect(new Set(v).size, 'verify, prepare and SignerCache agree').toBe(1);
        return v[0];
      });
      expect(got.map((v) => (v ? 'V' : 'X')).join(' ')).toBe(SPECCHECK_VERDICTS.map(([v]) => (v ? 'V' : 'X')).join(' '));
    });
  }

  it('external - the small-order and non-canonical keys of cases 0, 1, 10 and 11 are refused when first parsed', () => {
    for (const i of [0, 1, 10, 11]) {
      const signer = new SignerCache(nodeEd25519, 4).get(fromHex(speccheck[i]!.pub_key));
      expect(signer.refused, `case ${i}`).toMatch(/small order/);
    }
    for (const i of [2, 3, 4, 5, 6, 7, 8, 9]) {
      expect(new SignerCache(nobleEd25519, 4).get(fromHex(speccheck[i]!.pub_key)).refused, `case ${i}`).toBeUndefined();
    }
  });

  it('external - node and noble give the same answer on every case of both suites', () => {
    const cases = [
      ...wycheproof!.testGroups.flatMap((g) => g.tests.map((t) => [g.publicKey.pk, t.msg, t.sig] as const)),
      ...speccheck.map((c) => [c.pub_key, c.message, c.signature] as const),
    ];
    const differ = cases.filter(
      ([pk, msg, sig]) =>
        nodeEd25519.verify(fromHex(pk), fromHex(msg), fromHex(sig)) !== nobleEd25519.verify(fromHex(pk), fromHex(msg), fromHex(sig)),
    );
    expect(cases.length).toBe(163);
    expect(differ).toEqual([]);
  });
});
