import { describe, expect, it } from 'vitest';
import { isLanceError } from '../common/errors.ts';
import { bootstrapPlan, ClusterSectionSchema, parsePeersFile, resolveNodeId, type ClusterPeer } from './config.ts';

const peer = (nodeId: number): ClusterPeer => ({ nodeId, host: `h${nodeId}`, raftPort: 1993, kafkaPort: 9092, adminPort: 1992 });

describe('cluster bootstrap plan', () => {
  it('founders bootstrap; a node outside bootstrapVoters or told to join does not', () => {
    const peers = [peer(1), peer(2), peer(3), peer(4)];
    expect(bootstrapPlan({}, peers.slice(0, 3), 2)).toEqual({ founders: [1, 2, 3], bootstrap: true });
    expect(bootstrapPlan({ bootstrapVoters: [3, 1, 2] }, peers, 4)).toEqual({ founders: [1, 2, 3], bootstrap: false });
    expect(bootstrapPlan({ bootstrapVoters: [1, 2, 3] }, peers, 1)).toEqual({ founders: [1, 2, 3], bootstrap: true });
    expect(bootstrapPlan({ join: true }, peers, 1)).toEqual({ founders: [1, 2, 3, 4], bootstrap: false });
  });

  it('refuses a duplicate founder id and validates the section with the field named', () => {
    let err: unknown;
    try { bootstrapPlan({ bootstrapVoters: [1, 1] }, [peer(1)], 1); } catch (e) { err = e; }
    expect(isLanceError(err, 'INVALID_CONFIG') && err.message).toMatch(/cluster\.bootstrapVoters: a node id appears twice/);
    const r = ClusterSectionSchema.safeParse({ peers: [], bootstrapVoters: [], join: 'yes' });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['bootstrapVoters: expected at least one node id', 'join: expected true or false']);
  });

  it('the operator\'s peers.yaml maps a pod to its node id (a replacement pod gets a new id)', () => {
    const peers = parsePeersFile([
      'peers:',
      '  - {ordinal: 0, nodeId: 0, pod: demo-0, host: demo-0.h, kafkaPort: 9092, adminPort: 1992, raftPort: 1993}',
      '  - {ordinal: 1, nodeId: 7, pod: demo-1, host: demo-1.h, kafkaPort: 9092, adminPort: 1992, raftPort: 1993}',
    ].join('\n'), 'peers.yaml');
    expect(resolveNodeId({ podName: 'demo-1' }, peers, 1)).toBe(7);
    expect(resolveNodeId({ podName: 'demo-0' }, peers, 0)).toBe(0);
    // no matching entry, or no pod name: the configured id
    expect(resolveNodeId({ podName: 'demo-9' }, peers, 9)).toBe(9);
    expect(resolveNodeId({}, peers, 1)).toBe(1);
  });
});
