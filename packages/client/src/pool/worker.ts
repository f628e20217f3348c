/**
 * A verification worker: checks Ed25519 signatures of whole frames, nothing
 * else. The main thread has already checked each frame's size, version and
 * header key (FrameVerifier.precheck) and does the body and the stateful checks
 * itself once the verdicts come back (see pool.ts).
 */
import { parentPort } from 'node:worker_threads';
import { HEADER_LENGTH, SignerCache, signingInput } from '@trustmesh/protocol';
import type { BatchRequest, BatchResult } from './pool.ts';

const signers = new SignerCache();
const port = parentPort!;

port.on('message', (request: BatchRequest) => {
  const bytes = new Uint8Array(request.frames);
  const ends = request.ends;
  const ok = new Uint8Array(ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i]!;
    const frame = bytes.subarray(start, end);
    start = end;
    try {
      const signer = signers.get(frame.subarray(1, 33));
      ok[i] = signer.verify(signingInput(frame.subarray(HEADER_LENGTH)), frame.subarray(33, HEADER_LENGTH)) ? 1 : 0;
    } catch {
      ok[i] = 0; // never trust a frame whose check failed
    }
  }
  const result: BatchResult = { id: request.id, ok };
  port.postMessage(result, [ok.buffer]);
});
