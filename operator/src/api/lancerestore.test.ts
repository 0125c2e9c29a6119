import { describe, expect, it } from 'vitest';
import { parseLanceRestore, parseLanceRestoreSpec, parseLanceRestoreStatus, safeParseLanceRestoreSpec } from './lancerestore.ts';

const newTarget = { clusterName: 'restored', spec: { image: 'lance/broker:0.1.0' } };
const source = { bucket: 'lance-dr', prefix: 'clusters/prod', endpoint: 'http://127.0.0.1:4568', forcePathStyle: true };

function pathsOf(spec: unknown): string[] {
  const r = safeParseLanceRestoreSpec(spec);
  if (r.ok) throw new Error('expected the spec to be rejected');
  return r.error.issues.map((i) => i.path);
}

describe('LanceRestore spec', () => {
  it('accepts a source and a new target, defaulting the target spec', () => {
    const s = parseLanceRestoreSpec({ source, target: newTarget });
    expect(s.source).toMatchObject({ backend: 's3', bucket: 'lance-dr', region: 'us-east-1' });
    expect(s.target.spec?.replicas).toBe(3);
    expect(s.pointInTime).toBeUndefined();
  });

  it('accepts clusterRef, pointInTime with an offset, topics and an existing target', () => {
    const s = parseLanceRestoreSpec({
      clusterRef: { name: 'prod' },
      pointInTime: '2026-11-22T09:30:00.5+01:00',
      topics: ['orders', 'payments.v2'],
      target: { clusterName: 'prod', existing: true },
    });
    expect(s.clusterRef?.name).toBe('prod');
    expect(s.topics).toEqual(['orders', 'payments.v2']);
  });

  it('needs exactly one of source and clusterRef', () => {
    expect(pathsOf({ target: newTarget })).toEqual(['spec']);
    expect(pathsOf({ source, clusterRef: { name: 'prod' }, target: newTarget })).toEqual(['spec']);
    const r = safeParseLanceRestoreSpec({ target: newTarget });
    expect(!r.ok && r.error.message).toContain('exactly one of source or clusterRef');
  });

  it('needs exactly one of target.spec and target.existing', () => {
    expect(pathsOf({ source, target: { clusterName: 'x' } })).toEqual(['spec.target']);
    expect(pathsOf({ source, target: { clusterName: 'x', existing: false } })).toEqual(['spec.target']);
    expect(pathsOf({ source, target: { ...newTarget, existing: true } })).toEqual(['spec.target']);
  });

  it('names nested field errors', () => {
    expect(pathsOf({ source, pointInTime: 'yesterday', target: newTarget })).toEqual(['spec.pointInTime']);
    expect(pathsOf({ source, pointInTime: '2026-11-22T09:30:00', target: newTarget })).toEqual(['spec.pointInTime']);
    expect(pathsOf({ source, topics: ['ok', 'not ok'], target: newTarget })).toEqual(['spec.topics[1]']);
    expect(pathsOf({ source: { backend: 's3' }, target: newTarget })).toEqual(['spec.source.bucket']);
    expect(pathsOf({ source, target: { clusterName: 'x', spec: { image: 'lance', replicas: 2 } } })).toEqual(['spec.target.spec.replicas']);
    expect(pathsOf({ source, target: { clusterName: 'Bad_Name', existing: true } })).toEqual(['spec.target.clusterName']);
  });
});

describe('LanceRestore object and status', () => {
  it('parses a whole object', () => {
    const r = parseLanceRestore({ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'r', namespace: 'ns' }, spec: { source, target: newTarget } });
    expect(r.spec.target.clusterName).toBe('restored');
    expect(() => parseLanceRestore({ apiVersion: 'lance.dev/v1', kind: 'LanceRestore', metadata: { name: 'r' }, spec: {} })).toThrow(/apiVersion/);
  });

  it('parses a status', () => {
    const st = parseLanceRestoreStatus({
      phase: 'Restoring',
      restorePoint: { id: 'rp-000042', time: '2026-11-22T09:29:50Z' },
      jobNames: ['r-restore-0'],
      startTime: '2026-11-22T10:00:00Z',
      topicsRestored: 2,
      bytesRestored: 1024,
    });
    expect(st.restorePoint?.id).toBe('rp-000042');
    expect(() => parseLanceRestoreStatus({ phase: 'Done' })).toThrow(/status\.phase/);
    expect(() => parseLanceRestoreStatus({ bytesRestored: -1 })).toThrow(/status\.bytesRestored/);
  });
});
