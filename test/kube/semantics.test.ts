import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from './cluster.ts';
import { parseCel, evalCel, CelError } from './cel.ts';
import { strategicMergePatch, jsonPatch, mergePatch } from './patch.ts';
import { parseLabelSelector, matchLabels } from './selectors.ts';
import { waitFor } from './testutil.ts';

describe('pure pieces', () => {
  it('CEL subset: comparisons, %, has(), size(), macros, transition rules; unsupported functions fail to parse', () => {
    const ev = (rule: string, self: unknown, oldSelf?: unknown) => evalCel(parseCel(rule), { self, oldSelf });
    expect(ev('self.replicas % 2 == 1', { replicas: 3 })).toBe(true);
    expect(ev('self.replicas % 2 == 1', { replicas: 4 })).toBe(false);
    expect(ev('self.size == oldSelf.size', { size: 'a' }, { size: 'b' })).toBe(false);
    expect(ev("!has(self.tls) || self.tls.secretName != ''", {})).toBe(true);
    expect(ev('self.items.all(x, x > 0) && size(self.items) == 2', { items: [1, 2] })).toBe(true);
    expect(ev("self.name.startsWith('lance-') ? self.n <= 5 : true", { name: 'lance-a', n: 7 })).toBe(false);
    expect(ev("'a' in self.m && self.l.exists(x, x == 'q')", { m: { a: 1 }, l: ['q'] })).toBe(true);
    expect(() => parseCel('self.quantity(1)')).toThrow(CelError);
    expect(() => parseCel('self.x ==')).toThrow(CelError);
    expect(() => ev('self.missing == 1', {})).toThrow(/no such key/);
  });

  it('strategic merge: keyed lists merge by name, $patch delete, $setElementOrder is honoured, null deletes', () => {
    const live = { spec: { containers: [{ name: 'a', image: 'x:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }, { name: 'b', image: 'y:1' }], tolerations: [{ key: 'k' }] }, metadata: { labels: { x: '1', y: '2' } } };
    const out = strategicMergePatch(live, {
      metadata: { labels: { y: null } },
      spec: {
        '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }],
        containers: [{ name: 'a', image: 'x:2', env: [{ name: 'B', $patch: 'delete' }, { name: 'C', value: '3' }] }],
        tolerations: [{ key: 'z' }],
      },
    }) as typeof live;
    expect(out.metadata.labels).toEqual({ x: '1' });
    expect(out.spec.containers.map((c) => c.name)).toEqual(['b', 'a']);
    expect(out.spec.containers[1]).toEqual({ name: 'a', image: 'x:2', env: [{ name: 'A', value: '1' }, { name: 'C', value: '3' }] });
    expect(out.spec.tolerations).toEqual([{ key: 'z' }]); // no merge key → atomic
  });

  it('JSON patch and merge patch', () => {
    expect(jsonPatch({ a: [1, 2], b: { c: 1 } }, [{ op: 'add', path: '/a/-', value: 3 }, { op: 'replace', path: '/b/c', value: 2 }, { op: 'remove', path: '/a/0' }, { op: 'test', path: '/a', value: [2, 3] }])).toEqual({ a: [2, 3], b: { c: 2 } });
    expect(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).toThrow(/test failed/);
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1] }, { a: { b: null }, l: [2] })).toEqual({ a: { c: 2 }, l: [2] });
  });

  it('label selectors', () => {
    const r = parseLabelSelector('app=web,tier in (a,b),!legacy,env!=prod,release');
    expect(matchLabels(r, { app: 'web', tier: 'a', env: 'dev', release: 'x' })).toBe(true);
    expect(matchLabels(r, { app: 'web', tier: 'c', release: 'x' })).toBe(false);
    expect(matchLabels(r, { app: 'web', tier: 'a', legacy: '1', release: 'x' })).toBe(false);
  });
});

