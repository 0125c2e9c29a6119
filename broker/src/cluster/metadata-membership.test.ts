import { describe, expect, it } from 'vitest';
import {
  acceptReport, activeBrokers, applyCommand, decodeCommand, emptyMetadata, encodeCommand, foundersOf, nextMembershipStep, planRemoval,
  planUnderReplicated, restoreMetadata, snapshotMetadata, type MetaCommand, type MetadataState,
} from './metadata.ts';

const broker = (id: number) => ({ nodeId: id, host: `h${id}`, kafkaPort: 9000 + id, adminPort: 1900 + id, raftPort: 1800 + id });

function cluster(): MetadataState {
  const s = emptyMetadata();
  applyCommand(s, 1, { op: 'registerBrokers', brokers: [broker(1), broker(2), broker(3)] });
  applyCommand(s, 2, { op: 'createTopic', name: 'rf3', topicId: 'u1', partitions: 2, rf: 3, config: {}, assignment: [[1, 2, 3], [2, 3, 1]] });
  applyCommand(s, 3, { op: 'createTopic', name: 'rf1', topicId: 'u2', partitions: 3, rf: 1, config: {}, assignment: [[1], [2], [3]] });
  applyCommand(s, 4, { op: 'createTopic', name: 'rf2', topicId: 'u3', partitions: 1, rf: 2, config: {}, assignment: [[3, 1]] });
  return s;
}

