/**
 * The raw Ed25519 loops of bench/signed-throughput.ts (1a, 1b). They run in the
 * receiver process, just before each signed transfer, so the verify rate that
 * the signed rate is compared with comes from the same process (and, with
 * --pin, the same CPU) and from the same moment.
 */
import { performance } from 'node:perf_hooks';
import { generateKey, HEADER_LENGTH, nodeEd25519, PUBLIC_KEY_LENGTH, signFrame, signingInput, subjects } from '@trustmesh/protocol';

/** Mesh names of one fixed length, so every frame of a run has the same size. */
export const meshName = (id: number): string => `tmbench${String(id).padStart(4, '0')}`;

export interface CryptoFixture {
  seed: Uint8Array;
  publicKey: Uint8Array;
  inputs: Uint8Array[];
  signatures: Uint8Array[];
  frameBytes: number;
}

/**
 * 1024 real frames as the e2e sender builds them (same mesh-name length,
 * audience, type and payload size); their exact signing inputs and signatures.
 */
export function cryptoFixture(payload: number): CryptoFixture {
  const sender = generateKey();
  const receiver = generateKey();
  const sub = subjects.message(meshName(0), receiver.agentId, sender.agentId);
  const data = new Uint8Array(payload);
  const inputs: Uint8Array[] = [];
  const signatures: Uint8Array[] = [];
  let frameBytes = 0;
  for (let i = 0; i < 1024; i++) {
    data[0] = i >> 8;
    data[1] = i & 0xff;
    const { bytes } = signFrame(sender, { sub, typ: 'bench', data, aud: receiver.did });
    frameBytes = bytes.length;
    inputs.push(signingInput(bytes.subarray(HEADER_LENGTH)));
    signatures.push(bytes.slice(1 + PUBLIC_KEY_LENGTH, HEADER_LENGTH));
  }
  return { seed: sender.exportSeed(), publicKey: sender.publicKey, inputs, signatures, frameBytes };
}

export interface LoopResult {
  /** ops per wall-clock second: the reported rate. */
  rate: number;
  /** CPU µs per op of this process: used to split the receiver's CPU per message. */
  cpuUs: number;
  /** sign: wrong-length signatures; verify: valid signatures that did not verify. Must be 0. */
  failures: number;
}

/** Runs `op` over the fixture's 1024 inputs, cycling, in a tight loop for `ms`. */
function timeLoop(ms: number, op: (i: number) => boolean): LoopResult {
  let n = 0;
  let failures = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 64; k++, n++) if (!op(n & 1023)) failures++;
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  return { rate: (n * 1000) / (now - start), cpuUs: (cpu.user + cpu.system) / n, failures };
}

/** nodeEd25519 (node:crypto, cached KeyObject) signing real signing inputs, one thread. */
export const measureSign = (f: CryptoFixture, ms: number): LoopResult =>
  timeLoop(ms, (i) => nodeEd25519.sign(f.seed, f.inputs[i]!).length === 64);
/** nodeEd25519 verifying valid signatures over real signing inputs, one thread. */
export const measureVerify = (f: CryptoFixture, ms: number): LoopResult =>
  timeLoop(ms, (i) => nodeEd25519.verify(f.publicKey, f.inputs[i]!, f.signatures[i]!));
