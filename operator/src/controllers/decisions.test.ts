import { describe, expect, it } from 'vitest';
import type { ClusterView } from '../../../broker/src/admin/client.ts';
import { toBrokerView } from './broker-admin.ts';
import {
  detectStale, maxReplicationFactor, volumeLost, withLags, type BrokerGroupView,
  detectSplitBrain, fencingPlan, isPaused, leaderOf, members, nextRolloutStep, observePod, parseFencedAnnotation, phaseOf, planRollout,
  replaceStep, scaleStep, statusChanged, withCondition, type BrokerView, type PodObservation,
  allocateNodeId, nodeIdOf, nodeIdTable, nodeLost, replacementStep, type MemberState, type ReplacementState,
} from './decisions.ts';

const T = { image: 'lance/broker:v2', configHash: 'h2' };
function pod(name: string, o: Partial<PodObservation> = {}): PodObservation {
  return { name, ordinal: Number(name.split('-').pop()), ready: true, image: 'lance/broker:v1', configHash: 'h2', fencedLabel: false, replaceRequested: false, deleting: false, podIP: '127.0.0.1', ...o };
}
const view = (p: string, o: Partial<BrokerView> = {}): BrokerView => ({ pod: p, nodeId: Number(p.split('-').pop()), role: 'Follower', leads: [], ...o });

describe('guards', () => {
  it('pause annotation', () => {
    expect(isPaused({ 'lance.dev/reconcile': 'disabled' })).toBe(true);
    expect(isPaused({ 'lance.dev/reconcile': 'enabled' })).toBe(false);
    expect(isPaused(undefined)).toBe(false);
  });

  it('fencing annotation parsing names the annotation on error', () => {
    expect(parseFencedAnnotation(undefined)).toEqual({ ok: true, pods: [] });
    expect(parseFencedAnnotation('["demo-1","demo-1","demo-2"]')).toEqual({ ok: true, pods: ['demo-1', 'demo-2'] });
    const bad = parseFencedAnnotation('demo-1');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toContain('lance.dev/fenced');
    expect(parseFencedAnnotation('[1]').ok).toBe(false);
    expect(parseFencedAnnotation('{"a":1}').ok).toBe(false);
  });

  it('observePod reads readiness, image, hash, fence label, replace annotation, ordinal', () => {
    const o = observePod({
      metadata: { name: 'demo-2', labels: { 'apps.kubernetes.io/pod-index': '2', 'lance.dev/fenced': 'true' }, annotations: { 'lance.dev/config-hash': 'abc', 'lance.dev/replace': 'true' }, creationTimestamp: '2026-11-22T10:00:00Z' },
      spec: { nodeName: 'node-1', containers: [{ name: 'side', image: 'x' }, { name: 'lance', image: 'lance/broker:v1' }] },
      status: { podIP: '127.1.2.3', conditions: [{ type: 'Ready', status: 'True' }] },
    }, 'lance');
    expect(o).toEqual({ name: 'demo-2', ordinal: 2, ready: true, image: 'lance/broker:v1', configHash: 'abc', fencedLabel: true, replaceRequested: true, deleting: false, podIP: '127.1.2.3', created: '2026-11-22T10:00:00Z', scheduled: true });
  });
  it('volumeLost: a claim deleted under a pod created before the deletion; not the replacement waiting for its new claim', () => {
    const p = pod('demo-1', { created: '2026-11-22T10:00:00Z', scheduled: true });
    expect(volumeLost(p, {})).toBe(false);
    expect(volumeLost(p, { deletionTimestamp: '2026-11-22T10:05:00Z' })).toBe(true);
    expect(volumeLost({ ...p, created: '2026-11-22T10:05:01Z' }, { deletionTimestamp: '2026-11-22T10:05:00Z' })).toBe(false);
    expect(volumeLost({ ...p, deleting: true }, { deletionTimestamp: '2026-11-22T10:05:00Z' })).toBe(false);
    // Gone entirely: lost for a scheduled pod that cannot get Ready; a Pending pod gets a new claim from the StatefulSet.
    expect(volumeLost({ ...p, ready: false }, undefined)).toBe(true);
    expect(volumeLost({ ...p, ready: true }, undefined)).toBe(false);
    expect(volumeLost({ ...p, ready: false, scheduled: false }, undefined)).toBe(false);
  });
});

