/**
 * What a misbehaving delegator does: encode and sign a capability link by hand
 * (docs/delegation.md §4.1 layout, §4.2 signing input), with no rule checked.
 * The protocol package's `delegate()` refuses to sign such a link; a worker's
 * `verifyChain` refuses to act on it and names the signer.
 */
import { randomBytes } from 'node:crypto';
import { type AgentKey, type CapabilityToken, decodeToken, publicKeyFromDid, tokenSigningInput } from '@trustmesh/protocol';

/** A link from `parent` to `audience` granting `scope`, signed by `issuer`, whatever the parent allows. */
export function signUncheckedLink(issuer: AgentKey, parent: CapabilityToken, audience: string, scope: string[]): CapabilityToken {
  const patterns = scope.map((p) => Buffer.from(p, 'ascii'));
  const payload = Buffer.alloc(131 + patterns.reduce((n, p) => n + 1 + p.length, 0));
  payload[0] = 0x01; // version
  Buffer.from(issuer.publicKey).copy(payload, 1);
  Buffer.from(publicKeyFromDid(audience)).copy(payload, 33);
  Buffer.from(parent.hash).copy(payload, 65);
  randomBytes(16).copy(payload, 97); // nonce
  payload.writeBigUInt64BE(BigInt(parent.notBefore), 113);
  payload.writeBigUInt64BE(BigInt(parent.expiry), 121);
  payload[129] = Math.max(0, parent.depth - 1);
  payload[130] = patterns.length;
  let at = 131;
  for (const p of patterns) {
    payload[at++] = p.length;
    p.copy(payload, at);
    at += p.length;
  }
  const decoded = decodeToken(Buffer.concat([payload, issuer.sign(tokenSigningInput(payload))]));
  if (!decoded.ok) throw new Error(`the hand-made link does not decode: ${decoded.detail}`);
  return decoded.token;
}
