import { describe, expect, it } from 'vitest';
import { isLanceError } from '../common/errors.ts';
import {
  applyCommand, assignReplicas, decodeCommand, emptyMetadata, encodeCommand, partitionGroup, restoreMetadata, snapshotMetadata,
} from './metadata.ts';

describe('metadata state machine', () => {
  it('creates, grows, reconfigures and deletes topics; numeric ids are never reused', () => {
    const s = emptyMetadata();
    expect(applyCommand(s, 2, { op: 'createTopic', name: 'a', topicId: 'u-a', partitions: 2, rf: 2, config: {}, assignment: [[1, 2], [2, 3]] })).toEqual({ ok: true });
    expect(s.topics.a!.id).toBe(1);
    expect(applyCommand(s, 3, { op: 'createTopic', name: 'a', topicId: 'u-a2', partitions: 1, rf: 1, config: {}, assignment: [[1]] }).ok).toBe(false);
    expect(s.topics.a!.topicId).toBe('u-a');
    applyCommand(s, 4, { op: 'createPartitions', name: 'a', assignment: [[3, 1]] });
    expect(s.topics.a!.assignment).toEqual([[1, 2], [2, 3], [3, 1]]);
    applyCommand(s, 5, { op: 'alterConfig', name: 'a', config: { 'retention.ms': '1000' } });
    expect(s.topics.a!.config).toEqual({ 'retention.ms': '1000' });
    expect(applyCommand(s, 6, { op: 'deleteTopic', name: 'a' })).toEqual({ ok: true });
    expect(applyCommand(s, 7, { op: 'deleteTopic', name: 'a' }).ok).toBe(false);
    applyCommand(s, 8, { op: 'createTopic', name: 'a', topicId: 'u-a3', partitions: 1, rf: 1, config: {}, assignment: [[1]] });
    expect(s.topics.a!.id).toBe(2);
    expect(partitionGroup(s.topics.a!, 0)).toBe('topic_2/0');
    expect(s.applied).toBe(8);
    applyCommand(s, 9, { op: 'registerBroker', broker: { nodeId: 4, host: 'h', kafkaPort: 1, adminPort: 2, raftPort: 3 } });
    expect(restoreMetadata(snapshotMetadata(s))).toEqual(s);
  });

  it('round-trips commands and refuses malformed ones with CORRUPT naming the field', () => {
    const c = { op: 'deleteTopic', name: 'x' } as const;
    expect(decodeCommand(encodeCommand(c), 'e1')).toEqual(c);
    let err: unknown;
    try { decodeCommand(Buffer.from('{"op":"createTopic","name":"x"}'), 'entry 7'); } catch (e) { err = e; }
    expect(isLanceError(err, 'CORRUPT') && err.message).toMatch(/entry 7: invalid metadata command: .*topicId/);
    expect(() => decodeCommand(Buffer.from('nope'), 'entry 8')).toThrow(/entry 8: metadata command is not JSON/);
  });

  it('assigns replicas round-robin with the replication factor, spreading first replicas', () => {
    expect(assignReplicas([3, 1, 2], 3, 3, 0)).toEqual([[1, 2, 3], [2, 3, 1], [3, 1, 2]]);
    expect(assignReplicas([1, 2, 3], 2, 1, 1)).toEqual([[2], [3]]);
    expect(assignReplicas([1, 2, 3], 1, 2, 0, 2)).toEqual([[3, 1]]);
    expect(() => assignReplicas([1, 2], 1, 3, 0)).toThrow(/replicationFactor: 3 is not within 1..2/);
  });
});
