import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { startStandIn, type StandIn } from './cluster.ts';
import { helm, kubectl, pidAlive, toolEnv } from './testutil.ts';

const CHART = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'chart');

describe('real helm against the stand-in', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    k = await startStandIn();
    env = toolEnv(k.kubeconfigPath);
  });
  afterAll(async () => {
    const pids = k?.kubelet?.pids() ?? [];
    await k?.stop();
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  });

  it('install (CRDs, RBAC, Service, Deployment with --wait, PDB), list, upgrade, uninstall', async () => {
    const inst = await helm(env, ['install', 'demo', CHART, '--wait', '--timeout', '90s']);
    expect(inst.stderr).toBe('');
    expect(inst.stdout).toContain('STATUS: deployed');
    // Release storage: a Secret written by helm's typed client (protobuf on the wire).
    const secrets = await kubectl(env, ['get', 'secrets', '-l', 'owner=helm', '-o', 'jsonpath={.items[*].metadata.name}']);
    expect(secrets.stdout).toBe('sh.helm.release.v1.demo.v1');
    const list = await helm(env, ['list', '-o', 'json']);
    expect(JSON.parse(list.stdout)).toMatchObject([{ name: 'demo', namespace: 'default', revision: '1', status: 'deployed' }]);
    const crd = await kubectl(env, ['get', 'crd', 'widgets.example.lance.dev', '-o', 'name']);
    expect(crd.stdout.trim()).toBe('customresourcedefinition.apiextensions.k8s.io/widgets.example.lance.dev');
    const deploy = JSON.parse((await kubectl(env, ['get', 'deployment', 'demo-web', '-o', 'json'])).stdout);
    expect(deploy.status.readyReplicas).toBe(1);
    const ep = JSON.parse((await kubectl(env, ['get', 'endpoints', 'demo-web', '-o', 'json'])).stdout);
    expect(ep.subsets[0].addresses).toHaveLength(1);
    expect(ep.subsets[0].ports[0].port).toBe(8080); // named targetPort resolved from the container

    const up = await helm(env, ['upgrade', 'demo', CHART, '--set', 'message=bye', '--wait', '--timeout', '90s']);
    expect(up.stdout).toContain('REVISION: 2');
    const cm = JSON.parse((await kubectl(env, ['get', 'cm', 'demo-config', '-o', 'json'])).stdout);
    expect(cm.data.message).toBe('bye');

    const un = await helm(env, ['uninstall', 'demo', '--wait', '--timeout', '90s']);
    expect(un.stdout).toContain('release "demo" uninstalled');
    expect(JSON.parse((await helm(env, ['list', '-o', 'json'])).stdout)).toEqual([]);
    const left = await kubectl(env, ['get', 'deployments,services,configmaps,secrets,roles,rolebindings,serviceaccounts,pdb', '-o', 'name']);
    expect(left.stdout.split('\n').filter((l) => l.includes('demo'))).toEqual([]);
  });
});
