/**
 * The generated CRDs and the zod schemas must agree: every object the operator's zod schema rejects, the apiserver
 * (simulated by admit(): defaults, OpenAPI checks, CEL rules) rejects too, on the same field; and for valid objects
 * apiserver defaulting gives what zod's defaults give.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { lanceClusterCrd, lanceRestoreCrd } from './crd.ts';
import { admit, formatIssue } from './crd-validate.ts';
import { safeParseLanceCluster } from './lancecluster.ts';
import { safeParseLanceRestore } from './lancerestore.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const lcSchema = lanceClusterCrd().spec.versions[0].schema.openAPIV3Schema;
const lrsSchema = lanceRestoreCrd().spec.versions[0].schema.openAPIV3Schema;

type Obj = Record<string, unknown>;
const lc = (spec: Obj, name = 'demo'): Obj => ({ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', metadata: { name, namespace: 'ns' }, spec });
const lrs = (spec: Obj): Obj => ({ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'r', namespace: 'ns' }, spec });
const image = 'lance/broker:0.1.0';
const newTarget = { clusterName: 'restored', spec: { image } };
const source = { bucket: 'lance-dr' };

function zodPaths(obj: Obj): string[] {
  const r = obj.kind === 'LanceCluster' ? safeParseLanceCluster(obj) : safeParseLanceRestore(obj);
  return r.ok ? [] : r.error.issues.map((i) => i.path);
}

function crdPaths(obj: Obj, old?: Obj): string[] {
  return admit(obj.kind === 'LanceCluster' ? lcSchema : lrsSchema, obj, old).issues.map((i) => i.path);
}

describe('CRD admission agrees with zod', () => {
  it('admits the examples, and apiserver defaulting equals zod defaulting', async () => {
    for (const file of ['cluster.yaml', 'cluster-s3.yaml', 'restore.yaml', 'restore-pitr.yaml']) {
      const docs = parseAllDocuments(await readFile(join(root, 'examples', file), 'utf8')).map((d) => d.toJS() as Obj);
      for (const doc of docs.filter((d) => d.kind === 'LanceCluster' || d.kind === 'LanceRestore')) {
        const schema = doc.kind === 'LanceCluster' ? lcSchema : lrsSchema;
        const { object, issues } = admit(schema, doc);
        expect(issues.map(formatIssue), file).toEqual([]);
        const parsed = doc.kind === 'LanceCluster' ? safeParseLanceCluster(doc) : safeParseLanceRestore(doc);
        expect(parsed.ok, file).toBe(true);
        if (parsed.ok) expect((object as Obj).spec, file).toEqual(parsed.value.spec);
      }
    }
  });

  const rejected: Array<[string, Obj, string]> = [
    ['even replicas', lc({ image, replicas: 4 }), 'spec.replicas'],
    ['zero replicas', lc({ image, replicas: 0 }), 'spec.replicas'],
    ['bad storage quantity', lc({ image, storage: { size: '10GB' } }), 'spec.storage.size'],
    ['bad request quantity', lc({ image, resources: { requests: { cpu: 'lots' } } }), 'spec.resources.requests.cpu'],
    ['negative integer quantity', lc({ image, storage: { size: -1 } }), 'spec.storage.size'],
    ['bad image', lc({ image: 'Lance/Broker:latest' }), 'spec.image'],
    ['missing image', lc({}), 'spec.image'],
    ['s3 without bucket', lc({ image, objectStore: { backend: 's3' } }), 'spec.objectStore.bucket'],
    ['file without path', lc({ image, objectStore: { backend: 'file' } }), 'spec.objectStore.path'],
    ['non-http endpoint', lc({ image, objectStore: { bucket: 'bkt', endpoint: 'ftp://x' } }), 'spec.objectStore.endpoint'],
    ['bad duration', lc({ image, objectStore: { bucket: 'bkt', metadataUploadInterval: '10' } }), 'spec.objectStore.metadataUploadInterval'],
    ['admin port = kafka port', lc({ image, listeners: { adminPort: 9092 } }), 'spec.listeners.adminPort'],
    ['raft port = admin port', lc({ image, listeners: { raftPort: 1992 } }), 'spec.listeners.raftPort'],
    ['unknown imagePullPolicy', lc({ image, imagePullPolicy: 'Sometimes' }), 'spec.imagePullPolicy'],
    ['bad flush mode', lc({ image, config: { flush: { mode: 'never' } } }), 'spec.config.flush.mode'],
    ['too many resource entries', lc({ image, resources: { limits: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`r${i}`, 1])) } }), 'spec.resources.limits'],
    ['too many tolerations', lc({ image, podTemplate: { tolerations: Array.from({ length: 65 }, () => ({})) } }), 'spec.podTemplate.tolerations'],
    ['restore: source and clusterRef', lrs({ source, clusterRef: { name: 'prod' }, target: newTarget }), 'spec'],
    ['restore: neither source nor clusterRef', lrs({ target: newTarget }), 'spec'],
    ['restore: target with spec and existing', lrs({ source, target: { ...newTarget, existing: true } }), 'spec.target'],
    ['restore: target with neither', lrs({ source, target: { clusterName: 'x' } }), 'spec.target'],
    ['restore: bad pointInTime', lrs({ source, pointInTime: '22 Nov 2026', target: newTarget }), 'spec.pointInTime'],
    ['restore: bad topic', lrs({ source, topics: ['a b'], target: newTarget }), 'spec.topics[0]'],
    ['restore: even replicas in the new cluster', lrs({ source, target: { clusterName: 'x', spec: { image, replicas: 2 } } }), 'spec.target.spec.replicas'],
    ['restore: missing target', lrs({ source }), 'spec.target'],
  ];

  it.each(rejected)('%s: both reject, naming the same field', (_, obj, path) => {
    expect(zodPaths(obj)).toContain(path);
    expect(crdPaths(obj)).toContain(path);
  });

  it('rejects a name too long for the StatefulSet\'s pod labels', () => {
    const obj = lc({ image }, 'x'.repeat(53));
    expect(zodPaths(obj)).toContain('metadata.name');
    expect(admit(lcSchema, obj).issues.map((i) => i.message)).toContain('metadata.name must be at most 52 characters (pod and Service names are derived from it)');
    expect(crdPaths(lc({ image }, 'x'.repeat(52)))).toEqual([]);
  });

  it('rejects unknown fields, as kubectl\'s strict field validation does', () => {
    const obj = lc({ image, replica: 3 });
    expect(zodPaths(obj)).toEqual(['spec']);
    expect(crdPaths(obj)).toEqual(['spec.replica']);
    // Free-form Kubernetes objects keep their fields.
    expect(crdPaths(lc({ image, podTemplate: { affinity: { nodeAffinity: { x: 1 } } }, config: { additionalConfig: { 'a.b': 1 } } }))).toEqual([]);
  });

  it('storageClassName can be set once but not changed or removed', () => {
    const before = lc({ image, storage: { size: '1Gi', storageClassName: 'fast' } });
    expect(crdPaths(lc({ image, storage: { size: '2Gi', storageClassName: 'fast' } }), before)).toEqual([]);
    expect(crdPaths(lc({ image, storage: { size: '1Gi', storageClassName: 'slow' } }), before)).toEqual(['spec.storage.storageClassName']);
    expect(crdPaths(lc({ image, storage: { size: '1Gi' } }), before)).toEqual(['spec.storage.storageClassName']);
    expect(crdPaths(lc({ image, storage: { size: '1Gi', storageClassName: 'fast' } }), lc({ image }))).toEqual([]);
    // Scaling through the scale subresource still goes through the odd rule.
    expect(crdPaths(lc({ image, replicas: 4 }), lc({ image, replicas: 3 }))).toEqual(['spec.replicas']);
  });

  it('a restore\'s source, point in time, topics and target name are immutable', () => {
    const before = lrs({ source, pointInTime: '2026-11-22T09:00:00Z', topics: ['a'], target: newTarget });
    expect(crdPaths(before, before)).toEqual([]);
    expect(crdPaths(lrs({ source, pointInTime: '2026-11-22T10:00:00Z', topics: ['a'], target: newTarget }), before)).toEqual(['spec.pointInTime']);
    expect(crdPaths(lrs({ source: { bucket: 'other' }, pointInTime: '2026-11-22T09:00:00Z', topics: ['a'], target: newTarget }), before)).toEqual(['spec.source']);
    expect(crdPaths(lrs({ source, pointInTime: '2026-11-22T09:00:00Z', topics: ['a', 'b'], target: newTarget }), before)).toEqual(['spec.topics']);
    expect(crdPaths(lrs({ source, pointInTime: '2026-11-22T09:00:00Z', topics: ['a'], target: { ...newTarget, clusterName: 'y' } }), before)).toEqual(['spec.target.clusterName']);
  });

  it('formats issues like the apiserver', () => {
    const [issue] = admit(lcSchema, lc({ image, replicas: 4 })).issues;
    expect(formatIssue(issue)).toBe('spec.replicas: Invalid value: replicas must be odd');
  });
});
