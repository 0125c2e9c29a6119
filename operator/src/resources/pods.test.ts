/**
 * The built manifests run a real broker: the test/kube stand-in's StatefulSet controller and kubelet turn them into
 * a real `lance` process (ConfigMap mounted, env from the downward API, PVC directory), whose probes pass and whose
 * admin API reports the identity the operator configured. The operator controller itself is not involved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../../../test/kube/cluster.ts';
import { pidAlive, waitFor } from '../../../test/kube/testutil.ts';
import type { KObject } from '../../../test/kube/types.ts';
import { desiredResources } from './desired.ts';
import { cluster } from './fixtures.test-util.ts';

describe('a single-broker cluster built by desiredResources', () => {
  let k: StandIn;
  let pids: number[] = [];

  beforeAll(async () => {
    k = await startStandIn({ nodes: ['node-0'] });
    k.store.create(k.store.type('', 'namespaces')!, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lance' } } as KObject);
  });
  afterAll(async () => {
    pids = k?.kubelet?.pids() ?? [];
    await k?.stop();
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  });

  it('becomes Ready and serves the configured identity', async () => {
    const c = cluster({ replicas: 1, readOnly: true, config: { defaultPartitions: 2 } });
    const types = { ServiceAccount: ['', 'serviceaccounts'], ConfigMap: ['', 'configmaps'], Service: ['', 'services'], PodDisruptionBudget: ['policy', 'poddisruptionbudgets'], StatefulSet: ['apps', 'statefulsets'] } as const;
    // The owner is not in the store (no operator here), so drop ownerReferences lest the GC collect the objects.
    for (const r of desiredResources(c, { bindAddress: 'podIP' })) {
      const [group, plural] = types[r.kind as keyof typeof types];
      const obj = JSON.parse(JSON.stringify(r)) as KObject;
      delete obj.metadata.ownerReferences;
      k.store.create(k.store.type(group, plural)!, 'lance', obj);
    }
    const podT = k.store.type('', 'pods')!;
    const pod = await waitFor(
      'pod demo-0 Ready',
      () => {
        const p = k.store.tryGet(podT, 'lance', 'demo-0');
        const ready = (p?.status?.conditions as Array<{ type: string; status: string }> | undefined)?.find((x) => x.type === 'Ready');
        return ready?.status === 'True' ? p : undefined;
      },
      120_000,
      250,
    );
    expect(pod.metadata.labels?.['apps.kubernetes.io/pod-index']).toBe('0');
    expect(pod.metadata.labels?.['lance.dev/fenced']).toBe('false');
    const ip = pod.status?.podIP as string;
    const ready = await fetch(`http://${ip}:1992/health/ready`);
    expect(ready.status).toBe(200);
    const info = (await (await fetch(`http://${ip}:1992/v1/cluster`)).json()) as { clusterId: string; nodeId: number; readOnly: boolean; listeners: { kafka: { host: string; port: number } } };
    expect(info.clusterId).toBe('lance.demo');
    expect(info.nodeId).toBe(0);
    expect(info.readOnly).toBe(true);
    // Kafka clients are sent to the pod's stable DNS name (LANCE_ADVERTISED_HOST after $(VAR) expansion).
    expect(info.listeners.kafka).toEqual({ host: 'demo-0.demo-headless.lance.svc', port: 9092 });
    // The endpoints controller puts the ready, unfenced pod behind the client Service.
    const epT = k.store.type('', 'endpoints')!;
    await waitFor('client Service endpoints', () => {
      const ep = k.store.tryGet(epT, 'lance', 'demo');
      const subsets = (ep?.subsets as Array<{ addresses?: Array<{ ip: string }> }> | undefined) ?? [];
      return subsets.some((s) => (s.addresses ?? []).some((a) => a.ip === ip));
    }, 60_000, 250);
  }, 180_000);
});
