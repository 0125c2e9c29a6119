import { describe, expect, it } from 'vitest';
import { cluster, restore } from './fixtures.test-util.ts';
import { boundedName, names } from './names.ts';
import { resolveRestoreSource, restoreCommand, restoreJob, restoreResources, restoreTargetCluster, sourceUrl } from './restore-job.ts';
import { statefulSet } from './statefulset.ts';

const newTarget = { clusterName: 'prod-restored', spec: { image: 'lance/broker:0.2.0' } };
const s3 = { bucket: 'lance-dr', prefix: 'clusters/prod', endpoint: 'http://127.0.0.1:4568', forcePathStyle: true, credentialsSecret: { name: 's3' } };

describe('restore Job', () => {
  it('runs lnc restore from s3://bucket/prefix into the target PVC', () => {
    const r = restore({ source: s3, target: newTarget });
    const job = restoreJob({ restore: r, source: resolveRestoreSource(r), ordinal: 1, image: 'lance/broker:0.2.0' });
    expect(job.metadata).toMatchObject({ name: 'rs-restore-1', namespace: 'lance' });
    expect(job.metadata?.ownerReferences).toEqual([{ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', name: 'rs', uid: 'uid-rs', controller: true, blockOwnerDeletion: true }]);
    expect(job.metadata?.labels).toMatchObject({ 'lance.dev/restore': 'rs', 'app.kubernetes.io/instance': 'prod-restored', 'app.kubernetes.io/component': 'restore' });
    expect(job.spec?.backoffLimit).toBe(3);
    const pod = job.spec!.template.spec!;
    expect(pod.restartPolicy).toBe('Never');
    const c = pod.containers[0];
    expect(c.image).toBe('lance/broker:0.2.0');
    expect(c.command).toEqual([
      'lnc', 'restore', '--from', 's3://lance-dr/clusters/prod?endpoint=http%3A%2F%2F127.0.0.1%3A4568&region=us-east-1&forcePathStyle=true',
      '--data-dir', '/var/lib/lance', '--cluster-id', 'lance.prod-restored', '--node-id', '1', '--json',
    ]);
    expect(pod.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'data-prod-restored-1' } });
    expect(c.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/lance' });
    expect(c.env).toContainEqual({ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 's3', key: 'accessKeyId' } } });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: 10001 });
    expect(job.spec?.backoffLimit).toBe(3);
    expect(restoreJob({ restore: r, source: resolveRestoreSource(r), ordinal: 0, image: 'x', backoffLimit: 0 }).spec?.backoffLimit).toBe(0);
  });

  it('adds --time and --topics for a point-in-time restore of some topics', () => {
    const r = restore({ source: { bucket: 'bkt' }, pointInTime: '2026-11-22T09:30:00Z', topics: ['orders', 'payments'], target: newTarget });
    const cmd = restoreCommand({ restore: r, source: resolveRestoreSource(r), ordinal: 0 });
    expect(cmd.slice(cmd.indexOf('--time'), cmd.indexOf('--time') + 2)).toEqual(['--time', '2026-11-22T09:30:00Z']);
    expect(cmd.slice(cmd.indexOf('--topics'), cmd.indexOf('--topics') + 2)).toEqual(['--topics', 'orders,payments']);
    expect(cmd).toContain('s3://bkt?region=us-east-1');
  });

  it('resolves clusterRef to the referenced cluster\'s object store, or names spec.clusterRef', () => {
    const r = restore({ clusterRef: { name: 'prod' }, target: { clusterName: 'prod', existing: true } });
    const prod = cluster({ objectStore: { backend: 'file', path: '/mnt/dr', prefix: 'prod' } }, 'prod');
    const src = resolveRestoreSource(r, prod);
    expect(sourceUrl(src)).toBe('file:///mnt/dr/prod');
    expect(restoreCommand({ restore: r, source: src, ordinal: 2 })[3]).toBe('file:///mnt/dr/prod');
    expect(() => resolveRestoreSource(r)).toThrow(/spec\.clusterRef\.name: LanceCluster "prod" was not found/);
    expect(() => resolveRestoreSource(r, cluster({}, 'prod'))).toThrow(/spec\.clusterRef\.name: .*no spec\.objectStore/);
    expect(() => resolveRestoreSource(r, cluster({ objectStore: { bucket: 'bkt' } }, 'other'))).toThrow(/not found/);
  });

  it('builds source URLs without doubled slashes', () => {
    expect(sourceUrl({ backend: 's3', bucket: 'b', prefix: '', region: 'r', forcePathStyle: false })).toBe('s3://b?region=r');
    expect(sourceUrl({ backend: 's3', bucket: 'b', prefix: '/a/b/', region: 'r', forcePathStyle: false })).toBe('s3://b/a/b?region=r');
    expect(sourceUrl({ backend: 'file', path: '/mnt/x/', prefix: '', region: 'r', forcePathStyle: false })).toBe('file:///mnt/x');
  });

  it('keeps Job names within 63 characters and distinct', () => {
    const long = 'r'.repeat(60);
    const a = names.restoreJob(long, 1);
    const b = names.restoreJob(long, 2);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(boundedName('short', 63)).toBe('short');
  });
});