describe('metadata: broker registry and membership plans', () => {
  it('removal drops the node everywhere, refills from free brokers, and retires the id for good', () => {
    const s = cluster();
    const plan = planRemoval(s, 3);
    // rf3 cannot be refilled (only 2 brokers stay); rf1-2 moves to the least loaded broker; rf2-0 gains node 2
    expect(plan.orphaned).toEqual([]);
    expect(plan.reassign).toEqual([
      { name: 'rf3', partition: 0, replicas: [1, 2] },
      { name: 'rf3', partition: 1, replicas: [2, 1] },
      { name: 'rf1', partition: 2, replicas: [2] },
      { name: 'rf2', partition: 0, replicas: [1, 2] },
    ]);
    // the last broker cannot be removed without orphaning its partitions
    const solo = emptyMetadata();
    applyCommand(solo, 1, { op: 'registerBrokers', brokers: [broker(1)] });
    applyCommand(solo, 2, { op: 'createTopic', name: 't', topicId: 'u', partitions: 1, rf: 1, config: {}, assignment: [[1]] });
    expect(planRemoval(solo, 1)).toEqual({ reassign: [], orphaned: ['t-0'] });
    expect(applyCommand(s, 5, { op: 'unregisterBroker', nodeId: 3, reassign: plan.reassign })).toEqual({ ok: true });
    expect(activeBrokers(s).map((b) => b.nodeId)).toEqual([1, 2]);
    expect(s.topics.rf3!.assignment).toEqual([[1, 2], [2, 1]]);
    // founders stay: they are the Raft groups' bootstrap configs
    expect(foundersOf(s.topics.rf3!)).toEqual([[1, 2, 3], [2, 3, 1]]);
    const again = applyCommand(s, 6, { op: 'registerBroker', broker: broker(3) });
    expect(again.ok).toBe(false);
    expect(again.error).toMatch(/node id 3 was removed; node ids are never reused/);
    // unregistering twice is idempotent
    expect(applyCommand(s, 7, { op: 'unregisterBroker', nodeId: 3, reassign: [] })).toEqual({ ok: true });
    expect(s.removed).toEqual([3]);
  });

  it('a new broker tops up under-replicated partitions, least loaded first', () => {
    const s = cluster();
    applyCommand(s, 5, { op: 'unregisterBroker', nodeId: 3, reassign: planRemoval(s, 3).reassign });
    const plan = planUnderReplicated(s, 4);
    expect(plan).toEqual([
      { name: 'rf3', partition: 0, replicas: [1, 2, 4] },
      { name: 'rf3', partition: 1, replicas: [2, 1, 4] },
    ]);
    applyCommand(s, 6, { op: 'registerBroker', broker: broker(4), reassign: plan });
    expect(activeBrokers(s).map((b) => b.nodeId)).toEqual([1, 2, 4]);
    expect(s.topics.rf3!.assignment).toEqual([[1, 2, 4], [2, 1, 4]]);
    expect(planUnderReplicated(s)).toEqual([]);
    expect(restoreMetadata(snapshotMetadata(s))).toEqual(s);
  });

  it('leader reports only move forward in term; the same leader may update its membership', () => {
    const s = cluster();
    const rep = (term: number, leader: number, voters = [1, 2, 3]) => applyCommand(s, 9, { op: 'reportPartition', name: 'rf3', id: 1, partition: 0, state: { leader, term, voters, learners: [] } });
    expect(rep(3, 2).ok).toBe(true);
    expect(rep(2, 1).ok).toBe(false);
    expect(rep(3, 1).ok).toBe(false);
    expect(rep(3, 2, [1, 2]).ok).toBe(true);
    expect(s.topics.rf3!.leaders![0]).toEqual({ leader: 2, term: 3, voters: [1, 2], learners: [] });
    expect(rep(4, 1).ok).toBe(true);
    // a report for a deleted and re-created topic (other numeric id) is refused
    expect(applyCommand(s, 10, { op: 'reportPartition', name: 'rf3', id: 99, partition: 0, state: { leader: 1, term: 9, voters: [1], learners: [] } }).ok).toBe(false);
    expect(acceptReport(null, { leader: 1, term: 0, voters: [], learners: [] })).toBe(true);
    const c: MetaCommand = { op: 'reportPartition', name: 'rf3', id: 1, partition: 0, state: { leader: 1, term: 4, voters: [1], learners: [2] } };
    expect(decodeCommand(encodeCommand(c), 'e')).toEqual(c);
  });

  it('membership steps: drop strays and dead voters, add, promote caught-up, then remove; a leaving leader transfers first', () => {
    const lag = (m: Record<number, number>) => (id: number) => m[id] ?? Infinity;
    const up = (...dead: number[]) => (id: number) => !dead.includes(id);
    const cfg = (voters: number[], learners: number[] = []) => ({ voters, learners });
    const step = (self: number, c: { voters: number[]; learners: number[] }, target: number[], l: Record<number, number> = {}, alive = up()) =>
      nextMembershipStep(self, c, target, lag(l), alive, 64);
    expect(step(1, cfg([1, 2, 3]), [1, 2, 3])).toBeNull();
    expect(step(1, cfg([1, 2, 3], [5]), [1, 2, 3])).toEqual({ kind: 'remove', nodeId: 5 });
    // replacing a live node: add first, keep the old voter until the new one is a voter
    expect(step(1, cfg([1, 2, 3]), [1, 2, 4])).toEqual({ kind: 'addLearner', nodeId: 4 });
    expect(step(1, cfg([1, 2, 3], [4]), [1, 2, 4], { 4: 500 })).toBeNull();
    expect(step(1, cfg([1, 2, 3], [4]), [1, 2, 4], { 4: 3 })).toEqual({ kind: 'promote', nodeId: 4 });
    expect(step(1, cfg([1, 2, 3, 4]), [1, 2, 4])).toEqual({ kind: 'remove', nodeId: 3 });
    // replacing a dead node: remove it first (with voters [1, 3] and 3 dead nothing else could commit)
    expect(step(1, cfg([1, 3]), [1, 4], {}, up(3))).toEqual({ kind: 'remove', nodeId: 3 });
    expect(step(1, cfg([1, 2, 3]), [1, 2, 4], {}, up(3))).toEqual({ kind: 'remove', nodeId: 3 });
    // the leader itself must go: hand leadership to the most caught-up wanted voter
    expect(step(3, cfg([1, 2, 3]), [1, 2], { 1: 9, 2: 0 })).toEqual({ kind: 'transfer', to: 2 });
    expect(step(3, cfg([3]), [1])).toEqual({ kind: 'addLearner', nodeId: 1 });
    expect(step(3, cfg([3], [1]), [1], { 1: 0 })).toEqual({ kind: 'promote', nodeId: 1 });
    expect(step(3, cfg([1, 3]), [1], { 1: 0 })).toEqual({ kind: 'transfer', to: 1 });
    expect(step(1, cfg([1, 3]), [1])).toEqual({ kind: 'remove', nodeId: 3 });
  });
});