describe('API semantics over HTTP', () => {
  let k: StandIn;
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(`${k.url}${path}`, { method, headers: { 'Content-Type': contentType }, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
    const text = await res.text();
    let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: res.status, body: json };
  };
  beforeAll(async () => { k = await startStandIn({ workloads: false }); });
  afterAll(async () => { await k?.stop(); });

  const sts = (name: string) => ({
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name },
    spec: { replicas: 1, serviceName: name, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'lance/test-http:1' }] } } },
  });

  it('generation moves on spec only; status and metadata writes do not; each endpoint ignores the other half', async () => {
    const base = '/apis/apps/v1/namespaces/default/statefulsets';
    const c = await call('POST', base, sts('gen'));
    expect(c.status).toBe(201);
    expect(c.body.metadata.generation).toBe(1);
    const rv1 = Number(c.body.metadata.resourceVersion);
    const lab = await call('PATCH', `${base}/gen`, { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json');
    expect(lab.body.metadata.generation).toBe(1);
    expect(Number(lab.body.metadata.resourceVersion)).toBeGreaterThan(rv1);
    const st = await call('PATCH', `${base}/gen/status`, { status: { replicas: 7 }, spec: { replicas: 9 } }, 'application/merge-patch+json');
    expect(st.body.status.replicas).toBe(7);
    expect(st.body.spec.replicas).toBe(1); // /status ignores spec
    expect(st.body.metadata.generation).toBe(1);
    const sp = await call('PATCH', `${base}/gen`, { spec: { replicas: 2 }, status: { replicas: 0 } }, 'application/merge-patch+json');
    expect(sp.body.metadata.generation).toBe(2);
    expect(sp.body.status.replicas).toBe(7); // main endpoint ignores status
    const same = await call('PATCH', `${base}/gen`, { spec: { replicas: 2 } }, 'application/merge-patch+json');
    expect(same.body.metadata.resourceVersion).toBe(sp.body.metadata.resourceVersion); // no-op write: no new version
    const stale = await call('PUT', `${base}/gen`, { ...sp.body, metadata: { ...sp.body.metadata, resourceVersion: String(rv1) } });
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
    const imm = await call('PATCH', `${base}/gen`, { spec: { serviceName: 'other' } }, 'application/merge-patch+json');
    expect(imm.status).toBe(422);
    expect(imm.body.details.causes[0].field).toBe('spec');
  });

  it('finalizers keep a deleted object (deletionTimestamp) until they are removed', async () => {
    const base = '/api/v1/namespaces/default/configmaps';
    await call('POST', base, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fin', finalizers: ['example.com/hold'] } });
    const d = await call('DELETE', `${base}/fin`);
    expect(d.status).toBe(202);
    const g = await call('GET', `${base}/fin`);
    expect(g.body.metadata.deletionTimestamp).toBeTruthy();
    await call('PATCH', `${base}/fin`, [{ op: 'remove', path: '/metadata/finalizers' }], 'application/json-patch+json');
    expect((await call('GET', `${base}/fin`)).status).toBe(404);
  });

  it('ownerReference GC: background deletes dependents, foreground waits for them, orphan keeps them', async () => {
    const base = '/api/v1/namespaces/default/configmaps';
    const mk = async (name: string, owner?: { name: string; uid: string }, block = false) => (await call('POST', base, {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...(owner ? { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: owner.name, uid: owner.uid, blockOwnerDeletion: block }] } : {}) },
    })).body;
    const o1 = await mk('owner-bg');
    await mk('dep-bg', { name: 'owner-bg', uid: o1.metadata.uid });
    await call('DELETE', `${base}/owner-bg`, { propagationPolicy: 'Background' });
    await waitFor('background GC', async () => (await call('GET', `${base}/dep-bg`)).status === 404);

    const o2 = await mk('owner-fg');
    await mk('dep-fg', { name: 'owner-fg', uid: o2.metadata.uid }, true);
    const del = await call('DELETE', `${base}/owner-fg`, { propagationPolicy: 'Foreground' });
    expect(del.body.metadata.finalizers).toContain('foregroundDeletion');
    await waitFor('foreground: dependent first, then owner', async () => (await call('GET', `${base}/dep-fg`)).status === 404 && (await call('GET', `${base}/owner-fg`)).status === 404);

    const o3 = await mk('owner-or');
    await mk('dep-or', { name: 'owner-or', uid: o3.metadata.uid });
    await call('DELETE', `${base}/owner-or`, { propagationPolicy: 'Orphan' });
    const dep = await call('GET', `${base}/dep-or`);
    expect(dep.status).toBe(200);
    expect(dep.body.metadata.ownerReferences).toBeUndefined();
  });

  it('Status codes: 405, 415 for strategic merge on a CR, 400 for an unsupported field selector, 404 for unknown paths', async () => {
    expect((await call('POST', '/api/v1/namespaces/default/configmaps/x')).status).toBe(405);
    expect((await call('GET', '/api/v1/namespaces/default/pods?fieldSelector=spec.bogus=1')).body).toMatchObject({ code: 400, reason: 'BadRequest' });
    expect((await call('GET', '/apis/nope.example/v1/things')).status).toBe(404);
    const crd = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'gadgets.example.com' },
      spec: { group: 'example.com', scope: 'Namespaced', names: { plural: 'gadgets', kind: 'Gadget' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }] },
    } as unknown as Record<string, unknown>);
    expect(crd.status).toBe(201);
    await call('POST', '/apis/example.com/v1/namespaces/default/gadgets', { apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g' }, spec: { a: 1 } });
    const smp = await call('PATCH', '/apis/example.com/v1/namespaces/default/gadgets/g', { spec: { a: 2 } }, 'application/strategic-merge-patch+json');
    expect(smp.status).toBe(415);
  });

  it('deleting a CRD deletes its CRs first (honouring their finalizers), then stops serving the kind', async () => {
    await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'things.example.com' },
      spec: { group: 'example.com', scope: 'Namespaced', names: { plural: 'things', kind: 'Thing' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }] },
    });
    const base = '/apis/example.com/v1/namespaces/default/things';
    expect((await call('POST', base, { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 't', finalizers: ['example.com/cleanup'] } })).status).toBe(201);
    expect((await call('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com')).status).toBe(202);
    await waitFor('CR marked for deletion', async () => (await call('GET', `${base}/t`)).body.metadata?.deletionTimestamp);
    expect((await call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com')).status).toBe(200);
    await call('PATCH', `${base}/t`, { metadata: { finalizers: null } }, 'application/merge-patch+json');
    await waitFor('CRD gone', async () => (await call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.example.com')).status === 404);
    expect((await call('GET', base)).status).toBe(404);
  });

  it('a CRD whose CEL rule uses unsupported CEL is rejected at creation, naming the rule', async () => {
    const r = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'bads.example.com' },
      spec: { group: 'example.com', scope: 'Namespaced', names: { plural: 'bads', kind: 'Bad' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-validations': [{ rule: 'quantity(self.q).isGreaterThan(quantity("1Gi"))' }] } } } } }] },
    });
    expect(r.status).toBe(422);
    expect(r.body.details.causes[0].field).toBe('spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule');
    expect(r.body.message).toContain('compilation failed');
  });

  it('a label-selector watch turns "stopped matching" into DELETED and "started matching" into ADDED', async () => {
    const base = '/api/v1/namespaces/default/configmaps';
    await call('POST', base, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sel', labels: { team: 'a' } } });
    const ctrl = new AbortController();
    const res = await fetch(`${k.url}${base}?watch=1&labelSelector=team%3Da`, { signal: ctrl.signal });
    const reader = res.body!.getReader();
    let text = '';
    const pump = (async () => { for (;;) { const { value, done } = await reader.read(); if (done) return; text += new TextDecoder().decode(value); } })().catch(() => undefined);
    await waitFor('initial ADDED', () => text.includes('"ADDED"'));
    await call('PATCH', `${base}/sel`, { metadata: { labels: { team: 'b' } } }, 'application/merge-patch+json');
    await waitFor('DELETED on label change', () => text.includes('"DELETED"'));
    await call('PATCH', `${base}/sel`, { metadata: { labels: { team: 'a' } } }, 'application/merge-patch+json');
    await waitFor('ADDED again', () => text.split('\n').filter((l) => l.includes('"ADDED"')).length === 2);
    ctrl.abort();
    await pump;
  });
});