describe('rolling update', () => {
  const pods = [pod('demo-0'), pod('demo-1'), pod('demo-2')];

  it('followers first (descending ordinal), the leader last', () => {
    expect(planRollout(pods, T, 'demo-2', undefined).podsPending).toEqual(['demo-1', 'demo-0', 'demo-2']);
    expect(planRollout(pods, T, 'demo-0', undefined).podsPending).toEqual(['demo-2', 'demo-1', 'demo-0']);
  });

  it('pods already on the target are skipped; a config-hash difference alone counts', () => {
    const p = [pod('demo-0', { image: T.image }), pod('demo-1', { image: T.image, configHash: 'old' }), pod('demo-2', { image: T.image })];
    expect(planRollout(p, T, 'demo-1', undefined).podsPending).toEqual(['demo-1']);
  });

  it('resumes a recorded plan (operator restart) and keeps the order, dropping finished pods', () => {
    const p = [pod('demo-0'), pod('demo-1', { image: T.image }), pod('demo-2')];
    const plan = planRollout(p, T, 'demo-0', { podsPending: ['demo-1', 'demo-2', 'demo-0'], order: ['demo-x'] });
    expect(plan).toEqual({ podsPending: ['demo-2', 'demo-0'], order: ['demo-x'] });
  });

  it('a leader change mid-rollout moves the new leader last', () => {
    expect(planRollout(pods, T, 'demo-1', { podsPending: ['demo-1', 'demo-0', 'demo-2'], order: [] }).podsPending).toEqual(['demo-0', 'demo-2', 'demo-1']);
  });

  it('each step is gated on all pods Ready and caught up; leader gets a transfer first', () => {
    const plan = { podsPending: ['demo-1', 'demo-2'], order: [] };
    const base = { plan, pods, replicas: 3, leader: 'demo-2', views: [], transferSupported: true };
    expect(nextRolloutStep(base)).toEqual({ type: 'restart', pod: 'demo-1' });
    expect(nextRolloutStep({ ...base, pods: [pods[0]!, pod('demo-1', { ready: false }), pods[2]!] }).type).toBe('wait');
    expect(nextRolloutStep({ ...base, pods: pods.slice(0, 2) }).type).toBe('wait');
    expect(nextRolloutStep({ ...base, views: [view('demo-0', { lag: 10 })] })).toMatchObject({ type: 'wait', reason: expect.stringContaining('demo-0') });
    const leaderNext = { ...base, plan: { podsPending: ['demo-2'], order: ['demo-1', 'demo-0'] } };
    expect(nextRolloutStep(leaderNext)).toEqual({ type: 'transfer-leader', pod: 'demo-2' });
    expect(nextRolloutStep({ ...leaderNext, transferSupported: false })).toEqual({ type: 'restart', pod: 'demo-2', leaderNotTransferred: true });
    expect(nextRolloutStep({ ...base, plan: { podsPending: [], order: [] } })).toEqual({ type: 'done' });
  });

  it('a single-broker cluster restarts its only pod (no transfer possible)', () => {
    expect(nextRolloutStep({ plan: { podsPending: ['demo-0'], order: [] }, pods: [pod('demo-0')], replicas: 1, leader: 'demo-0', views: [], transferSupported: false })).toEqual({ type: 'restart', pod: 'demo-0' });
  });
});

