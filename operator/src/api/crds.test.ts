import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { z } from 'zod';
import {
  generatedCrdFiles,
  lanceClusterCrd,
  lanceRestoreCrd,
  structuralProblems,
  toStructural,
  type JSONSchemaProps,
} from './crd.ts';
import { quantity } from './common.ts';
import { safeParseLanceCluster } from './lancecluster.ts';
import { safeParseLanceRestore } from './lancerestore.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Walks the schema along property names (`[]` steps into items). */
function at(schema: JSONSchemaProps, path: string): JSONSchemaProps {
  let node = schema;
  for (const step of path.split('.')) {
    const next = step === '[]' ? node.items : node.properties?.[step];
    if (!next) throw new Error(`no ${step} in schema at ${path}`);
    node = next;
  }
  return node;
}

describe('generated CRDs', () => {
  it('are committed and up to date (run `npm run gen:crds` if this fails)', async () => {
    for (const f of generatedCrdFiles()) {
      const committed = await readFile(join(root, f.path), 'utf8').catch(() => '<missing>');
      expect(committed, `${f.path} is stale: run npm run gen:crds`).toBe(f.content);
    }
  });

  it('npm run gen:crds -- --check agrees (the script CI can run)', async () => {
    const code = await new Promise<number>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(root, 'scripts/gen-crds.ts'), '--check'], { cwd: root }, (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0));
    });
    expect(code).toBe(0);
  });

  it('are structural', () => {
    for (const crd of [lanceClusterCrd(), lanceRestoreCrd()]) {
      expect(structuralProblems(crd.spec.versions[0].schema.openAPIV3Schema), crd.metadata.name).toEqual([]);
    }
  });

  it('the structural check catches what the apiserver would reject', () => {
    const bad: JSONSchemaProps = {
      type: 'object',
      properties: {
        untyped: {},
        both: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } },
        look: { type: 'string', pattern: '^(?!x)' },
        list: { type: 'array' },
        union: { anyOf: [{ type: 'string' }, { type: 'boolean' }] },
        ref: { $ref: '#/x' } as unknown as JSONSchemaProps,
        qty: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] },
        keyed: { type: 'array', items: { type: 'object', properties: { k: { type: 'string' } } }, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'] },
      },
    };
    const problems = structuralProblems(bad).join('\n');
    expect(problems).toContain('.untyped: has no type');
    expect(problems).toContain('.both: properties and additionalProperties are mutually exclusive');
    expect(problems).toContain('.look: pattern uses lookaround');
    expect(problems).toContain('.list: array without items');
    expect(problems).toContain('.union: anyOf is only generated for int-or-string');
    expect(problems).toContain('.ref: keyword "$ref" is not allowed');
    expect(problems).toContain('.keyed: list-map key "k" must be a required property');
    expect(problems).toContain('.qty: int-or-string must be exactly anyOf');
  });

  it('refuses to generate unions that are not int-or-string', () => {
    expect(() => toStructural(z.object({ a: z.union([z.string(), z.boolean()]) }))).toThrow(/\.a: unions are not structural/);
  });

  it('has names, categories, subresources and printer columns', () => {
    const lc = lanceClusterCrd();
    expect(lc.metadata.name).toBe('lanceclusters.lance.dev');
    expect(lc.spec.names).toMatchObject({ kind: 'LanceCluster', plural: 'lanceclusters', shortNames: ['lc'], categories: ['lance'] });
    const v = lc.spec.versions[0];
    expect(v.name).toBe('v1alpha1');
    expect(v.subresources.status).toEqual({});
    expect(v.subresources.scale).toEqual({ specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' });
    expect(v.additionalPrinterColumns.map((c) => [c.name, c.jsonPath])).toEqual([
      ['Phase', '.status.phase'],
      ['Ready', '.status.ready'],
      ['Leader', '.status.leader'],
      ['Term', '.status.controllerTerm'],
      ['Image', '.spec.image'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
    const lrs = lanceRestoreCrd();
    expect(lrs.spec.names).toMatchObject({ kind: 'LanceRestore', plural: 'lancerestores', shortNames: ['lrs'], categories: ['lance'] });
    expect(lrs.spec.versions[0].subresources).toEqual({ status: {} });
    expect(lrs.spec.versions[0].additionalPrinterColumns.map((c) => c.name)).toEqual(['Phase', 'Target', 'Restore-Point', 'Age']);
  });

  it('carries the CEL rules, defaults and int-or-string quantities', () => {
    const s = lanceClusterCrd().spec.versions[0].schema.openAPIV3Schema;
    const replicas = at(s, 'spec.replicas');
    expect(replicas).toMatchObject({ type: 'integer', minimum: 1, default: 3 });
    expect(replicas['x-kubernetes-validations']).toEqual([expect.objectContaining({ rule: 'self % 2 == 1' })]);
    const storage = at(s, 'spec.storage');
    expect(storage['x-kubernetes-validations']?.[0].rule).toContain('oldSelf.storageClassName');
    expect(at(s, 'spec.storage.size')).toMatchObject({
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      default: '10Gi',
    });
    expect(at(s, 'spec.storage.size').type).toBeUndefined();
    expect(at(s, 'spec.podTemplate.affinity')).toEqual(expect.objectContaining({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true }));
    expect(at(s, 'spec.podTemplate.tolerations.[]')['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(at(s, 'spec.config.additionalConfig').additionalProperties).toBeUndefined();
    expect(at(s, 'status.conditions')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
    expect(at(s, 'status.conditions.[].lastTransitionTime')).toEqual({ type: 'string', format: 'date-time' });
    expect(s.required).toEqual(['spec']);
    expect(s['x-kubernetes-validations']?.[0].rule).toBe('size(self.metadata.name) <= 52');

    const r = lanceRestoreCrd().spec.versions[0].schema.openAPIV3Schema;
    expect(at(r, 'spec')['x-kubernetes-validations']?.[0].rule).toBe('has(self.source) != has(self.clusterRef)');
    expect(at(r, 'spec.target')['x-kubernetes-validations']?.[0].rule).toBe('has(self.spec) != (has(self.existing) && self.existing)');
    expect(at(r, 'spec.target.spec.replicas')['x-kubernetes-validations']?.[0].rule).toBe('self % 2 == 1');
    expect(at(r, 'spec.pointInTime')['x-kubernetes-validations']?.[0].rule).toBe('self == oldSelf');
  });

  it('patterns in the CRD agree with zod on quantities', () => {
    const s = lanceClusterCrd().spec.versions[0].schema.openAPIV3Schema;
    const re = new RegExp(at(s, 'spec.storage.size').pattern ?? '');
    for (const q of ['10Gi', '500m', '1', '1.5', '2e6', '10GB', 'Gi', '-1', '1 Gi']) {
      expect(re.test(q), q).toBe(quantity.safeParse(q).success);
    }
  });

  it('the YAML files parse back to the same objects', async () => {
    const lc = parse(await readFile(join(root, 'crds/lanceclusters.yaml'), 'utf8'));
    expect(lc).toEqual(JSON.parse(JSON.stringify(lanceClusterCrd())));
  });
});

describe('examples/', () => {
  const files = ['cluster.yaml', 'cluster-s3.yaml', 'restore.yaml', 'restore-pitr.yaml'];
  it.each(files)('%s validates against the schemas', async (file) => {
    const docs = parseAllDocuments(await readFile(join(root, 'examples', file), 'utf8')).map((d) => d.toJS() as { kind?: string });
    const lance = docs.filter((d) => d.kind === 'LanceCluster' || d.kind === 'LanceRestore');
    expect(lance.length).toBeGreaterThan(0);
    for (const doc of lance) {
      const r = doc.kind === 'LanceCluster' ? safeParseLanceCluster(doc) : safeParseLanceRestore(doc);
      expect(r.ok ? 'ok' : r.error.message).toBe('ok');
    }
  });
});