describe('image table', () => {
  it('maps images and the lance CLIs to local argv, with command/args override rules', async () => {
    const { resolveImage, containerArgv, REPO_ROOT } = await import('./images.ts');
    const broker = resolveImage('registry.example/lance/broker:0.1.0')!;
    expect(containerArgv(broker, undefined, ['--config', '/etc/x'])).toEqual([process.execPath, `${REPO_ROOT}/bin/lance.js`, '--config', '/etc/x']);
    expect(containerArgv(broker, ['/usr/local/bin/lnc', 'restore'], ['--from', 's3://b'])).toEqual([process.execPath, `${REPO_ROOT}/bin/lnc.js`, 'restore', '--from', 's3://b']);
    expect(containerArgv(resolveImage('busybox:1.36')!, ['sh', '-c', 'exit 3'], undefined)).toEqual(['sh', '-c', 'exit 3']);
    expect(resolveImage('nginx:1.27')).toBeUndefined();
  });
});

describe('kubeTarget', () => {
  it('uses KUBECONFIG when set, a stand-in otherwise', async () => {
    const { kubeTarget } = await import('./target.ts');
    const real = await kubeTarget({}, { KUBECONFIG: '/some/real/config' });
    expect(real).toMatchObject({ kubeconfigPath: '/some/real/config', real: true });
    expect(real.standIn).toBeUndefined();
    const local = await kubeTarget({ workloads: false }, {});
    try {
      expect(local.real).toBe(false);
      const res = await fetch(`${local.standIn!.url}/version`);
      expect(((await res.json()) as { minor: string }).minor).toBe('32');
    } finally {
      await local.stop();
    }
  });
});