describe('scaling', () => {
  const active = (ids: number[]) => ids.map((nodeId) => ({ nodeId, state: 'active' as const }));
  const s = { readyPods: 3, maxReplicationFactor: 3, membershipSupported: true, membership: active([0, 1, 2]) };
  it('up: add the next node and grow; down: remove the last node, shrink once it is out of every group', () => {
    expect(scaleStep({ ...s, current: 3, desired: 5 })).toEqual({ type: 'grow', to: 4, nodeId: 3 });
    expect(scaleStep({ ...s, current: 5, desired: 3, readyPods: 5, membership: active([0, 1, 2, 3, 4]) })).toEqual({ type: 'remove', nodeId: 4 });
    expect(scaleStep({ ...s, current: 5, desired: 3, readyPods: 5, membership: [...active([0, 1, 2, 3]), { nodeId: 4, state: 'removing' }] })).toEqual({ type: 'remove', nodeId: 4 });
    expect(scaleStep({ ...s, current: 5, desired: 3, readyPods: 5, membership: [...active([0, 1, 2, 3]), { nodeId: 4, state: 'removed' }] })).toEqual({ type: 'shrink', to: 4, nodeId: 4 });
    expect(scaleStep({ ...s, current: 4, desired: 3, readyPods: 4, membership: active([0, 1, 2]) })).toEqual({ type: 'shrink', to: 3, nodeId: 3 });
    expect(scaleStep({ ...s, current: 3, desired: 3 })).toEqual({ type: 'none' });
    expect(scaleStep({ ...s, current: 3, desired: 4, nodeIdOf: (o) => o + 10 })).toEqual({ type: 'grow', to: 4, nodeId: 13 });
  });
  it('refuses below the replication factor, and without membership support', () => {
    expect(scaleStep({ ...s, current: 3, desired: 1 })).toMatchObject({ type: 'refuse', reason: expect.stringContaining('replication factor 3') });
    expect(scaleStep({ ...s, current: 3, desired: 5, membershipSupported: false })).toMatchObject({ type: 'refuse', reason: expect.stringContaining('membership') });
  });
  it('a grow interrupted after the member was added (StatefulSet not grown yet) is repeated, not waited on', () => {
    const m = [...active([0, 1, 2]), { nodeId: 7, state: 'joining' as const }];
    expect(scaleStep({ ...s, current: 3, desired: 4, membership: m, nodeIdOf: (o) => (o === 3 ? 7 : o), pendingNodeId: 7 })).toEqual({ type: 'grow', to: 4, nodeId: 7 });
    expect(scaleStep({ ...s, current: 3, desired: 4, membership: m, nodeIdOf: (o) => (o === 3 ? 8 : o) }).type).toBe('wait');
  });
  it('waits for readiness, for a joining member, and for a known membership', () => {
    expect(scaleStep({ ...s, current: 4, desired: 5, readyPods: 3 }).type).toBe('wait');
    expect(scaleStep({ ...s, current: 4, desired: 5, readyPods: 4, membership: [...active([0, 1, 2]), { nodeId: 3, state: 'joining' }] })).toMatchObject({ type: 'wait', reason: expect.stringContaining('node 3 joining') });
    expect(scaleStep({ ...s, current: 3, desired: 5, membership: undefined }).type).toBe('wait');
  });
  it('maxReplicationFactor: the most voters of any partition group', () => {
    const g = (group: string, voters: number[]): BrokerGroupView => ({ group, leader: 0, term: 1, voters, followers: [] });
    expect(maxReplicationFactor([view('demo-0', { groups: [g('metadata', [0, 1, 2, 3, 4]), g('topic_1/0', [0, 1, 2]), g('topic_2/0', [0])] })])).toBe(3);
    expect(maxReplicationFactor([view('demo-0')])).toBeUndefined();
  });
});

