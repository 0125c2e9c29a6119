/**
 * The generated CRDs driven by real kubectl against the test/kube API stand-in: install, apply the examples,
 * server-side defaults, printer columns, scale subresource, and invalid objects refused with the field named
 * (issue 8's acceptance "Invalid CRs (even replicas, bad quantity) are rejected with the field named").
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { startStandIn, type StandIn } from '../../../test/kube/cluster.ts';
import { REPO_ROOT } from '../../../test/kube/images.ts';
import { kubectl, toolEnv, waitFor } from '../../../test/kube/testutil.ts';

const example = (f: string) => join(REPO_ROOT, 'examples', f);

describe('CRDs with real kubectl', () => {
  let k: StandIn;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // API server only: these checks need admission, not pods.
    k = await startStandIn({ workloads: false });
    env = toolEnv(k.kubeconfigPath);
    const r = await kubectl(env, ['apply', '-f', join(REPO_ROOT, 'crds')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/lanceclusters.lance.dev created');
    expect(r.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/lancerestores.lance.dev created');
    // Discovery serves the new kinds once the CRDs are established.
    await waitFor('lc and lrs served', async () => (await kubectl(env, ['get', 'lc,lrs'])).code === 0);
  });
  afterAll(async () => {
    await k?.stop();
  });

  it('applies the cluster example and fills the defaults server-side', async () => {
    const r = await kubectl(env, ['apply', '-f', example('cluster.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('lancecluster.lance.dev/demo created');
    const obj = YAML.parse((await kubectl(env, ['get', 'lc', 'demo', '-o', 'yaml'])).stdout);
    expect(obj.spec).toMatchObject({
      replicas: 3,
      imagePullPolicy: 'IfNotPresent',
      storage: { size: '5Gi', onDelete: 'Retain' },
      listeners: { kafkaPort: 9092, adminPort: 1992, raftPort: 1993 },
      readOnly: false,
      updateStrategy: { type: 'Auto' },
    });
  });

  it('shows Phase, Ready, Leader, Term and Age from status', async () => {
    const p = await kubectl(env, ['patch', 'lancecluster', 'demo', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running', replicas: 3, readyReplicas: 3, ready: '3/3', leader: 'demo-0', controllerTerm: 7 } })]);
    expect(p.stderr).toBe('');
    const out = (await kubectl(env, ['get', 'lc', 'demo'])).stdout.trim().split('\n');
    expect(out[0].split(/\s+/)).toEqual(['NAME', 'PHASE', 'READY', 'LEADER', 'TERM', 'AGE']);
    expect(out[1].split(/\s+/).slice(0, 5)).toEqual(['demo', 'Running', '3/3', 'demo-0', '7']);
    const wide = (await kubectl(env, ['get', 'lc', 'demo', '-o', 'wide'])).stdout;
    expect(wide).toContain('lance/broker:0.1.0');
    // The category lists both kinds.
    expect((await kubectl(env, ['get', 'lance'])).stdout).toContain('lancecluster.lance.dev/demo');
  });

  it('rejects an even replica count and a bad quantity, naming the field', async () => {
    const bad = YAML.parse(await readFile(example('cluster.yaml'), 'utf8'));
    bad.metadata.name = 'bad';
    bad.spec.replicas = 4;
    const r1 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(bad));
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain('spec.replicas');
    expect(r1.stderr).toContain('replicas must be odd');
    bad.spec.replicas = 3;
    bad.spec.storage.size = '10GB';
    const r2 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(bad));
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toContain('spec.storage.size');
    bad.spec.storage.size = '1Gi';
    bad.spec.image = 'Not A Valid Image';
    const r3 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(bad));
    expect(r3.code).not.toBe(0);
    expect(r3.stderr).toContain('spec.image');
    expect((await kubectl(env, ['get', 'lc', 'bad'])).code).not.toBe(0);
  });

  it('scales through the scale subresource, odd counts only', async () => {
    const up = await kubectl(env, ['scale', 'lc', 'demo', '--replicas=5']);
    expect(up.stderr).toBe('');
    expect(YAML.parse((await kubectl(env, ['get', 'lc', 'demo', '-o', 'yaml'])).stdout).spec.replicas).toBe(5);
    const even = await kubectl(env, ['scale', 'lc', 'demo', '--replicas=4']);
    expect(even.code).not.toBe(0);
    expect(even.stderr).toContain('replicas must be odd');
  });

  it('keeps storageClassName immutable once set', async () => {
    expect((await kubectl(env, ['apply', '-f', example('cluster-s3.yaml')])).stderr).toBe('');
    const doc = YAML.parseAllDocuments(await readFile(example('cluster-s3.yaml'), 'utf8')).map((d) => d.toJS()).find((d) => d.kind === 'LanceCluster');
    doc.spec.storage.storageClassName = 'other';
    const r = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(doc));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('storageClassName is immutable once set');
  });

  it('applies the restore examples, shows Target and Restore-Point, and keeps pointInTime immutable', async () => {
    for (const f of ['restore.yaml', 'restore-pitr.yaml']) expect((await kubectl(env, ['apply', '-f', example(f)])).stderr, f).toBe('');
    await kubectl(env, ['patch', 'lrs', 'prod-before-incident', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Restoring', restorePoint: { id: 'rp-1', time: '2026-11-22T09:29:50Z' } } })]);
    const out = (await kubectl(env, ['get', 'lrs', 'prod-before-incident'])).stdout.trim().split('\n');
    expect(out[0].split(/\s+/)).toEqual(['NAME', 'PHASE', 'TARGET', 'RESTORE-POINT', 'AGE']);
    expect(out[1].split(/\s+/).slice(0, 4)).toEqual(['prod-before-incident', 'Restoring', 'prod-pitr', '2026-11-22T09:29:50Z']);
    const doc = YAML.parse(await readFile(example('restore-pitr.yaml'), 'utf8'));
    doc.spec.pointInTime = '2026-11-22T11:00:00Z';
    const r = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(doc));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('pointInTime is immutable');
    const both = YAML.parse(await readFile(example('restore.yaml'), 'utf8'));
    both.metadata.name = 'both';
    both.spec.clusterRef = { name: 'prod' };
    const r2 = await kubectl(env, ['apply', '-f', '-'], YAML.stringify(both));
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toContain('set exactly one of source or clusterRef');
  });
});
