import { describe, expect, it } from 'vitest';
import { SpecError, durationToMs, formatPath } from './common.ts';
import { parseLanceCluster, parseLanceClusterSpec, parseLanceClusterStatus, readyText, safeParseLanceClusterSpec } from './lancecluster.ts';

const minimal = { image: 'lance/broker:0.1.0' };

function issuesFor(spec: unknown): Array<{ path: string; message: string }> {
  const r = safeParseLanceClusterSpec(spec);
  if (r.ok) throw new Error('expected the spec to be rejected');
  expect(r.error).toBeInstanceOf(SpecError);
  expect(r.error.code).toBe('INVALID_SPEC');
  return r.error.issues.map((i) => ({ path: i.path, message: i.message }));
}

describe('LanceCluster spec', () => {
  it('fills the defaults for a minimal spec', () => {
    const s = parseLanceClusterSpec(minimal);
    expect(s.replicas).toBe(3);
    expect(s.imagePullPolicy).toBe('IfNotPresent');
    expect(s.listeners).toEqual({ kafkaPort: 9092, adminPort: 1992, raftPort: 1993 });
    expect(s.storage).toEqual({ size: '10Gi', onDelete: 'Retain' });
    expect(s.readOnly).toBe(false);
    expect(s.updateStrategy.type).toBe('Auto');
    expect(s.config).toEqual({});
    expect(s.objectStore).toBeUndefined();
  });

  it('rejects an even replica count, naming spec.replicas', () => {
    for (const replicas of [2, 4]) {
      const issues = issuesFor({ ...minimal, replicas });
      expect(issues).toEqual([{ path: 'spec.replicas', message: expect.stringContaining('odd') }]);
    }
    expect(issuesFor({ ...minimal, replicas: 0 })[0].path).toBe('spec.replicas');
    expect(issuesFor({ ...minimal, replicas: 1.5 })[0].path).toBe('spec.replicas');
  });

  it('accepts odd replica counts', () => {
    for (const replicas of [1, 3, 5, 7]) expect(parseLanceClusterSpec({ ...minimal, replicas }).replicas).toBe(replicas);
  });

  it('rejects bad quantities, naming the field', () => {
    expect(issuesFor({ ...minimal, storage: { size: '10GB' } })).toEqual([
      { path: 'spec.storage.size', message: expect.stringContaining('quantity') },
    ]);
    const issues = issuesFor({ ...minimal, resources: { requests: { cpu: 'lots' }, limits: { memory: '-1Gi' } } });
    expect(issues.map((i) => i.path).sort()).toEqual(['spec.resources.limits.memory', 'spec.resources.requests.cpu']);
    expect(issuesFor({ ...minimal, storage: { size: -5 } })[0].path).toBe('spec.storage.size');
  });

  it('accepts quantities as strings and integers', () => {
    const s = parseLanceClusterSpec({ ...minimal, storage: { size: 1073741824 }, resources: { requests: { cpu: 2, memory: '1.5Gi' }, limits: { cpu: '500m' } } });
    expect(s.storage.size).toBe(1073741824);
    expect(s.resources?.requests).toEqual({ cpu: 2, memory: '1.5Gi' });
    for (const q of ['1', '0.5', '100m', '1e3', '10Ki', '5Ei', '.5']) expect(safeParseLanceClusterSpec({ ...minimal, storage: { size: q } }).ok).toBe(true);
  });

  it('rejects bad images, naming spec.image', () => {
    for (const image of ['', 'Lance/Broker', 'lance broker', 'lance/broker:', 'lance/broker@sha256:abc', 'http://x/y', 'lance/broker:-tag']) {
      expect(issuesFor({ image })[0].path, image).toBe('spec.image');
    }
    expect(issuesFor({})[0]).toEqual({ path: 'spec.image', message: expect.any(String) });
  });

  it('accepts common image references', () => {
    for (const image of [
      'lance',
      'lance/broker',
      'lance/broker:0.1.0',
      'registry.example.com:5000/team/lance-broker:v1.2.3-rc.1',
      'localhost:5000/lance_broker:latest',
      `ghcr.io/lance/broker@sha256:${'a'.repeat(64)}`,
      `ghcr.io/lance/broker:1.0@sha256:${'0'.repeat(64)}`,
    ]) {
      expect(safeParseLanceClusterSpec({ image }).ok, image).toBe(true);
    }
  });

  it('requires a bucket for s3 and a path for file object stores', () => {
    expect(issuesFor({ ...minimal, objectStore: { backend: 's3' } })).toEqual([{ path: 'spec.objectStore.bucket', message: expect.stringContaining('required') }]);
    expect(issuesFor({ ...minimal, objectStore: { backend: 'file' } })).toEqual([{ path: 'spec.objectStore.path', message: expect.stringContaining('required') }]);
    const s = parseLanceClusterSpec({ ...minimal, objectStore: { bucket: 'lance-dr', credentialsSecret: { name: 's3' } } });
    expect(s.objectStore).toMatchObject({ backend: 's3', prefix: '', region: 'us-east-1', forcePathStyle: false, metadataUploadInterval: '10s' });
    expect(s.objectStore?.credentialsSecret).toEqual({ name: 's3', accessKeyIdKey: 'accessKeyId', secretAccessKeyKey: 'secretAccessKey' });
    expect(issuesFor({ ...minimal, objectStore: { bucket: 'Bad_Bucket', endpoint: 'not a url' } }).map((i) => i.path).sort()).toEqual([
      'spec.objectStore.bucket',
      'spec.objectStore.endpoint',
    ]);
    expect(issuesFor({ ...minimal, objectStore: { bucket: 'bkt', metadataUploadInterval: '10 seconds' } })[0].path).toBe('spec.objectStore.metadataUploadInterval');
    expect(issuesFor({ ...minimal, objectStore: { bucket: 'bkt', endpoint: 'ftp://files.local' } })[0].path).toBe('spec.objectStore.endpoint');
    for (const endpoint of ['http://127.0.0.1:4568', 'https://s3.eu-west-1.amazonaws.com', 'http://minio.storage.svc:9000/']) {
      expect(safeParseLanceClusterSpec({ ...minimal, objectStore: { bucket: 'bkt', endpoint } }).ok, endpoint).toBe(true);
    }
  });

  it('rejects clashing ports and out-of-range ports', () => {
    expect(issuesFor({ ...minimal, listeners: { kafkaPort: 1992 } })).toEqual([{ path: 'spec.listeners.adminPort', message: expect.any(String) }]);
    expect(issuesFor({ ...minimal, listeners: { raftPort: 9092 } })).toEqual([{ path: 'spec.listeners.raftPort', message: expect.any(String) }]);
    expect(issuesFor({ ...minimal, listeners: { kafkaPort: 70000 } })[0].path).toBe('spec.listeners.kafkaPort');
  });

  it('keeps additionalConfig scalars and refuses keys the operator manages', () => {
    const s = parseLanceClusterSpec({ ...minimal, config: { additionalConfig: { 'storage.indexIntervalBytes': 8192, maxFrameBytes: 1000, 'x.y_z': false, s: 'v' } } });
    expect(s.config.additionalConfig).toEqual({ 'storage.indexIntervalBytes': 8192, maxFrameBytes: 1000, 'x.y_z': false, s: 'v' });
    expect(issuesFor({ ...minimal, config: { additionalConfig: { 'listeners.kafka.port': 1 } } })).toEqual([
      { path: 'spec.config.additionalConfig["listeners.kafka.port"]', message: expect.stringContaining('set by the operator') },
    ]);
    // snake_case is the same key to the broker, so it is caught too.
    expect(issuesFor({ ...minimal, config: { additionalConfig: { read_only: true } } })[0].path).toBe('spec.config.additionalConfig.read_only');
    expect(issuesFor({ ...minimal, config: { additionalConfig: { 'storage.segment_bytes': 1 } } })).toEqual([
      { path: 'spec.config.additionalConfig["storage.segment_bytes"]', message: 'use spec.config.segmentBytes instead' },
    ]);
    expect(issuesFor({ ...minimal, config: { additionalConfig: { 'a.b': { nested: 1 } } } })[0].path).toBe('spec.config.additionalConfig["a.b"]');
    expect(issuesFor({ ...minimal, config: { additionalConfig: { 'bad key': 1 } } })[0].path).toBe('spec.config.additionalConfig["bad key"]');
    // Object-store tuning keys are allowed with an object store; what spec.objectStore renders and credentials are not.
    const tuned = parseLanceClusterSpec({ ...minimal, objectStore: { bucket: 'bkt' }, config: { additionalConfig: { 'objectStore.partConcurrency': 8 } } });
    expect(tuned.config.additionalConfig).toEqual({ 'objectStore.partConcurrency': 8 });
    expect(issuesFor({ ...minimal, config: { additionalConfig: { 'objectStore.partConcurrency': 8 } } })).toEqual([
      { path: 'spec.config.additionalConfig["objectStore.partConcurrency"]', message: 'needs spec.objectStore' },
    ]);
    expect(issuesFor({ ...minimal, objectStore: { bucket: 'bkt' }, config: { additionalConfig: { 'objectStore.secret_access_key': 'x' } } })[0]).toEqual({
      path: 'spec.config.additionalConfig["objectStore.secret_access_key"]',
      message: expect.stringContaining('set by the operator'),
    });
  });

  it('rejects unknown fields (typos) with their path', () => {
    expect(issuesFor({ ...minimal, replica: 3 })[0]).toEqual({ path: 'spec', message: expect.stringContaining('replica') });
    expect(issuesFor({ ...minimal, storage: { sise: '1Gi' } })[0].path).toBe('spec.storage');
  });

  it('reports every problem at once in the error message', () => {
    const r = safeParseLanceClusterSpec({ image: 'BAD', replicas: 2, storage: { size: 'big' } });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toContain('spec.image');
      expect(r.error.message).toContain('spec.replicas');
      expect(r.error.message).toContain('spec.storage.size');
      expect(r.error.toJSON().details.issues).toHaveLength(3);
    }
    expect(() => parseLanceClusterSpec({ image: 'BAD' })).toThrow(/spec\.image/);
  });
});

