import { describe, expect, it } from 'vitest';
import { findCondition, isConditionTrue, setCondition } from './conditions.ts';
import { parseLanceClusterStatus, type LanceClusterConditionType } from './lancecluster.ts';

const t0 = new Date('2026-11-22T10:00:00.123Z');
const t1 = new Date('2026-11-22T10:05:00Z');

describe('conditions', () => {
  it('adds a condition with the transition time in RFC 3339 seconds', () => {
    const list = setCondition<LanceClusterConditionType>([], { type: 'Ready', status: 'False', reason: 'Creating', observedGeneration: 1 }, t0);
    expect(list).toEqual([{ type: 'Ready', status: 'False', reason: 'Creating', message: '', lastTransitionTime: '2026-11-22T10:00:00Z', observedGeneration: 1 }]);
    // What the helpers produce is a valid status for the schema.
    expect(() => parseLanceClusterStatus({ conditions: list })).not.toThrow();
  });

  it('keeps lastTransitionTime while the status stays, moves it when the status changes', () => {
    let list = setCondition<LanceClusterConditionType>(undefined, { type: 'Ready', status: 'False', reason: 'Creating', observedGeneration: 1 }, t0);
    list = setCondition(list, { type: 'Ready', status: 'False', reason: 'WaitingForPods', message: '1/3 ready', observedGeneration: 2 }, t1);
    expect(findCondition(list, 'Ready')).toMatchObject({ reason: 'WaitingForPods', message: '1/3 ready', lastTransitionTime: '2026-11-22T10:00:00Z', observedGeneration: 2 });
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'AllBrokersReady', observedGeneration: 2 }, t1);
    expect(findCondition(list, 'Ready')?.lastTransitionTime).toBe('2026-11-22T10:05:00Z');
    expect(list).toHaveLength(1);
  });

  it('keeps order, appends new types and tells stale conditions apart', () => {
    let list = setCondition<LanceClusterConditionType>([], { type: 'Ready', status: 'True', reason: 'Ok', observedGeneration: 3 }, t0);
    list = setCondition(list, { type: 'SplitBrain', status: 'True', reason: 'TwoLeaders', observedGeneration: 3 }, t0);
    expect(list.map((c) => c.type)).toEqual(['Ready', 'SplitBrain']);
    expect(isConditionTrue(list, 'Ready', 3)).toBe(true);
    expect(isConditionTrue(list, 'Ready', 4)).toBe(false);
    expect(isConditionTrue(list, 'Fenced')).toBe(false);
  });
});
