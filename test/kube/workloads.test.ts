import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startStandIn, type StandIn } from './cluster.ts';
import { pidAlive, waitFor } from './testutil.ts';

const NS = 'default';

function stsManifest(name: string, replicas: number, policy: 'OrderedReady' | 'Parallel' = 'Parallel'): k8s.V1StatefulSet {
  return {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name },
    spec: {
      serviceName: name, replicas, podManagementPolicy: policy,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [{
            name: 'srv', image: 'lance/test-http:1', ports: [{ name: 'http', containerPort: 8080 }],
            env: [
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'DATA_DIR', value: '/data' },
            ],
            readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
          }],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  };
}

interface DataReply { pod: string; ip: string; dataDir: string; boots: string[]; pid: number }

describe('workloads: StatefulSets and Jobs become real processes', () => {
  let k: StandIn;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let batch: k8s.BatchV1Api;
  const allPids = new Set<number>();

  beforeAll(async () => {
    k = await startStandIn();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(k.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    batch = kc.makeApiClient(k8s.BatchV1Api);
  });
  afterAll(async () => {
    for (const p of k?.kubelet?.pids() ?? []) allPids.add(p);
    await k?.stop();
    // Every process the kubelet ever started is gone after stop().
    for (const pid of allPids) expect(pidAlive(pid)).toBe(false);
  });

  const readyPods = async (app: string) => (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items
    .filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const data = async (ip: string): Promise<DataReply> => (await (await fetch(`http://${ip}:8080/data`)).json()) as DataReply;

  it('3 replicas → 3 processes with their own addresses and PVC directories; a deleted pod comes back on the same PVC', async () => {
    await apps.createNamespacedStatefulSet({ namespace: NS, body: stsManifest('web', 3) });
    const pods = await waitFor('3 ready pods', async () => { const r = await readyPods('web'); return r.length === 3 ? r : undefined; }, 90_000);
    const ips = pods.map((p) => p.status!.podIP!);
    expect(new Set(ips).size).toBe(3);
    const replies = await Promise.all(ips.map(data));
    expect(replies.map((r) => r.pod).sort()).toEqual(['web-0', 'web-1', 'web-2']);
    expect(new Set(replies.map((r) => r.dataDir)).size).toBe(3);
    for (const r of replies) {
      allPids.add(r.pid);
      expect(pidAlive(r.pid)).toBe(true);
      expect(fs.existsSync(path.join(r.dataDir, 'boots.txt'))).toBe(true);
      expect(r.dataDir.startsWith(k.dataDir)).toBe(true);
    }
    const pvcs = (await core.listNamespacedPersistentVolumeClaim({ namespace: NS })).items.map((p) => `${p.metadata!.name}:${p.status!.phase}`).sort();
    expect(pvcs).toEqual(['data-web-0:Bound', 'data-web-1:Bound', 'data-web-2:Bound']);
    const sts = await apps.readNamespacedStatefulSet({ namespace: NS, name: 'web' });
    expect(sts.status).toMatchObject({ replicas: 3, readyReplicas: 3, observedGeneration: 1 });
    expect(sts.status!.currentRevision).toBe(sts.status!.updateRevision);

    // Delete web-1: the process gets SIGTERM, the pod is recreated and reuses data-web-1's directory.
    const before = replies.find((r) => r.pod === 'web-1')!;
    await core.deleteNamespacedPod({ namespace: NS, name: 'web-1' });
    await waitFor('old web-1 process to exit', () => !pidAlive(before.pid));
    const again = await waitFor('web-1 ready again', async () => {
      const p = (await readyPods('web')).find((x) => x.metadata!.name === 'web-1');
      return p && p.metadata!.uid !== pods.find((x) => x.metadata!.name === 'web-1')!.metadata!.uid ? p : undefined;
    }, 90_000);
    const after = await data(again.status!.podIP!);
    allPids.add(after.pid);
    expect(after.pid).not.toBe(before.pid);
    expect(after.dataDir).toBe(before.dataDir);
    expect(after.boots.length).toBe(2); // it read back what its previous incarnation wrote
    expect(after.boots[0]).toBe(before.boots[0]);
  });

  it('cluster DNS: pod and Service names resolve to pod IPs inside pod processes', async () => {
    await core.createNamespacedService({ namespace: NS, body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ name: 'http', port: 8080 }] } } });
    const pods = await readyPods('web');
    const ipOf = (n: string) => pods.find((p) => p.metadata!.name === n)!.status!.podIP!;
    const from = ipOf('web-0');
    const resolve = async (name: string) => { const r = await fetch(`http://${from}:8080/resolve?name=${encodeURIComponent(name)}`); return r.status === 200 ? ((await r.json()) as string[]) : undefined; };
    expect(await waitFor('web-1.web resolves', () => resolve('web-1.web'))).toEqual([ipOf('web-1')]);
    expect(await resolve(`web-2.web.${NS}.svc.cluster.local`)).toEqual([ipOf('web-2')]);
    expect(await resolve('web')).toEqual(pods.map((p) => p.status!.podIP!).sort());
    expect(await resolve('no-such-service')).toBeUndefined();
  });

  it('scales 3 → 5 → 2 (PVCs of removed ordinals are retained)', async () => {
    await apps.patchNamespacedStatefulSetScale({ namespace: NS, name: 'web', body: { spec: { replicas: 5 } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await waitFor('5 ready pods', async () => (await readyPods('web')).length === 5, 90_000);
    for (const p of await readyPods('web')) allPids.add((await data(p.status!.podIP!)).pid);
    await apps.patchNamespacedStatefulSet({ namespace: NS, name: 'web', body: { spec: { replicas: 2 } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await waitFor('exactly web-0 and web-1', async () => {
      const all = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' })).items;
      return all.length === 2 && all.map((p) => p.metadata!.name).sort().join() === 'web-0,web-1';
    }, 90_000);
    const sts = await waitFor('status replicas 2', async () => { const s = await apps.readNamespacedStatefulSet({ namespace: NS, name: 'web' }); return s.status?.replicas === 2 ? s : undefined; });
    expect(sts.metadata!.generation).toBe(3);
    const pvcs = (await core.listNamespacedPersistentVolumeClaim({ namespace: NS })).items.map((p) => p.metadata!.name).sort();
    expect(pvcs).toEqual(['data-web-0', 'data-web-1', 'data-web-2', 'data-web-3', 'data-web-4']);
  });

  it('OrderedReady creates pods one at a time in ordinal order', async () => {
    await apps.createNamespacedStatefulSet({ namespace: NS, body: stsManifest('ord', 3, 'OrderedReady') });
    const order: string[] = [];
    await waitFor('3 ordered pods ready', async () => {
      const all = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=ord' })).items;
      for (const p of all) if (!order.includes(p.metadata!.name!)) {
        // When a pod first appears, every lower ordinal must already be Ready.
        const idx = Number(p.metadata!.name!.split('-')[1]);
        const lower = all.filter((x) => Number(x.metadata!.name!.split('-')[1]) < idx);
        expect(lower.length).toBe(idx);
        expect(lower.every((x) => x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))).toBe(true);
        order.push(p.metadata!.name!);
      }
      return (await readyPods('ord')).length === 3;
    }, 90_000, 20);
    expect(order).toEqual(['ord-0', 'ord-1', 'ord-2']);
    for (const p of await readyPods('ord')) allPids.add((await data(p.status!.podIP!)).pid);
    await apps.deleteNamespacedStatefulSet({ namespace: NS, name: 'ord' });
    await waitFor('ord pods garbage-collected', async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=ord' })).items.length === 0, 90_000);
  });

  it('faults: a SIGKILLed container is restarted (restartCount), a lost node turns its pods Unknown', async () => {
    const pod = (await readyPods('web')).find((p) => p.metadata!.name === 'web-0')!;
    const [killed] = k.faults.killPod(NS, 'web-0');
    await waitFor('old process gone', () => !pidAlive(killed));
    const restarted = await waitFor('web-0 restarted in place', async () => {
      const p = await core.readNamespacedPod({ namespace: NS, name: 'web-0' });
      const cs = p.status?.containerStatuses?.[0];
      return cs && cs.restartCount >= 1 && cs.ready ? p : undefined;
    }, 90_000);
    expect(restarted.metadata!.uid).toBe(pod.metadata!.uid); // same pod, new process
    const r = await data(restarted.status!.podIP!);
    allPids.add(r.pid);
    expect(r.pid).not.toBe(killed);

    const node = k.faults.nodeOf(NS, 'web-1');
    const victim = (await data((await core.readNamespacedPod({ namespace: NS, name: 'web-1' })).status!.podIP!)).pid;
    k.faults.loseNode(node);
    await waitFor('web-1 Unknown / not ready', async () => {
      const p = await core.readNamespacedPod({ namespace: NS, name: 'web-1' });
      return p.status?.phase === 'Unknown' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'False');
    });
    await waitFor('lost node process stopped', () => !pidAlive(victim));
    const n = await core.readNode({ name: node });
    expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('Unknown');
    k.faults.restoreNode(node);
    await waitFor('web-1 running again after the node returns', async () => (await readyPods('web')).some((p) => p.metadata!.name === 'web-1'), 90_000);

    // Freezing a pod: its readiness probe times out, then it recovers when thawed.
    const frozen = k.faults.freezePod(NS, 'web-0');
    expect(frozen.length).toBe(1);
    await waitFor('frozen web-0 not ready', async () => !(await readyPods('web')).some((p) => p.metadata!.name === 'web-0'), 90_000);
    expect(pidAlive(frozen[0])).toBe(true);
    k.faults.thawPod(NS, 'web-0');
    await waitFor('thawed web-0 ready again', async () => (await readyPods('web')).some((p) => p.metadata!.name === 'web-0'), 90_000);

    // Wiping a PVC's data: the directory stays, its contents are gone.
    const dir = k.faults.deletePvcData(NS, 'data-web-4');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('RollingUpdate replaces pods highest ordinal first; OnDelete waits for a delete', async () => {
    const roll = stsManifest('roll', 2);
    await apps.createNamespacedStatefulSet({ namespace: NS, body: roll });
    await waitFor('2 roll pods ready', async () => (await readyPods('roll')).length === 2, 90_000);
    const rev = async () => (await apps.readNamespacedStatefulSet({ namespace: NS, name: 'roll' })).status!;
    const rev1 = (await rev()).updateRevision!;
    const podsRev = async () => Object.fromEntries((await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=roll' })).items.map((p) => [p.metadata!.name!, p.metadata!.labels!['controller-revision-hash']]));
    const recreated: string[] = [];
    const uids = Object.fromEntries((await readyPods('roll')).map((p) => [p.metadata!.name!, p.metadata!.uid!]));
    const patchEnv = (v: string) => apps.patchNamespacedStatefulSet({ namespace: NS, name: 'roll', body: [{ op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'VERSION', value: v } }] }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
    await patchEnv('2');
    await waitFor('rolled to the new revision', async () => {
      for (const p of await readyPods('roll')) if (p.metadata!.uid !== uids[p.metadata!.name!] && !recreated.includes(p.metadata!.name!)) recreated.push(p.metadata!.name!);
      const st = await rev();
      return st.updateRevision !== rev1 && st.currentRevision === st.updateRevision && st.updatedReplicas === 2 && st.readyReplicas === 2;
    }, 90_000, 50);
    expect(recreated).toEqual(['roll-1', 'roll-0']);
    for (const p of await readyPods('roll')) allPids.add((await data(p.status!.podIP!)).pid);

    await apps.patchNamespacedStatefulSet({ namespace: NS, name: 'roll', body: { spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    const rev2 = (await rev()).updateRevision!;
    await patchEnv('3');
    const st3 = await waitFor('controller saw the OnDelete template change', async () => { const s = await rev(); return s.observedGeneration === (await apps.readNamespacedStatefulSet({ namespace: NS, name: 'roll' })).metadata!.generation && s.updateRevision !== rev2 ? s : undefined; });
    expect(Object.values(await podsRev())).toEqual([rev2, rev2]); // nothing replaced by itself
    expect(st3.currentRevision).toBe(rev2);
    await core.deleteNamespacedPod({ namespace: NS, name: 'roll-0' });
    await waitFor('roll-0 recreated at the new revision', async () => (await podsRev())['roll-0'] === st3.updateRevision && (await readyPods('roll')).length === 2, 90_000);
    expect((await podsRev())['roll-1']).toBe(rev2);
    for (const p of await readyPods('roll')) allPids.add((await data(p.status!.podIP!)).pid);
  });

  it('a Job runs to Complete; a failing Job hits backoffLimit → Failed', async () => {
    await batch.createNamespacedJob({ namespace: NS, body: {
      apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'ok' },
      spec: { completions: 2, parallelism: 1, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1.36', command: ['sh', '-c', 'echo hello from $(POD)'], env: [{ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] }] } } },
    } });
    await batch.createNamespacedJob({ namespace: NS, body: {
      apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'bad' },
      spec: { backoffLimit: 1, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1.36', command: ['sh', '-c', 'exit 3'] }] } } },
    } });
    const ok = await waitFor('job ok Complete', async () => { const j = await batch.readNamespacedJob({ namespace: NS, name: 'ok' }); return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined; }, 90_000);
    expect(ok.status!.succeeded).toBe(2);
    const bad = await waitFor('job bad Failed', async () => { const j = await batch.readNamespacedJob({ namespace: NS, name: 'bad' }); return j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True') ? j : undefined; }, 90_000);
    expect(bad.status!.failed).toBe(2); // backoffLimit 1 → the second failure ends it
    expect(bad.status!.conditions!.find((c) => c.type === 'Failed')!.reason).toBe('BackoffLimitExceeded');
    const okPods = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=ok' })).items;
    expect(okPods.every((p) => p.status?.phase === 'Succeeded')).toBe(true);
    const log = await core.readNamespacedPodLog({ namespace: NS, name: okPods[0].metadata!.name! });
    expect(log).toContain(`hello from ${okPods[0].metadata!.name}`);
    const reasons = (await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=ok' })).items.map((e) => e.reason);
    expect(reasons).toContain('SuccessfulCreate');
    expect(reasons).toContain('Completed');
    const badEvents = (await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=bad,type=Warning' })).items.map((e) => e.reason);
    expect(badEvents).toEqual(['BackoffLimitExceeded']);
    // Deleting the Job garbage-collects its pods (background propagation).
    await batch.deleteNamespacedJob({ namespace: NS, name: 'ok', propagationPolicy: 'Background' });
    await waitFor('job pods collected', async () => (await core.listNamespacedPod({ namespace: NS, labelSelector: 'job-name=ok' })).items.length === 0);
  });
});
