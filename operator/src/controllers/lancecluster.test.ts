/**
 * The reconciler's I/O paths for multi-broker situations the real brokers cannot produce yet (3-node Raft lands
 * later): the stand-in API server without workloads, pods written by the test, and a scripted BrokerAdmin that
 * answers like a replicated cluster would (roles, terms, transfer). Real apiserver semantics, scripted brokers.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../../../test/kube/cluster.ts';
import { EventRecorder } from '../kube/apply.ts';
import { KINDS } from '../kube/kinds.ts';
import { KubeRest, type KubeObject } from '../kube/rest.ts';
import { ANNOTATION_CONFIG_HASH, selectorLabels } from '../resources/names.ts';
import type { AdminCapabilities, BrokerAdmin } from './broker-admin.ts';
import { LanceError } from '../../../broker/src/common/errors.ts';
import type { BrokerView, MemberState } from './decisions.ts';
import { LanceClusterReconciler } from './lancecluster.ts';
import { OperatorMetrics } from './metrics.ts';

interface Lc extends KubeObject { status?: { phase?: string; leader?: string; rollout?: { order: string[]; podsPending: string[] }; conditions?: { type: string; status: string; reason: string }[] } }

/** A scripted 3-broker cluster: per-pod views, a transfer log. */
class FakeBrokers {
  views = new Map<string, BrokerView>();
  transfers: string[] = [];
  fenceCalls: string[] = [];
  supports: AdminCapabilities = { membership: true, fence: true, transferLeader: true, replicationFactor: true };
  maxRf = 3;
  /** Scripted registry (undefined: every viewed broker is active). */
  members: Map<number, MemberState['state']> | undefined;
  calls: string[] = [];
  refuseRemove = false;
  factory = (pod: string): BrokerAdmin => ({
    supports: this.supports,
    clusterStatus: async () => {
      const v = this.views.get(pod);
      if (!v) throw new Error(`${pod} down`);
      return v;
    },
    fence: async () => { this.fenceCalls.push(`fence:${pod}`); },
    unfence: async () => { this.fenceCalls.push(`unfence:${pod}`); },
    transferLeader: async (to: number) => {
      this.transfers.push(`${pod}->${to}`);
      for (const [p, v] of this.views) this.views.set(p, { ...v, role: v.nodeId === to ? 'Leader' : 'Follower', term: (v.term ?? 1) + 1, leads: v.nodeId === to ? [{ group: 'metadata', term: (v.term ?? 1) + 1 }] : [] });
    },
    addMember: async (id: number) => { this.calls.push(`add:${id}`); if (this.members) this.members.set(id, 'joining'); },
    removeMember: async (id: number) => {
      this.calls.push(`remove:${id}`);
      if (this.refuseRemove) throw new LanceError('CONFLICT', `nodeId: node ${id} is down and t-0 cannot reach a majority without it`, { reason: 'partition-quorum' });
      if (this.members) this.members.set(id, 'removing');
    },
    listMembers: async () => (this.members ? [...this.members].map(([nodeId, state]) => ({ nodeId, state })) : [...this.views.values()].map((v) => ({ nodeId: v.nodeId, state: 'active' as const }))),
    maxReplicationFactor: async () => this.maxRf,
  });
  leader(pod: string, term: number): void {
    for (let i = 0; i < 3; i++) {
      const p = `demo-${i}`;
      this.views.set(p, { pod: p, nodeId: i, role: p === pod ? 'Leader' : 'Follower', term, lag: 0, leads: p === pod ? [{ group: 'metadata', term }] : [] });
    }
  }
}