describe('split brain', () => {
  it('two pods claiming the same group: the lower term is fenced', () => {
    const views = [view('demo-0', { role: 'Leader', term: 4, leads: [{ group: 'metadata', term: 4 }] }), view('demo-1', { role: 'Leader', term: 7, leads: [{ group: 'metadata', term: 7 }, { group: 't/0', term: 7 }] }), view('demo-2')];
    const sb = detectSplitBrain(views);
    expect(sb).toEqual([{ group: 'metadata', claimants: [{ pod: 'demo-0', term: 4 }, { pod: 'demo-1', term: 7 }], fence: ['demo-0'] }]);
    expect(leaderOf(views)?.pod).toBe('demo-1');
  });
  it('unknown or tied terms: detected, but nobody is fenced automatically', () => {
    expect(detectSplitBrain([view('a-0', { leads: [{ group: 'metadata' }] }), view('a-1', { leads: [{ group: 'metadata', term: 3 }] })])[0]!.fence).toEqual([]);
    expect(detectSplitBrain([view('a-0', { leads: [{ group: 'g', term: 3 }] }), view('a-1', { leads: [{ group: 'g', term: 3 }] })])[0]!.fence).toEqual([]);
    expect(detectSplitBrain([view('a-0', { leads: [{ group: 'g', term: 3 }] })])).toEqual([]);
  });
  it('fencing plan: automatic fencing never leaves fewer unfenced brokers than a majority', () => {
    const pods = [pod('demo-0'), pod('demo-1'), pod('demo-2')];
    expect(fencingPlan({ pods, manual: [], splitBrainLosers: ['demo-0'], views: [], voters: 3 })).toMatchObject({ fence: ['demo-0'], refused: [] });
    const two = fencingPlan({ pods, manual: [], splitBrainLosers: ['demo-0', 'demo-1'], views: [], voters: 3 });
    expect(two).toMatchObject({ fence: [], refused: ['demo-0', 'demo-1'] });
    // Manual fencing is the user's decision.
    expect(fencingPlan({ pods, manual: ['demo-0', 'demo-1'], splitBrainLosers: [], views: [], voters: 3 }).fence).toEqual(['demo-0', 'demo-1']);
  });
  it('fencing plan: a labelled pod whose broker reports itself unfenced is fenced again (an earlier admin call failed)', () => {
    const pods = [pod('demo-0', { fencedLabel: true }), pod('demo-1', { fencedLabel: true })];
    const plan = fencingPlan({ pods, manual: ['demo-0', 'demo-1'], splitBrainLosers: [], views: [view('demo-0', { fenced: false }), view('demo-1', { fenced: true })] });
    expect(plan.fence).toEqual(['demo-0']);
  });
  it('fencing plan: manual ∪ losers get fenced; healed and caught-up pods unfenced', () => {
    const pods = [pod('demo-0'), pod('demo-1', { fencedLabel: true }), pod('demo-2', { fencedLabel: true })];
    const plan = fencingPlan({ pods, manual: ['demo-0'], splitBrainLosers: [], views: [view('demo-2', { lag: 100 })] });
    expect(plan.fence).toEqual(['demo-0']);
    expect(plan.unfence).toEqual(['demo-1']); // demo-2 still behind: stays fenced
  });
});

describe('node replacement', () => {
  it('annotation or lost PVC; never the leader first', () => {
    const pods = [pod('demo-0', { replaceRequested: true }), pod('demo-1'), pod('demo-2')];
    expect(replaceStep({ pods, pvcMissing: [], leader: 'demo-1', replicas: 3 })).toEqual({ type: 'replace', pod: 'demo-0', reason: 'annotation' });
    expect(replaceStep({ pods, pvcMissing: [], leader: 'demo-0', replicas: 3 })).toEqual({ type: 'transfer-leader', pod: 'demo-0' });
    expect(replaceStep({ pods: [pod('demo-0', { replaceRequested: true }), pod('demo-1')], pvcMissing: ['demo-1'], leader: 'demo-0', replicas: 3 })).toEqual({ type: 'replace', pod: 'demo-1', reason: 'pvc-lost' });
    expect(replaceStep({ pods: [pod('demo-0')], pvcMissing: [], leader: undefined, replicas: 1 })).toEqual({ type: 'none' });
  });
});