describe('restore plan', () => {
  it('creates the new target cluster from target.spec, annotated and not owned by the restore', () => {
    const r = restore({ source: s3, target: { clusterName: 'prod-restored', spec: { image: 'lance/broker:0.2.0', replicas: 3, storage: { size: '5Gi' } } } });
    const target = restoreTargetCluster(r);
    expect(target?.metadata).toEqual({ name: 'prod-restored', namespace: 'lance', annotations: { 'lance.dev/restored-by': 'rs' } });
    expect(target?.spec.replicas).toBe(3);
    expect(target).toMatchObject({ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster' });
    expect(restoreTargetCluster(restore({ source: s3, target: { clusterName: 'prod', existing: true } }))).toBeUndefined();
  });

  it('fills one PVC per target broker, named as the StatefulSet will claim them, with one Job each', () => {
    const r = restore({ source: s3, pointInTime: '2026-11-22T09:30:00Z', target: { clusterName: 'prod-restored', spec: { image: 'lance/broker:0.2.0', storage: { size: '5Gi', storageClassName: 'fast' } } } });
    const target = restoreTargetCluster(r)!;
    const { pvcs, jobs } = restoreResources({ restore: r, source: resolveRestoreSource(r), target });
    expect(pvcs.map((p) => p.metadata?.name)).toEqual(['data-prod-restored-0', 'data-prod-restored-1', 'data-prod-restored-2']);
    expect(pvcs[0].spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'fast' });
    // The StatefulSet created later must adopt exactly these claims.
    const sts = statefulSet({ ...target, metadata: { ...target.metadata, uid: 'u' } });
    expect(sts.spec?.volumeClaimTemplates?.[0].spec).toEqual(pvcs[0].spec);
    expect(sts.spec?.volumeClaimTemplates?.[0].metadata?.name).toBe('data');
    expect(jobs.map((j) => j.metadata?.name)).toEqual(['rs-restore-0', 'rs-restore-1', 'rs-restore-2']);
    expect(jobs.map((j) => j.spec?.template.spec?.volumes?.[0].persistentVolumeClaim?.claimName)).toEqual(pvcs.map((p) => p.metadata?.name));
    expect(jobs[2].spec?.template.spec?.containers[0].command).toEqual(expect.arrayContaining(['--node-id', '2', '--time', '2026-11-22T09:30:00Z']));
    expect(jobs[0].spec?.template.spec?.containers[0].image).toBe('lance/broker:0.2.0');
  });

  it('restores into an existing cluster with its own size and image', () => {
    const r = restore({ clusterRef: { name: 'prod' }, target: { clusterName: 'prod', existing: true } });
    const prod = cluster({ replicas: 5, image: 'lance/broker:0.3.0', objectStore: { bucket: 'bkt' } }, 'prod');
    const { pvcs, jobs } = restoreResources({ restore: r, source: resolveRestoreSource(r, prod), target: prod, backoffLimit: 1 });
    expect(pvcs).toHaveLength(5);
    expect(jobs.every((j) => j.spec?.backoffLimit === 1 && j.spec.template.spec?.containers[0].image === 'lance/broker:0.3.0')).toBe(true);
    expect(() => restoreResources({ restore: r, source: resolveRestoreSource(r, prod), target: cluster({}, 'other') })).toThrow(/spec\.target\.clusterName/);
  });
});
