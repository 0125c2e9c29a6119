/**
 * The generated CRDs must work in the test/kube API stand-in the e2e suites run against (it implements a CEL subset
 * and its own admission): every rule compiles there, the examples are admitted, and invalid objects are refused
 * naming the field. A change on either side that breaks `kubectl apply` in the e2e fails here first.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseCel } from '../../../test/kube/cel.ts';
import { crdToResourceType, validateCustomResource } from '../../../test/kube/schema.ts';
import type { KObject } from '../../../test/kube/types.ts';
import { lanceClusterCrd, lanceRestoreCrd, type JSONSchemaProps } from './crd.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function rules(node: JSONSchemaProps): string[] {
  return [
    ...(node['x-kubernetes-validations'] ?? []).map((r) => r.rule),
    ...Object.values(node.properties ?? {}).flatMap(rules),
    ...(node.items ? rules(node.items) : []),
    ...(node.additionalProperties ? rules(node.additionalProperties) : []),
  ];
}

const crds = { LanceCluster: lanceClusterCrd(), LanceRestore: lanceRestoreCrd() };
const types = Object.fromEntries(Object.entries(crds).map(([k, crd]) => [k, crdToResourceType(JSON.parse(JSON.stringify(crd)) as KObject)]));

function admitInStandin(obj: Record<string, unknown>, old?: Record<string, unknown>): string {
  try {
    validateCustomResource(types[obj.kind as string], structuredClone(obj) as KObject, old ? (structuredClone(old) as KObject) : undefined);
    return 'ok';
  } catch (e) {
    return (e as Error).message;
  }
}

const lc = (spec: Record<string, unknown>) => ({ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', metadata: { name: 'demo', namespace: 'ns' }, spec });

describe('test/kube stand-in compatibility', () => {
  it('every CEL rule of the CRDs compiles in the stand-in\'s CEL subset', () => {
    const all = Object.values(crds).flatMap((crd) => rules(crd.spec.versions[0].schema.openAPIV3Schema));
    expect(all.length).toBeGreaterThan(10);
    for (const rule of all) expect(() => parseCel(rule), rule).not.toThrow();
  });

  it('admits the examples', async () => {
    for (const file of ['cluster.yaml', 'cluster-s3.yaml', 'restore.yaml', 'restore-pitr.yaml']) {
      const docs = parseAllDocuments(await readFile(join(root, 'examples', file), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
      for (const doc of docs.filter((d) => d.kind === 'LanceCluster' || d.kind === 'LanceRestore')) expect(admitInStandin(doc), file).toBe('ok');
    }
  });

  it('refuses invalid objects naming the field', () => {
    expect(admitInStandin(lc({ image: 'lance/broker:0.1.0', replicas: 4 }))).toMatch(/spec\.replicas: .*replicas must be odd/);
    expect(admitInStandin(lc({ image: 'lance/broker:0.1.0', storage: { size: '10GB' } }))).toMatch(/spec\.storage\.size/);
    expect(admitInStandin(lc({ image: 'lance/broker:0.1.0', storage: { size: -3 } }))).toMatch(/spec\.storage\.size: .*must not be negative/);
    expect(admitInStandin(lc({ image: 'Bad Image' }))).toMatch(/spec\.image/);
    expect(admitInStandin(lc({ image: 'lance/broker:0.1.0', storage: { size: '1Gi', storageClassName: 'b' } }), lc({ image: 'lance/broker:0.1.0', storage: { size: '1Gi', storageClassName: 'a' } }))).toMatch(/storageClassName is immutable/);
  });
});
