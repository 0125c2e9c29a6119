import { describe, expect, it } from 'vitest';
import { failureDetail, nextStatus, parseRestoreSummary, planRestore, type ObservedJob, type ObservedTarget, type RestoreObservation } from './restore-plan.ts';

const T0 = new Date('2026-11-22T10:00:00.000Z');
const T1 = new Date('2026-11-22T10:05:00.000Z');

function target(o: Partial<ObservedTarget> = {}): ObservedTarget {
  return { exists: false, restoredByThis: false, paused: false, statefulSetExists: false, ready: false, pods: 0, ...o };
}
function obs(o: Partial<RestoreObservation> = {}): RestoreObservation {
  return {
    name: 'rs', generation: 1, status: undefined, mode: 'new', targetName: 'prod2', replicas: 3,
    target: target(), pvcs: [], jobs: [], jobNames: ['rs-restore-0', 'rs-restore-1', 'rs-restore-2'], ...o,
  };
}
const ours = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `data-prod2-${i}`, ordinal: i, ownedByThis: true, deleting: false }));
const job = (ordinal: number, state: ObservedJob['state'], o: Partial<ObservedJob> = {}): ObservedJob => ({ name: `rs-restore-${ordinal}`, ordinal, state, ...o });

describe('planRestore: new target', () => {
  it('PVCs first, then one Job per PVC, then the target cluster, then Succeeded once Ready with the topics', () => {
    expect(planRestore(obs())).toEqual({ phase: 'Restoring', step: { type: 'create-pvcs', ordinals: [0, 1, 2] } });
    // Only the missing ones (a crash after creating some).
    expect(planRestore(obs({ pvcs: ours(3).slice(0, 1) })).step).toEqual({ type: 'create-pvcs', ordinals: [1, 2] });
    expect(planRestore(obs({ pvcs: ours(3) })).step).toEqual({ type: 'create-jobs', ordinals: [0, 1, 2] });
    const running = obs({ status: { phase: 'Restoring' }, pvcs: ours(3), jobs: [job(0, 'succeeded'), job(1, 'active'), job(2, 'active')] });
    expect(planRestore(running)).toMatchObject({ phase: 'Restoring', step: { type: 'wait', reason: 'RestoreJobsRunning', message: '1 of 3 restore Jobs done' } });
    const done = obs({ status: { phase: 'Restoring' }, pvcs: ours(3), jobs: [0, 1, 2].map((i) => job(i, 'succeeded', { summary: { topics: ['orders', 'pay'] } })) });
    expect(planRestore(done)).toEqual({ phase: 'Starting', step: { type: 'start-target' } });
    const starting = { ...done, status: { phase: 'Starting' as const }, target: target({ exists: true, restoredByThis: true }) };
    expect(planRestore(starting)).toMatchObject({ phase: 'Starting', step: { type: 'wait', reason: 'WaitingForTarget' } });
    expect(planRestore({ ...starting, target: target({ exists: true, restoredByThis: true, ready: true }) }).step).toMatchObject({ type: 'wait', reason: 'WaitingForTopics' });
    const partial = { ...starting, target: target({ exists: true, restoredByThis: true, ready: true, topics: [{ name: 'orders' }] }) };
    expect(planRestore(partial).step).toMatchObject({ type: 'wait', reason: 'TopicsMissing', message: expect.stringContaining('pay') });
    const all = { ...starting, target: target({ exists: true, restoredByThis: true, ready: true, topics: [{ name: 'pay' }, { name: 'orders' }] }) };
    expect(planRestore(all)).toMatchObject({ phase: 'Succeeded', step: { type: 'succeed', message: 'LanceCluster prod2 is Ready with 2 topic(s): orders, pay' } });
  });

  it('spec.topics are the topics that must come back, whatever the Jobs reported', () => {
    const o = obs({ status: { phase: 'Starting' }, requestedTopics: ['b', 'a'], pvcs: ours(3), jobs: [0, 1, 2].map((i) => job(i, 'succeeded')), target: target({ exists: true, restoredByThis: true, ready: true, topics: [{ name: 'a' }] }) });
    expect(planRestore(o).step).toMatchObject({ type: 'wait', reason: 'TopicsMissing', message: expect.stringContaining(' b ') });
  });

  it('refuses an existing cluster or foreign PVCs of the target name (TargetNotEmpty), without touching anything', () => {
    const exists = planRestore(obs({ target: target({ exists: true }) }));
    expect(exists).toMatchObject({ phase: 'Pending', step: { type: 'refuse', condition: 'TargetNotEmpty', reason: 'TargetExists' } });
    const pvc = planRestore(obs({ pvcs: [{ name: 'data-prod2-1', ordinal: 1, ownedByThis: false, deleting: false }] }));
    expect(pvc).toMatchObject({ phase: 'Pending', step: { type: 'refuse', reason: 'PvcExists', message: expect.stringContaining('data-prod2-1') } });
    // The cluster this restore created (annotation) is not "existing" after an operator restart.
    expect(planRestore(obs({ pvcs: ours(3), jobs: [0, 1, 2].map((i) => job(i, 'succeeded')), target: target({ exists: true, restoredByThis: true }) })).step.type).toBe('wait');
  });

  it('a failed Job is terminal, with the Job reason and the container output', () => {
    const o = obs({ status: { phase: 'Restoring' }, pvcs: ours(3), jobs: [job(0, 'active'), job(1, 'failed', { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', detail: 'lnc: NOT_FOUND: no restore point in s3://b/p' }), job(2, 'succeeded')] });
    const p = planRestore(o);
    expect(p).toEqual({ phase: 'Failed', step: { type: 'fail', reason: 'JobFailed', message: 'restore Job rs-restore-1 failed (BackoffLimitExceeded: Job has reached the specified backoff limit): lnc: NOT_FOUND: no restore point in s3://b/p' } });
    const st = nextStatus(o, p, T1);
    expect(st.phase).toBe('Failed');
    expect(st.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'JobFailed', message: expect.stringContaining('no restore point') });
    expect(st.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });
    expect(st.completionTime).toBe('2026-11-22T10:05:00Z');
    // Terminal phases stay: nothing more is planned.
    expect(planRestore({ ...o, status: st })).toEqual({ phase: 'Failed', step: { type: 'none' } });
    expect(planRestore({ ...o, status: { phase: 'Succeeded' } })).toEqual({ phase: 'Succeeded', step: { type: 'none' } });
  });

  it('invalid spec → Failed; missing clusterRef source → Pending with the reason, re-checked later', () => {
    expect(planRestore(obs({ specError: 'spec.target: set exactly one' }))).toMatchObject({ phase: 'Failed', step: { type: 'fail', reason: 'InvalidSpec' } });
    expect(planRestore(obs({ sourceError: 'spec.clusterRef.name: LanceCluster "prod" was not found' }))).toMatchObject({ phase: 'Pending', step: { type: 'refuse', condition: 'Progressing', reason: 'SourceNotFound' } });
  });

  it('a PVC being deleted is waited for, not reused', () => {
    const p = planRestore(obs({ status: { phase: 'Restoring' }, pvcs: [{ ...ours(1)[0]!, deleting: true }] }));
    expect(p.step).toMatchObject({ type: 'wait', reason: 'WaitingForPvcs' });
  });

  it('once Starting, the Jobs are not looked at again (they may be gone)', () => {
    const p = planRestore(obs({ status: { phase: 'Starting' }, pvcs: ours(3), jobs: [], target: target({ exists: true, restoredByThis: true, ready: true, topics: [] }) }));
    expect(p.phase).toBe('Succeeded');
  });
});

describe('planRestore: existing target', () => {
  const ex = (o: Partial<RestoreObservation>) => obs({ mode: 'existing', ...o });

  it('refuses a target that has topics; waits until a broker can tell; fails when it is missing', () => {
    expect(planRestore(ex({ target: target({ exists: true, ready: true, pods: 3, topics: [{ name: 'orders' }, { name: 'pay' }] }) })))
      .toMatchObject({ phase: 'Pending', step: { type: 'refuse', condition: 'TargetNotEmpty', reason: 'TargetHasTopics', message: 'LanceCluster prod2 is not empty: it has topics orders, pay; restore into a new cluster (target.spec) instead' } });
    expect(planRestore(ex({ target: target({ exists: true, pods: 3 }) }))).toMatchObject({ phase: 'Pending', step: { type: 'wait', reason: 'VerifyingTargetEmpty' } });
    expect(planRestore(ex({}))).toMatchObject({ phase: 'Pending', step: { type: 'refuse', reason: 'TargetNotFound' } });
  });

  it('an empty target is paused and stopped, its old PVCs replaced, then Jobs run and it is resumed', () => {
    const empty = target({ exists: true, ready: true, pods: 3, statefulSetExists: true, topics: [] });
    expect(planRestore(ex({ target: empty }))).toEqual({ phase: 'Restoring', step: { type: 'stop-target' } });
    const stopping = target({ exists: true, restoredByThis: true, paused: true, pods: 2 });
    expect(planRestore(ex({ status: { phase: 'Restoring' }, target: stopping })).step).toMatchObject({ type: 'wait', reason: 'StoppingTarget' });
    const old = [0, 1, 2].map((i) => ({ name: `data-prod2-${i}`, ordinal: i, ownedByThis: false, deleting: false }));
    const stopped = target({ exists: true, restoredByThis: true, paused: true });
    expect(planRestore(ex({ status: { phase: 'Restoring' }, target: stopped, pvcs: old })).step).toEqual({ type: 'delete-pvcs', names: ['data-prod2-0', 'data-prod2-1', 'data-prod2-2'] });
    expect(planRestore(ex({ status: { phase: 'Restoring' }, target: stopped, pvcs: [] })).step).toEqual({ type: 'create-pvcs', ordinals: [0, 1, 2] });
    const jobsDone = ex({ status: { phase: 'Restoring' }, target: stopped, pvcs: ours(3), jobs: [0, 1, 2].map((i) => job(i, 'succeeded')) });
    expect(planRestore(jobsDone)).toEqual({ phase: 'Starting', step: { type: 'start-target' } });
    expect(planRestore({ ...jobsDone, status: { phase: 'Starting' }, target: target({ exists: true, restoredByThis: true, ready: true, topics: [] }) }).phase).toBe('Succeeded');
    // Pausing again if someone resumed it mid-restore (its brokers must not run on the PVCs being written).
    expect(planRestore(ex({ status: { phase: 'Restoring' }, target: target({ exists: true, restoredByThis: true, statefulSetExists: true }) })).step).toEqual({ type: 'stop-target' });
    expect(planRestore(ex({ status: { phase: 'Restoring' }, target: target() }))).toMatchObject({ phase: 'Failed', step: { reason: 'TargetDeleted' } });
  });
});

describe('nextStatus', () => {
  it('records start time, Job names, the restore point and amounts from the Jobs; lastTransitionTime moves only on change', () => {
    const o1 = obs({ pvcs: ours(3) });
    const s1 = nextStatus(o1, planRestore(o1), T0);
    expect(s1).toMatchObject({ phase: 'Restoring', observedGeneration: 1, startTime: '2026-11-22T10:00:00Z', jobNames: ['rs-restore-0', 'rs-restore-1', 'rs-restore-2'] });
    expect(s1.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'True', reason: 'RestoreJobsRunning', lastTransitionTime: '2026-11-22T10:00:00Z' });
    const summary = { restorePoint: { id: 'rp-7', time: '2026-11-22T09:59:50Z' }, topics: ['a', 'b'], bytes: 1000 };
    const o2 = obs({ status: s1, pvcs: ours(3), jobs: [0, 1, 2].map((i) => job(i, 'succeeded', { summary })) });
    const s2 = nextStatus(o2, planRestore(o2), T1);
    expect(s2).toMatchObject({ phase: 'Starting', startTime: '2026-11-22T10:00:00Z', restorePoint: summary.restorePoint, topicsRestored: 2, bytesRestored: 3000 });
    expect(s2.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'True', reason: 'StartingTarget', lastTransitionTime: '2026-11-22T10:00:00Z' });
    expect(s2.completionTime).toBeUndefined();
  });

  it('without a summary from lnc, Succeeded takes topics and bytes from what the restored cluster serves', () => {
    const o = obs({ status: { phase: 'Starting', startTime: '2026-11-22T10:00:00Z' }, pvcs: ours(3), target: target({ exists: true, ready: true, restoredByThis: true, topics: [{ name: 'a', bytes: 10 }, { name: 'b', bytes: 5 }] }) });
    const s = nextStatus(o, planRestore(o), T1);
    expect(s).toMatchObject({ phase: 'Succeeded', topicsRestored: 2, bytesRestored: 15, completionTime: '2026-11-22T10:05:00Z' });
    expect(s.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Restored' });
  });

  it('a refusal sets TargetNotEmpty=True; it turns False once the target is usable', () => {
    const o = obs({ target: target({ exists: true }) });
    const s = nextStatus(o, planRestore(o), T0);
    expect(s.phase).toBe('Pending');
    expect(s.startTime).toBeUndefined();
    expect(s.conditions?.find((c) => c.type === 'TargetNotEmpty')).toMatchObject({ status: 'True', reason: 'TargetExists' });
    const o2 = obs({ status: s });
    const s2 = nextStatus(o2, planRestore(o2), T1);
    expect(s2.conditions?.find((c) => c.type === 'TargetNotEmpty')).toMatchObject({ status: 'False', reason: 'TargetUsable' });
  });
});

describe('lnc output', () => {
  it('parses the last JSON summary line', () => {
    const out = 'restoring…\n{"progress":1}\n{"restorePoint":{"id":"rp-1","time":"2026-11-22T09:00:00.123Z"},"topics":["a","b"],"bytesRestored":42}\n';
    expect(parseRestoreSummary(out)).toEqual({ restorePoint: { id: 'rp-1', time: '2026-11-22T09:00:00Z' }, topics: ['a', 'b'], bytes: 42 });
    expect(parseRestoreSummary('{"restorePoint":"rp-2","restorePointTime":"2026-11-22T09:00:00Z","topics":3}')).toEqual({ restorePoint: { id: 'rp-2', time: '2026-11-22T09:00:00Z' }, topicCount: 3 });
    expect(parseRestoreSummary('{"topics":[{"name":"x","partitions":1}]}')).toEqual({ topics: ['x'] });
    expect(parseRestoreSummary('done\n{not json}\n')).toBeUndefined();
    // lnc restore --json: its RestoreReport, pretty-printed, after stderr lines.
    const report = { from: 's3://b/p', restorePoint: { key: 'p/restore-points/0001/restore-point.json', clusterId: 'c', takenAt: '2026-11-22T09:00:01.500Z', node: 1 }, topics: [{ name: 'a', id: 1, partitions: 1 }], partitions: [{ topic: 'a', partition: 0 }], bytes: 4096, warnings: [] };
    expect(parseRestoreSummary(`{"level":30,"msg":"restoring"}\n${JSON.stringify(report, null, 2)}\n`)).toEqual({ restorePoint: { id: 'p/restore-points/0001/restore-point.json', time: '2026-11-22T09:00:01Z' }, topics: ['a'], bytes: 4096 });
    expect(parseRestoreSummary('{"level":30,"msg":"x"}')).toBeUndefined();
  });

  it('failure detail prefers the error lines, bounded', () => {
    expect(failureDetail('starting\nlnc: NOT_FOUND: no restore point in s3://b/p\n')).toBe('lnc: NOT_FOUND: no restore point in s3://b/p');
    expect(failureDetail('')).toBeUndefined();
    expect(failureDetail(`${'x'.repeat(2000)}\n`, 100)!.length).toBe(100);
  });
});
