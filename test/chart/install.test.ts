/**
 * `helm install` of charts/lance-operator into the test/kube stand-in: CRDs, RBAC and the Deployment are created,
 * the operator pod (a real process started by the stand-in's kubelet from image lance/operator:*) becomes Ready and
 * serves /metrics, and a LanceCluster applied with kubectl is reconciled (StatefulSet, broker pod, phase Running).
 * The operator reaches the API through a recording proxy, so every request it makes is checked against the RBAC the
 * chart grants — the stand-in does not enforce RBAC, this test does.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../kube/cluster.ts';
import { REPO_ROOT } from '../kube/images.ts';
import { writeKubeconfig } from '../kube/kubeconfig.ts';
import { helm, kubectl, pidAlive, toolEnv, waitFor } from '../kube/testutil.ts';
import type { RbacRule } from '../../operator/src/kube/rbac.ts';
import { accessOf, allows, CHART, type ApiAccess } from './chart-util.ts';

const NS = 'lance-system';

/** A pass-through HTTP proxy in front of the stand-in that records each request's RBAC access. */
async function recordingProxy(target: string): Promise<{ url: string; seen: ApiAccess[]; close(): Promise<void> }> {
  const t = new URL(target);
  const seen: ApiAccess[] = [];
  const server = http.createServer((req, res) => {
    const a = accessOf(req.method ?? 'GET', req.url ?? '/');
    if (a) seen.push(a);
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`, seen,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

interface Pod { metadata: { name: string; labels?: Record<string, string> }; status?: { podIP?: string; conditions?: { type: string; status: string }[] } }
const ready = (p: Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('helm install charts/lance-operator into the stand-in', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let dir: string;
  const getJson = async <T>(args: string[]): Promise<T> => {
    const r = await kubectl(env, ['get', ...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    k = await startStandIn();
    env = toolEnv(k.kubeconfigPath);
    proxy = await recordingProxy(k.url);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chart-install-'));
  }, 60_000);

  afterAll(async () => {
    const pids = k?.kubelet?.pids() ?? [];
    await k?.stop();
    await proxy?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  }, 120_000);

  it('creates CRDs, RBAC and the Deployment; the operator pod becomes Ready and serves /metrics', async () => {
    expect((await kubectl(env, ['create', 'namespace', NS])).code).toBe(0);
    // Out-of-cluster access for the pod: the stand-in has no service-account tokens, so the chart's kubeconfigSecret.
    const kc = await writeKubeconfig(dir, proxy.url);
    const sec = await kubectl(env, ['-n', NS, 'create', 'secret', 'generic', 'operator-kubeconfig', `--from-file=kubeconfig=${kc}`]);
    expect(sec.code, sec.stderr).toBe(0);
    const [healthPort, metricsPort] = [await freePort(), await freePort()];
    const inst = await helm(env, ['install', 'lance-operator', CHART, '-n', NS, '--wait', '--timeout', '180s',
      '--set', 'kubeconfigSecret.name=operator-kubeconfig', '--set', 'brokerBindAddress=podIP',
      '--set', `healthPort=${healthPort}`, '--set', `metrics.port=${metricsPort}`]);
    expect(inst.code, inst.stdout + inst.stderr).toBe(0);
    expect(inst.stdout).toContain('STATUS: deployed');
    expect(inst.stdout).toContain('kubectl -n lance-system rollout status deployment/lance-operator'); // NOTES.txt

    for (const crd of ['lanceclusters.lance.dev', 'lancerestores.lance.dev']) expect((await kubectl(env, ['get', 'crd', crd])).code, crd).toBe(0);
    for (const obj of ['clusterrole/lance-operator', 'clusterrolebinding/lance-operator', 'serviceaccount/lance-operator', 'role/lance-operator-leader-election', 'rolebinding/lance-operator-leader-election', 'service/lance-operator-metrics']) {
      const r = await kubectl(env, ['-n', NS, 'get', obj]);
      expect(r.code, `${obj}: ${r.stderr}`).toBe(0);
    }
    const dep = await getJson<{ status: { readyReplicas?: number } }>(['-n', NS, 'deployment', 'lance-operator']);
    expect(dep.status.readyReplicas).toBe(1);
    const pods = (await getJson<{ items: Pod[] }>(['-n', NS, 'pods', '-l', 'app.kubernetes.io/name=lance-operator'])).items;
    expect(pods).toHaveLength(1);
    expect(ready(pods[0]!)).toBe(true);
    const ip = pods[0]!.status!.podIP!;
    const healthz = await fetch(`http://${ip}:${healthPort}/readyz`);
    expect(healthz.status).toBe(200);
    const metrics = await fetch(`http://${ip}:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# HELP /m);
  }, 240_000);

  it('a LanceCluster applied with kubectl is reconciled by the installed operator (StatefulSet, broker pod, Running)', async () => {
    const doc = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'examples', 'cluster.yaml'), 'utf8')) as { spec: { replicas: number } };
    doc.spec.replicas = 1; // brokers do not form a multi-node cluster yet (see test/operator/lancecluster.e2e.test.ts)
    const r = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(doc));
    expect(r.code, r.stderr).toBe(0);
    await waitFor('StatefulSet demo', async () => (await kubectl(env, ['get', 'statefulset', 'demo'])).code === 0, 120_000, 250);
    await waitFor('broker pod demo-0 Ready', async () => {
      const p = await getJson<Pod>(['pod', 'demo-0']).catch(() => undefined);
      return p !== undefined && ready(p);
    }, 180_000, 250);
    await waitFor('LanceCluster phase Running', async () => (await getJson<{ status?: { phase?: string } }>(['lc', 'demo'])).status?.phase === 'Running', 180_000, 250);
  }, 400_000);

  it('every API request the operator made is allowed by the RBAC the chart installed', async () => {
    const cr = await getJson<{ rules: RbacRule[] }>(['clusterrole', 'lance-operator']);
    const leader = await getJson<{ rules: RbacRule[] }>(['-n', NS, 'role', 'lance-operator-leader-election']);
    const denied = proxy.seen.filter((a) => !(allows(cr.rules, a) || (a.namespace === NS && allows(leader.rules, a))));
    const uniq = (xs: ApiAccess[]): string[] => [...new Set(xs.map((a) => `${a.verb} ${a.group}/${a.resource}${a.namespace ? ` in ${a.namespace}` : ''}`))].sort();
    expect(uniq(denied)).toEqual([]);
    // The proxy really saw the operator's work (not a vacuous pass).
    const seen = uniq(proxy.seen);
    expect(seen).toEqual(expect.arrayContaining(['watch lance.dev/lanceclusters', 'create apps/statefulsets in default', 'update lance.dev/lanceclusters/status in default', 'create coordination.k8s.io/leases in lance-system']));
  });
});
