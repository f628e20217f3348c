/**
 * @packageDocumentation
 * The TrustMesh operator kill switch. Operators (DIDs named in the mesh
 * configuration) sign kill and revive snapshots on `tm.<mesh>.ctl.<operator>`;
 * each is kept in JetStream KV before it is published, so it is sticky. Every
 * agent with the {@link killSwitch} extension enforces the newest snapshot by
 * its sequence and answers with a signed acknowledgement.
 *
 * @example
 * ```ts
 * import { joinMesh } from '@trustmesh/client'
 * import { createOperator, killSwitch } from '@trustmesh/kill'
 * import { generateKey } from '@trustmesh/protocol'
 * const opKey = generateKey()
 * const ks = killSwitch({ operators: [opKey.did] })
 * const agent = await joinMesh({ mesh: 'demo', name: 'a', servers: url, extensions: [ks] })
 * const operator = await createOperator({ key: opKey, mesh: 'demo', servers: url })
 * const result = await operator.kill()        // { seq, acknowledged: 1, expected: 1, missing: [], latencyMs }
 * ks.state().halted                            // true: agent.send() now throws KilledError
 * await operator.revive()
 * await operator.close(); await agent.leave()
 * ```
 */
export { killSwitch } from './switch.ts';
export type { KillSwitch, KillSwitchInit, KillState, KillSwitchStats, KillSwitchEvents, ControlRefusal } from './switch.ts';
export { createOperator, KillStateError } from './operator.ts';
export type { Operator, OperatorInit, OperationOptions, OperationResult, OperatorView } from './operator.ts';
export {
  KilledError,
  KILL_REFUSALS,
  CONTROL_KIND,
  ACK_KIND,
  CONTROL_TYPES,
  STATE_KEY,
  MAX_TARGETED,
  parseControl,
  parseAck,
} from './control.ts';
export type { KilledScope, KillRefusalReason, ControlData, ControlOp, AckData } from './control.ts';