describe('LanceClusterReconciler against the stand-in API (scripted brokers)', () => {
  let k: StandIn;
  let rest: KubeRest;
  let brokers: FakeBrokers;
  let rec: LanceClusterReconciler;

  beforeAll(async () => {
    k = await startStandIn({ workloads: false });
    const kc = new KubeConfig();
    kc.loadFromFile(k.kubeconfigPath);
    rest = new KubeRest(kc);
    const { lanceClusterCrd } = await import('../api/crd.ts');
    await rest.create({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false }, undefined, lanceClusterCrd() as KubeObject);
    brokers = new FakeBrokers();
    rec = new LanceClusterReconciler({ rest, events: new EventRecorder(rest), admin: (pod) => brokers.factory(pod), metrics: new OperatorMetrics(), staleConfirmMs: 10 });
    await waitUntil(async () => { try { await rest.list(KINDS.LanceCluster, 'default'); return true; } catch { return false; } });
  });
  afterAll(async () => { await k?.stop(); });

  async function waitUntil(cond: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** What the StatefulSet controller + kubelet would do: pods from the current template, Ready, with a pod IP. */
  async function syncPods(): Promise<void> {
    const sts = await rest.get<KubeObject & { spec: { replicas: number; template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { containers: { name: string; image: string }[] } } } }>(KINDS.StatefulSet, 'default', 'demo');
    for (let i = 0; i < sts.spec.replicas; i++) {
      const name = `demo-${i}`;
      const claim = `data-demo-${i}`;
      if (!(await rest.get(KINDS.PersistentVolumeClaim, 'default', claim).then(() => true, () => false))) {
        await rest.create(KINDS.PersistentVolumeClaim, 'default', { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claim, namespace: 'default', labels: sts.spec.template.metadata.labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } as KubeObject);
      }
      const exists = await rest.get(KINDS.Pod, 'default', name).then(() => true, () => false);
      if (exists) continue;
      const created = await rest.create<KubeObject>(KINDS.Pod, 'default', {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name, namespace: 'default', labels: { ...sts.spec.template.metadata.labels, 'apps.kubernetes.io/pod-index': String(i) }, annotations: sts.spec.template.metadata.annotations },
        spec: { containers: sts.spec.template.spec.containers.map((c) => ({ name: c.name, image: c.image })) },
      } as KubeObject);
      await rest.replace(KINDS.Pod, 'default', name, { ...created, status: { phase: 'Running', podIP: `127.0.0.${10 + i}`, conditions: [{ type: 'Ready', status: 'True' }] } } as KubeObject, 'status');
    }
  }
  const lc = (): Promise<Lc> => rest.get<Lc>(KINDS.LanceCluster, 'default', 'demo');
  const eventReasons = async (): Promise<string[]> => (await rest.list<KubeObject & { reason: string; message: string }>(KINDS.Event, 'default', { fieldSelector: 'involvedObject.name=demo' })).items.map((e) => `${e.reason}: ${e.message}`);

  it('creates the owned objects, reports 3/3 Running with the leader', async () => {
    await rest.create(KINDS.LanceCluster, 'default', { apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', metadata: { name: 'demo', namespace: 'default' }, spec: { replicas: 3, image: 'lance/broker:v1' } } as KubeObject);
    brokers.leader('demo-1', 4);
    await rec.reconcile('default/demo');
    await syncPods();
    await rec.reconcile('default/demo');
    const s = (await lc()).status!;
    expect(s).toMatchObject({ phase: 'Running', leader: 'demo-1', ready: '3/3', controllerTerm: 4 });
    expect((await rest.list(KINDS.Pod, 'default', { labelSelector: Object.entries(selectorLabels('demo')).map(([a, b]) => `${a}=${b}`).join(',') })).items).toHaveLength(3);
  });

  it('split brain: two pods claim the metadata group → the lower term is fenced (label + admin), healed → unfenced', async () => {
    brokers.leader('demo-1', 4);
    brokers.views.set('demo-0', { pod: 'demo-0', nodeId: 0, role: 'Leader', term: 2, lag: 0, leads: [{ group: 'metadata', term: 2 }] });
    await rec.reconcile('default/demo');
    const pod0 = await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-0');
    expect(pod0.metadata?.labels?.['lance.dev/fenced']).toBe('true');
    expect(brokers.fenceCalls).toContain('fence:demo-0');
    const st = (await lc()).status!;
    expect(st.conditions?.find((c) => c.type === 'SplitBrain')).toMatchObject({ status: 'True', reason: 'LowerTermFenced' });
    expect(st.phase).toBe('Degraded');
    expect((await eventReasons()).some((e) => e.startsWith('SplitBrain:') && e.includes('fencing demo-0'))).toBe(true);
    // Healed: demo-0 follows again and is caught up.
    brokers.leader('demo-1', 4);
    await rec.reconcile('default/demo');
    expect((await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-0')).metadata?.labels?.['lance.dev/fenced']).toBe('false');
    expect(brokers.fenceCalls).toContain('unfence:demo-0');
    expect((await lc()).status?.conditions?.find((c) => c.type === 'SplitBrain')?.status).toBe('False');
  });

  it('a broker cut off from the majority (behind its term, no leader) is fenced; back in the majority and caught up → unfenced', async () => {
    const meta = (leader: number | null, term: number) => [{ group: 'metadata', leader, term, voters: [0, 1, 2], followers: leader === 1 ? [{ nodeId: 0, lag: 0 }, { nodeId: 2, lag: 0 }] : [] }];
    const set = (i: number, role: 'Leader' | 'Follower', term: number, leaderId: number | null): void => {
      brokers.views.set(`demo-${i}`, { pod: `demo-${i}`, nodeId: i, role, term, leaderId, leads: role === 'Leader' ? [{ group: 'metadata', term }] : [], groups: meta(leaderId, term) });
    };
    set(0, 'Follower', 2, null);
    set(1, 'Leader', 5, 1);
    set(2, 'Follower', 5, 1);
    brokers.fenceCalls.length = 0;
    await rec.reconcile('default/demo');
    expect((await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-0')).metadata?.labels?.['lance.dev/fenced']).toBe('true');
    expect(brokers.fenceCalls).toEqual(['fence:demo-0']);
    expect((await lc()).status?.conditions?.find((c) => c.type === 'SplitBrain')).toMatchObject({ status: 'True', reason: 'PartitionedMemberFenced' });
    // Healed: demo-0 follows demo-1 in term 5 again.
    set(0, 'Follower', 5, 1);
    await rec.reconcile('default/demo');
    expect((await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-0')).metadata?.labels?.['lance.dev/fenced']).toBe('false');
    expect(brokers.fenceCalls).toEqual(['fence:demo-0', 'unfence:demo-0']);
    expect((await lc()).status?.conditions?.find((c) => c.type === 'SplitBrain')?.status).toBe('False');
    brokers.leader('demo-1', 4);
  });

  it('rolling update: followers first (descending ordinal), leader last after a transfer; resumable from status', async () => {
    brokers.leader('demo-1', 4);
    await rest.mergePatch(KINDS.LanceCluster, 'default', 'demo', { spec: { image: 'lance/broker:v2' } });
    const restarted: string[] = [];
    for (let round = 0; round < 20; round++) {
      const before = new Set((await rest.list<KubeObject>(KINDS.Pod, 'default')).items.map((p) => p.metadata!.uid));
      // A fresh reconciler each round: nothing may be carried in memory between steps.
      rec = new LanceClusterReconciler({ rest, events: new EventRecorder(rest), admin: (pod) => brokers.factory(pod), metrics: new OperatorMetrics(), staleConfirmMs: 10 });
      await rec.reconcile('default/demo');
      const after = (await rest.list<KubeObject>(KINDS.Pod, 'default')).items;
      for (let i = 0; i < 3; i++) if (!after.some((p) => p.metadata?.name === `demo-${i}`)) restarted.push(`demo-${i}`);
      expect(after.filter((p) => before.has(p.metadata!.uid)).length).toBeGreaterThanOrEqual(2); // one at a time
      await syncPods();
      const s = (await lc()).status!;
      if (s.phase === 'Running' && s.rollout?.podsPending.length === 0 && restarted.length === 3) break;
    }
    expect(restarted).toEqual(['demo-2', 'demo-0', 'demo-1']);
    expect(brokers.transfers).toEqual(['demo-1->0']); // the leader handed over before its restart
    await rec.reconcile('default/demo');
    const s = (await lc()).status!;
    expect(s.rollout).toEqual({ order: ['demo-2', 'demo-0', 'demo-1'], podsPending: [] });
    const pods = (await rest.list<KubeObject & { spec: { containers: { image: string }[] } }>(KINDS.Pod, 'default')).items;
    expect(pods.every((p) => p.spec.containers[0]!.image === 'lance/broker:v2')).toBe(true);
    expect(pods.every((p) => p.metadata?.annotations?.[ANNOTATION_CONFIG_HASH])).toBe(true);
  });

  it('scale below the replication factor is refused with a condition and an event', async () => {
    brokers.leader('demo-0', 5);
    await rest.mergePatch(KINDS.LanceCluster, 'default', 'demo', { spec: { replicas: 1 } });
    await rec.reconcile('default/demo');
    const s = (await lc()).status!;
    expect(s.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'False', reason: 'ScaleRefused' });
    expect((await eventReasons()).some((e) => e.startsWith('ScaleRefused:') && e.includes('replication factor 3'))).toBe(true);
    expect((await rest.get<KubeObject & { spec: { replicas: number } }>(KINDS.StatefulSet, 'default', 'demo')).spec.replicas).toBe(3);
    expect(s.phase).toBe('Running'); // the brokers' config did not change: no rollout started
  });

  it('replace annotation: old id removed first, new id recorded in status and peers.yaml BEFORE the pod is deleted, successor added; resumable by a fresh reconciler every step', async () => {
    await rest.mergePatch(KINDS.LanceCluster, 'default', 'demo', { spec: { replicas: 3 } });
    brokers.leader('demo-0', 6);
    brokers.members = new Map([[0, 'active'], [1, 'active'], [2, 'active']]);
    brokers.calls = [];
    const fresh = () => new LanceClusterReconciler({ rest, events: new EventRecorder(rest), admin: (pod) => brokers.factory(pod), metrics: new OperatorMetrics(), staleConfirmMs: 10 });
    await fresh().reconcile('default/demo');
    const before = (await lc()) as Lc & { status: { nodeIds?: Record<string, number>; nextNodeId?: number } };
    expect(before.status.nodeIds).toEqual({ 0: 0, 1: 1, 2: 2 });
    expect(before.status.nextNodeId).toBe(3);
    const oldUid = (await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-2')).metadata!.uid;
    await rest.mergePatch(KINDS.Pod, 'default', 'demo-2', { metadata: { annotations: { 'lance.dev/replace': 'true' } } });
    const peersOf = async (): Promise<string> => (await rest.get<KubeObject & { data: Record<string, string> }>(KINDS.ConfigMap, 'default', 'demo-config')).data['peers.yaml']!;
    // A refused removal (it would break a partition's majority) is a condition + Event, retried.
    brokers.refuseRemove = true;
    await fresh().reconcile('default/demo');
    await fresh().reconcile('default/demo');
    let st = (await lc()).status as { replacement?: { newNodeId: number; phase: string }; conditions?: { type: string; reason: string }[] };
    expect(st.replacement).toMatchObject({ pod: 'demo-2', oldNodeId: 2, newNodeId: 3, phase: 'removing' });
    expect(st.conditions?.find((c) => c.type === 'Progressing')?.reason).toBe('ReplaceRefused');
    expect((await eventReasons()).some((e) => e.startsWith('ReplaceRefused:') && e.includes('members remove 2 refused'))).toBe(true);
    brokers.refuseRemove = false;
    let podDeletedWithPeers: string | undefined;
    for (let round = 0; round < 20; round++) {
      await fresh().reconcile('default/demo');
      // the broker side: a removal completes, a learner catches up (one step per round)
      for (const [id, state] of brokers.members) {
        if (state === 'removing') brokers.members.set(id, 'removed');
        else if (state === 'joining') brokers.members.set(id, 'active');
      }
      const podNow = await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-2').catch(() => undefined);
      if (!podNow && podDeletedWithPeers === undefined) {
        podDeletedWithPeers = await peersOf();
        expect(brokers.calls).toContain('remove:2'); // the old id left before its pod went
      }
      await syncPods();
      if (brokers.views.get('demo-2')?.nodeId !== 3 && podDeletedWithPeers !== undefined) brokers.views.set('demo-2', { pod: 'demo-2', nodeId: 3, role: 'Follower', term: 6, lag: 0, leads: [] });
      st = (await lc()).status as typeof st;
      if (!st.replacement && brokers.members.get(3) === 'active') break;
    }
    expect(podDeletedWithPeers).toMatch(/pod: demo-2[\s\S]*?nodeId: 3|nodeId: 3[\s\S]*?pod: demo-2/);
    expect((await rest.get<KubeObject>(KINDS.Pod, 'default', 'demo-2')).metadata!.uid).not.toBe(oldUid);
    expect(brokers.calls).toEqual(['remove:2', 'remove:2', 'remove:2', 'add:3']);
    const after = (await lc()) as Lc & { status: { nodeIds?: Record<string, number>; nextNodeId?: number; replacement?: unknown; members?: { pod: string; nodeId?: number }[] } };
    expect(after.status.nodeIds).toEqual({ 0: 0, 1: 1, 2: 3 });
    expect(after.status.nextNodeId).toBe(4);
    expect(after.status.replacement).toBeUndefined();
    expect(after.status.members?.find((m) => m.pod === 'demo-2')?.nodeId).toBe(3);
    const ev = await eventReasons();
    expect(ev.some((e) => e.startsWith('ReplacingNode:') && e.includes('node 2 → new node 3'))).toBe(true);
    expect(ev.some((e) => e.startsWith('NodeReplaced:') && e.includes('node 3 is a voter'))).toBe(true);
    brokers.members = undefined;
  });

  it('a stale status write (resourceVersion moved) is a CONFLICT, not a lost update', async () => {
    const { writeStatus } = await import('../kube/apply.ts');
    const obj = await lc();
    await rest.mergePatch(KINDS.LanceCluster, 'default', 'demo', { metadata: { labels: { touched: 'yes' } } });
    await expect(writeStatus(rest, KINDS.LanceCluster, obj, { phase: 'Failed' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