describe('status', () => {
  it('phase', () => {
    const b = { specValid: true, podsExist: 3, readyPods: 3, replicas: 3, rollingOut: false, scaling: false, splitBrain: false, everRunning: false };
    expect(phaseOf(b)).toBe('Running');
    expect(phaseOf({ ...b, specValid: false })).toBe('Failed');
    expect(phaseOf({ ...b, readyPods: 1, podsExist: 1 })).toBe('Creating');
    expect(phaseOf({ ...b, podsExist: 0, readyPods: 0 })).toBe('Pending');
    expect(phaseOf({ ...b, readyPods: 2, everRunning: true })).toBe('Degraded');
    expect(phaseOf({ ...b, rollingOut: true })).toBe('Updating');
    expect(phaseOf({ ...b, splitBrain: true })).toBe('Degraded');
  });
  it('members from pods and broker views', () => {
    expect(members([pod('demo-1'), pod('demo-0', { fencedLabel: true })], [view('demo-0', { role: 'Standalone', term: 2 })])).toEqual([
      { ordinal: 0, pod: 'demo-0', nodeId: 0, role: 'Leader', term: 2, fenced: true, ready: true },
      { ordinal: 1, pod: 'demo-1', role: 'Unknown', fenced: false, ready: true },
    ]);
  });
  it('statusChanged ignores key order and undefined; conditions keep transition time when unchanged', () => {
    expect(statusChanged({ phase: 'Running', readyReplicas: 1 }, { readyReplicas: 1, phase: 'Running', leader: undefined })).toBe(false);
    expect(statusChanged({ phase: 'Running' }, { phase: 'Degraded' })).toBe(true);
    expect(statusChanged(undefined, {})).toBe(false);
    const c1 = withCondition(undefined, 'Ready', 'True', 'AllReady', '1/1', 1, new Date('2026-01-01T00:00:00Z'));
    const c2 = withCondition(c1, 'Ready', 'True', 'AllReady', '1/1', 1, new Date('2026-01-02T00:00:00Z'));
    expect(statusChanged({ conditions: c1 }, { conditions: c2 })).toBe(false);
    expect(c2[0]).toMatchObject({ observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' });
  });
  it('toBrokerView (cluster mode): role and term from __meta, leaderships from the Raft groups', () => {
    const g = (group: string, role: string, term: number) => ({ group, topic: null, partition: null, role, term, leader: null, commitIndex: 0, lastIndex: 0, voters: [], learners: [], followers: [] });
    const cv = { clusterId: 'c', nodeId: 2, role: 'leader', readOnly: false, version: '1', startedAt: 'x', listeners: { kafka: { host: 'h', port: 1 }, admin: { host: 'h', port: 2 } }, brokers: [], topics: [], groups: [g('__meta', 'leader', 7), g('t-0', 'leader', 3), g('t-1', 'follower', 3)] } as unknown as ClusterView;
    expect(toBrokerView('demo-2', cv)).toMatchObject({ pod: 'demo-2', nodeId: 2, role: 'Leader', term: 7, leaderId: null, leads: [{ group: 'metadata', term: 7 }, { group: 't-0', term: 3 }] });
    expect(toBrokerView('demo-2', cv).groups?.map((x) => x.group)).toEqual(['metadata', 't-0', 't-1']);
  });
  it('toBrokerView: standalone leads metadata and its partitions; no term yet', () => {
    const cv = { clusterId: 'c', nodeId: 0, role: 'standalone', readOnly: false, version: '1', startedAt: 'x', listeners: { kafka: { host: 'h', port: 1 }, admin: { host: 'h', port: 2 } }, brokers: [], topics: [{ id: 1, name: 't', topicId: 'u', partitions: [{ partition: 0, leader: 0, logStartOffset: 0, logEndOffset: 0, highWatermark: 0, sizeBytes: 0, segments: 1 }, { partition: 1, leader: 5, logStartOffset: 0, logEndOffset: 0, highWatermark: 0, sizeBytes: 0, segments: 1 }] }] } as unknown as ClusterView;
    expect(toBrokerView('demo-0', cv)).toEqual({ pod: 'demo-0', nodeId: 0, role: 'Standalone', leads: [{ group: 'metadata' }, { group: 't/0' }] });
  });
});

describe('partitioned members and lag (cluster mode views)', () => {
  const meta = (leader: number | null, term: number, followers: { nodeId: number; lag: number }[] = []): BrokerGroupView => ({ group: 'metadata', leader, term, voters: [0, 1, 2], followers });
  const view = (i: number, role: 'Leader' | 'Follower', term: number, leaderId: number | null, groups: BrokerGroupView[]): BrokerView => ({
    pod: `demo-${i}`, nodeId: i, role, term, leaderId, leads: role === 'Leader' ? [{ group: 'metadata', term }] : [], groups,
  });
  it('a broker behind the term a majority agrees on is stale; the majority is not', () => {
    const views = [view(0, 'Follower', 2, null, [meta(null, 2)]), view(1, 'Leader', 4, 1, [meta(1, 4)]), view(2, 'Follower', 4, 1, [meta(1, 4)])];
    const r = detectStale(views);
    expect(r.leader?.pod).toBe('demo-1');
    expect(r.stale).toEqual([{ pod: 'demo-0', term: 2, leaderId: null }]);
  });
  it('the same term without knowing the leader is healthy (not stale); a higher term is not judged', () => {
    const views = [view(0, 'Follower', 4, null, [meta(null, 4)]), view(1, 'Leader', 4, 1, [meta(1, 4)]), view(2, 'Follower', 4, 1, [meta(1, 4)])];
    expect(detectStale(views).stale).toEqual([]);
    const higher = [view(0, 'Follower', 5, null, [meta(null, 5)]), view(1, 'Leader', 4, 1, [meta(1, 4)]), view(2, 'Follower', 4, 1, [meta(1, 4)])];
    expect(detectStale(higher).stale).toEqual([]);
  });
  it('no leader agreed by a majority (election in progress, or a lone claimant) → nobody is stale', () => {
    const electing = [view(0, 'Follower', 3, null, [meta(null, 3)]), view(1, 'Leader', 4, 1, [meta(1, 4)]), view(2, 'Follower', 3, null, [meta(null, 3)])];
    expect(detectStale(electing)).toEqual({ leader: undefined, stale: [] });
    expect(detectStale([])).toEqual({ leader: undefined, stale: [] });
  });
  it('lag: the largest the groups\' leaders report for the broker; unknown when a leader reported nothing', () => {
    const p = (leader: number, followers: { nodeId: number; lag: number }[] = []): BrokerGroupView => ({ group: 't/0', leader, term: 3, voters: [0, 1, 2], followers });
    const views = withLags([
      view(0, 'Leader', 4, 0, [meta(0, 4, [{ nodeId: 1, lag: 2 }, { nodeId: 2, lag: 0 }]), p(2)]),
      view(1, 'Follower', 4, 0, [meta(0, 4), p(2)]),
      view(2, 'Follower', 4, 0, [meta(0, 4), p(2, [{ nodeId: 0, lag: 7 }, { nodeId: 1, lag: 40 }])]),
    ]);
    expect(views.map((v) => v.lag)).toEqual([7, 40, 0]);
    const leaderDown = withLags([view(1, 'Follower', 4, 0, [meta(0, 4)])]);
    expect(leaderDown[0]!.lag).toBeUndefined();
  });
});

describe('node ids', () => {
  it('an ordinal without a recorded id runs as its ordinal; the table fills defaults and drops retired ordinals', () => {
    expect(nodeIdOf(undefined, 2)).toBe(2);
    expect(nodeIdOf({ 2: 5 }, 2)).toBe(5);
    expect(nodeIdTable(undefined, 3)).toEqual({ 0: 0, 1: 1, 2: 2 });
    expect(nodeIdTable({ 0: 0, 1: 6, 2: 2, 3: 7, 4: 8 }, 3)).toEqual({ 0: 0, 1: 6, 2: 2 });
    // an id allocated for the next grow step is kept until its pod exists
    expect(nodeIdTable({ 0: 0, 1: 1, 2: 2, 3: 9 }, 3, [3])).toEqual({ 0: 0, 1: 1, 2: 2, 3: 9 });
    expect(nodeIdTable({ 0: 0, 1: 1, 2: 2 }, 3, [3])).toEqual({ 0: 0, 1: 1, 2: 2 });
  });

  it('a new id is above every id ever recorded, founded, in use or known to the brokers (removed ones too)', () => {
    // a fresh 3-broker cluster: founders 0..2 → 3
    expect(allocateNodeId({ founders: [0, 1, 2], ordinalsInUse: 3, known: [0, 1, 2] })).toEqual({ nodeId: 3, nextNodeId: 4 });
    // nextNodeId wins although the ids it handed out are gone from the table (a scale-down retired them)
    expect(allocateNodeId({ nextNodeId: 9, nodeIds: { 0: 0, 1: 1, 2: 2 }, founders: [0, 1, 2], ordinalsInUse: 3, known: [0, 1, 2] }).nodeId).toBe(9);
    // a cluster from before ids were recorded (status lost, or an older operator) that scaled 3 → 5 → 3: the
    // registry still lists the removed 3 and 4, so 5 — never a removed id the broker would refuse
    expect(allocateNodeId({ founders: [0, 1, 2], ordinalsInUse: 3, known: [0, 1, 2, 3, 4] }).nodeId).toBe(5);
    // a recorded replacement id above everything else
    expect(allocateNodeId({ nextNodeId: 4, nodeIds: { 0: 0, 1: 11, 2: 2 }, ordinalsInUse: 3, known: [] }).nodeId).toBe(12);
    // ordinals in use without a recorded id (a StatefulSet bigger than the table)
    expect(allocateNodeId({ ordinalsInUse: 5, known: [] }).nodeId).toBe(5);
  });
});

describe('replacement with a new node id', () => {
  const r: ReplacementState = { pod: 'demo-1', ordinal: 1, podUid: 'old-uid', oldNodeId: 1, newNodeId: 3, reason: 'annotation', phase: 'removing' };
  const m = (entries: [number, MemberState['state']][]): MemberState[] => entries.map(([nodeId, state]) => ({ nodeId, state }));
  const pods = [pod('demo-0', { uid: 'a' }), pod('demo-1', { uid: 'old-uid' }), pod('demo-2', { uid: 'c' })];
  const base = { state: r, pods, leader: 'demo-0', views: [] as BrokerView[] };

  it('removing: transfer away from a leading old broker, remove the old id, wait until it left every group, then recreate', () => {
    expect(replacementStep({ ...base, membership: undefined }).type).toBe('wait');
    expect(replacementStep({ ...base, membership: m([[0, 'active'], [1, 'active'], [2, 'active']]) })).toEqual({ type: 'remove', nodeId: 1 });
    expect(replacementStep({ ...base, leader: 'demo-1', membership: m([[0, 'active'], [1, 'active'], [2, 'active']]) })).toEqual({ type: 'transfer-leader', pod: 'demo-1' });
    expect(replacementStep({ ...base, membership: m([[0, 'active'], [1, 'removing'], [2, 'active']]) })).toMatchObject({ type: 'wait', reason: expect.stringContaining('node 1 (demo-1) to leave every group') });
    expect(replacementStep({ ...base, membership: m([[0, 'active'], [1, 'removed'], [2, 'active']]) })).toEqual({ type: 'recreate', deletePod: true });
    // the old pod is already gone (deleted by hand, or the PVC-lost pod was evicted): nothing to delete
    expect(replacementStep({ ...base, pods: [pods[0]!, pods[2]!], membership: m([[0, 'active'], [1, 'removed'], [2, 'active']]) })).toEqual({ type: 'recreate', deletePod: false });
    // a pod recreated meanwhile (deleted by hand) started under the old mapping: it goes too
    expect(replacementStep({ ...base, pods: [pods[0]!, pod('demo-1', { uid: 'other' }), pods[2]!], membership: m([[0, 'active'], [1, 'removed'], [2, 'active']]) })).toEqual({ type: 'recreate', deletePod: true });
  });

  it('joining: the old pod still there (crash before its deletion) is deleted again; the successor is added, then done once active', () => {
    const j = { ...base, state: { ...r, phase: 'joining' as const } };
    const mem = (s?: MemberState['state']) => m([[0, 'active'], [1, 'removed'], [2, 'active'], ...(s ? [[3, s] as [number, MemberState['state']]] : [])]);
    expect(replacementStep({ ...j, membership: mem() })).toEqual({ type: 'recreate', deletePod: true });
    expect(replacementStep({ ...j, pods: [pods[0]!, pod('demo-1', { uid: 'old-uid', deleting: true }), pods[2]!], membership: mem() }).type).toBe('wait');
    expect(replacementStep({ ...j, pods: [pods[0]!, pods[2]!], membership: mem() })).toMatchObject({ type: 'wait', reason: expect.stringContaining('recreate demo-1') });
    const successor = [pods[0]!, pod('demo-1', { uid: 'new-uid', ready: false }), pods[2]!];
    expect(replacementStep({ ...j, pods: successor, membership: mem() })).toEqual({ type: 'add', nodeId: 3 });
    // a successor that came up under the wrong id (stale peers.yaml) is not added: its pod and volume go again
    expect(replacementStep({ ...j, pods: successor, views: [view('demo-1', { nodeId: 1 })], membership: mem() })).toEqual({ type: 'recreate', deletePod: true, wrongId: 1 });
    expect(replacementStep({ ...j, pods: successor, membership: mem('joining') })).toMatchObject({ type: 'wait', reason: expect.stringContaining('catching up') });
    expect(replacementStep({ ...j, pods: successor, views: [view('demo-1', { nodeId: 3 })], membership: mem('active') })).toEqual({ type: 'done' });
  });

  it('status members carry the recorded id of a pod whose broker does not answer', () => {
    expect(members([pod('demo-0'), pod('demo-1')], [view('demo-0')], { 0: 0, 1: 4 }).map((x) => x.nodeId)).toEqual([0, 4]);
  });
});

describe('node lost beyond the grace period', () => {
  it('a pod on an unreachable node is seen as lost from its Ready transition; replaced only after the grace period', () => {
    const lostPod = observePod({
      metadata: { name: 'demo-1', uid: 'u1', labels: { 'apps.kubernetes.io/pod-index': '1' } },
      spec: { nodeName: 'node-1' },
      status: { phase: 'Unknown', reason: 'NodeLost', conditions: [{ type: 'Ready', status: 'False', reason: 'NodeLost', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
    }, 'broker');
    expect(lostPod.nodeLostSince).toBe('2026-01-01T00:00:00Z');
    expect(nodeLost(lostPod, new Date('2026-01-01T00:04:59Z'), 300_000)).toBe(false);
    expect(nodeLost(lostPod, new Date('2026-01-01T00:05:00Z'), 300_000)).toBe(true);
    // a merely unready pod (probe failing on a healthy node) is not lost
    const unready = observePod({ metadata: { name: 'demo-2' }, spec: { nodeName: 'node-2' }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: '2026-01-01T00:00:00Z' }] } }, 'broker');
    expect(unready.nodeLostSince).toBeUndefined();
    expect(nodeLost(unready, new Date('2027-01-01T00:00:00Z'), 0)).toBe(false);
  });

  it('replaceStep takes a lost pod even while it is stuck terminating; the old pod is force-deleted', () => {
    const pods = [pod('demo-0'), pod('demo-1', { deleting: true, ready: false }), pod('demo-2')];
    expect(replaceStep({ pods, pvcMissing: [], nodeLost: ['demo-1'], leader: 'demo-0', replicas: 3 })).toEqual({ type: 'replace', pod: 'demo-1', reason: 'node-lost' });
    expect(replaceStep({ pods, pvcMissing: [], leader: 'demo-0', replicas: 3 })).toEqual({ type: 'none' });
    const r: ReplacementState = { pod: 'demo-1', ordinal: 1, podUid: 'u1', oldNodeId: 1, newNodeId: 5, reason: 'node-lost', phase: 'removing' };
    const withUid = [pod('demo-0'), pod('demo-1', { uid: 'u1', deleting: true, ready: false }), pod('demo-2')];
    const m: MemberState[] = [{ nodeId: 0, state: 'active' }, { nodeId: 1, state: 'removed' }, { nodeId: 2, state: 'active' }];
    expect(replacementStep({ state: r, pods: withUid, membership: m, leader: 'demo-0', views: [] })).toEqual({ type: 'recreate', deletePod: true, force: true });
    expect(replacementStep({ state: { ...r, phase: 'joining' }, pods: withUid, membership: m, leader: 'demo-0', views: [] })).toEqual({ type: 'recreate', deletePod: true, force: true });
  });
});