describe('LanceCluster object and status', () => {
  const obj = {
    apiVersion: 'lance.dev/v1alpha1',
    kind: 'LanceCluster',
    metadata: { name: 'demo', namespace: 'ns', uid: 'u-1', generation: 2, managedFields: [{ manager: 'kubectl' }] },
    spec: minimal,
  };

  it('parses a whole object and keeps unknown metadata', () => {
    const c = parseLanceCluster(obj);
    expect(c.metadata.name).toBe('demo');
    expect((c.metadata as Record<string, unknown>).managedFields).toEqual([{ manager: 'kubectl' }]);
    expect(c.spec.replicas).toBe(3);
  });

  it('names metadata and kind problems with their path', () => {
    expect(() => parseLanceCluster({ ...obj, metadata: { name: 'x'.repeat(53) } })).toThrow(/metadata\.name/);
    expect(() => parseLanceCluster({ ...obj, kind: 'Other' })).toThrow(/kind/);
    expect(() => parseLanceCluster({ ...obj, spec: { image: 'x', replicas: 4 } })).toThrow(/spec\.replicas/);
  });

  it('parses a status and rejects an unknown condition type with its index', () => {
    const st = parseLanceClusterStatus({
      phase: 'Running',
      replicas: 3,
      readyReplicas: 3,
      ready: readyText(3, 3),
      conditions: [{ type: 'Ready', status: 'True', reason: 'AllBrokersReady', lastTransitionTime: '2026-11-22T10:00:00Z', observedGeneration: 2 }],
      members: [{ ordinal: 0, pod: 'demo-0', nodeId: 1, role: 'Leader', term: 4, lag: 0 }],
      rollout: { podsPending: ['demo-1'] },
    });
    expect(st.ready).toBe('3/3');
    expect(st.conditions?.[0].message).toBe('');
    expect(st.members?.[0]).toMatchObject({ fenced: false, ready: false });
    expect(st.rollout).toEqual({ podsPending: ['demo-1'], order: [] });
    expect(() =>
      parseLanceClusterStatus({ conditions: [{ type: 'Bogus', status: 'True', reason: 'X', lastTransitionTime: '2026-11-22T10:00:00Z' }] }),
    ).toThrow(/status\.conditions\[0\]\.type/);
    expect(() => parseLanceClusterStatus({ phase: 'Sleeping' })).toThrow(/status\.phase/);
  });
});

describe('helpers', () => {
  it('converts durations to milliseconds', () => {
    expect(durationToMs('10s')).toBe(10_000);
    expect(durationToMs('1h30m')).toBe(5_400_000);
    expect(durationToMs('250ms')).toBe(250);
    expect(() => durationToMs('10')).toThrow(SpecError);
  });

  it('formats paths with indices and quoted odd keys', () => {
    expect(formatPath('spec', ['podTemplate', 'tolerations', 0, 'key'])).toBe('spec.podTemplate.tolerations[0].key');
    expect(formatPath('', ['metadata', 'name'])).toBe('metadata.name');
    expect(formatPath('spec', ['resources', 'limits', 'ephemeral-storage'])).toBe('spec.resources.limits["ephemeral-storage"]');
  });
});
