import { generateKey, InvalidArgumentError } from '@trustmesh/protocol';
import { describe, expect, it } from 'vitest';
import { CONTROL_TYPES, KilledError, killSwitch, parseAck, parseControl } from '../src/index.ts';

const id = () => generateKey().agentId;

describe('kill - misuse and control data', () => {
  it('kill - killSwitch refuses an empty operator list and strings that are not did:key', () => {
    expect(() => killSwitch({ operators: [] })).toThrow(InvalidArgumentError);
    expect(() => killSwitch({ operators: ['did:key:zNotAKey'] })).toThrow(InvalidArgumentError);
    expect(() => killSwitch({ operators: [generateKey().agentId] })).toThrow(InvalidArgumentError);
    expect(killSwitch({ operators: [generateKey().did] }).state()).toEqual({ seq: 0, halted: false, all: false, killed: [] });
  });

  it('kill - parseControl takes consistent snapshots only', () => {
    const a = id();
    const b = id();
    expect(parseControl(CONTROL_TYPES.kill, { seq: 3, op: 'kill', target: a, all: false, agents: [b, a] })).toEqual({
      seq: 3,
      op: 'kill',
      target: a,
      all: false,
      agents: [b, a],
    });
    expect(parseControl(CONTROL_TYPES.revive, { seq: 4, op: 'revive', all: false, agents: [b] })).toMatchObject({ seq: 4 });
    const refused = [
      [CONTROL_TYPES.kill, { seq: 3, op: 'kill', target: a, all: false, agents: [b] }], // target not halted by its kill
      [CONTROL_TYPES.revive, { seq: 3, op: 'revive', target: a, all: false, agents: [a] }], // target still halted by its revive
      [CONTROL_TYPES.revive, { seq: 3, op: 'revive', all: true, agents: [] }], // a global revive that leaves all halted
      [CONTROL_TYPES.kill, { seq: 3, op: 'kill', all: true, agents: [a, a] }], // duplicates
      [CONTROL_TYPES.kill, { seq: 1.5, op: 'kill', all: true, agents: [] }],
      [CONTROL_TYPES.kill, { seq: 2 ** 53, op: 'kill', all: true, agents: [] }],
      [CONTROL_TYPES.kill, { seq: 3, op: 'kill', all: 'yes', agents: [] }],
      [CONTROL_TYPES.kill, { seq: 3, op: 'kill', all: true, agents: {} }],
      [CONTROL_TYPES.kill, [3, 'kill']],
      [CONTROL_TYPES.kill, null],
      [CONTROL_TYPES.ack, { seq: 3, op: 'kill', all: true, agents: [] }],
    ] as const;
    for (const [typ, data] of refused) expect(parseControl(typ, data), JSON.stringify(data)).toBeUndefined();
    expect(parseControl(CONTROL_TYPES.kill, { seq: 3, op: 'kill', all: true, agents: Array.from({ length: 4097 }, id) })).toBeUndefined();
  });

  it('kill - parseAck and KilledError', () => {
    expect(parseAck({ seq: 2, state: 'halted' })).toEqual({ seq: 2, state: 'halted' });
    expect(parseAck({ seq: 2, state: 'dead' })).toBeUndefined();
    expect(parseAck({ seq: 0, state: 'running' })).toBeUndefined();
    const error = new KilledError('peer', generateKey().did, 7);
    expect(error).toMatchObject({ name: 'KilledError', code: 'killed', scope: 'peer', seq: 7 });
  });
});
