/**
 * The operator as pods (image lance/operator:* → operator/src/main.ts) in the stand-in: a Deployment of two
 * replicas with --leader-elect → exactly one holds the Lease and reports itself leader; it reconciles a
 * LanceCluster; deleting the leader pod (SIGTERM releases the Lease) hands leadership to another replica.
 */
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../kube/cluster.ts';
import { REPO_ROOT } from '../kube/images.ts';
import { kubectl, toolEnv, waitFor } from '../kube/testutil.ts';

describe('operator Deployment with leader election (2 replicas)', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;
  const getJson = async <T>(args: string[]): Promise<T> => {
    const r = await kubectl(env, ['get', ...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const holder = async (): Promise<string> => (await getJson<{ spec: { holderIdentity?: string } }>(['lease', 'lance-operator'])).spec.holderIdentity ?? '';
  const operatorPods = async (): Promise<{ name: string; ip: string; ready: boolean; deleting: boolean }[]> =>
    (await getJson<{ items: { metadata: { name: string; deletionTimestamp?: string }; status: { podIP?: string; conditions?: { type: string; status: string }[] } }[] }>(['pods', '-l', 'app=lance-operator'])).items.map((p) => ({
      name: p.metadata.name, ip: p.status.podIP ?? '', deleting: !!p.metadata.deletionTimestamp,
      ready: p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    }));
  const leaderGauge = async (ip: string): Promise<number> => {
    const text = await (await fetch(`http://${ip}:8081/metrics`)).text();
    return Number(/^lance_operator_leader (\d)/m.exec(text)?.[1] ?? -1);
  };

  beforeAll(async () => {
    k = await startStandIn();
    env = toolEnv(k.kubeconfigPath);
    expect((await kubectl(env, ['apply', '-f', path.join(REPO_ROOT, 'crds')])).code).toBe(0);
  }, 120_000);
  afterAll(async () => { await k?.stop(); }, 120_000);

  it('one leader; it reconciles; deleting it hands over the lease', async () => {
    const deploy = {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'lance-operator' },
      spec: {
        replicas: 2, selector: { matchLabels: { app: 'lance-operator' } },
        template: {
          metadata: { labels: { app: 'lance-operator' } },
          spec: {
            terminationGracePeriodSeconds: 20,
            containers: [{
              name: 'operator', image: 'lance/operator:dev',
              args: ['--kubeconfig', k.kubeconfigPath, '--namespace', 'default', '--leader-elect', '--lease-namespace', 'default', '--health-port', '8081', '--metrics-port', '8081', '--bind-address', '$(POD_IP)', '--broker-bind-address', 'podIP'],
              env: [
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'LANCE_LOG_LEVEL', value: 'warn' },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 8081 }, periodSeconds: 1 },
              livenessProbe: { httpGet: { path: '/healthz', port: 8081 }, periodSeconds: 2, failureThreshold: 30 },
            }],
          },
        },
      },
    };
    expect((await kubectl(env, ['apply', '-f', '-'], YAML.stringify(deploy))).code).toBe(0);
    await waitFor('2 operator pods Ready', async () => (await operatorPods()).filter((p) => p.ready).length === 2, 120_000);
    await waitFor('a lease holder', async () => (await holder()) !== '', 60_000);
    const first = (await holder()).split('_')[0]!;
    const pods = await operatorPods();
    expect(pods.map((p) => p.name)).toContain(first);
    // Exactly one replica says it leads.
    await waitFor('one leader gauge', async () => {
      const g = await Promise.all(pods.map((p) => leaderGauge(p.ip)));
      return g.filter((x) => x === 1).length === 1 && g.filter((x) => x === 0).length === 1;
    }, 30_000);

    const lc = { apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', metadata: { name: 'solo' }, spec: { replicas: 1, image: 'lance/broker:0.1.0' } };
    expect((await kubectl(env, ['apply', '-f', '-'], YAML.stringify(lc))).code).toBe(0);
    await waitFor('LanceCluster Running via the operator pod', async () => (await getJson<{ status?: { phase?: string } }>(['lc', 'solo'])).status?.phase === 'Running', 120_000);

    expect((await kubectl(env, ['delete', 'pod', first, '--wait=false'])).code).toBe(0);
    await waitFor('lease handed to another replica', async () => { const h = await holder(); return h !== '' && !h.startsWith(`${first}_`); }, 90_000);
    const survivor = (await holder()).split('_')[0]!;
    expect(survivor).not.toBe(first);
  }, 300_000);
});
