import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { startStandIn, type StandIn } from './cluster.ts';
import { waitFor } from './testutil.ts';

describe('@kubernetes/client-node against the stand-in', () => {
  let k: StandIn;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  const informers: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    k = await startStandIn({ workloads: false, bookmarkIntervalMs: 200 });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(k.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
  });
  afterAll(async () => {
    for (const i of informers) await i.stop();
    await k?.stop();
  });

  const cm = (name: string, data: Record<string, string> = { v: '1' }, labels: Record<string, string> = { suite: 'informer' }): k8s.V1ConfigMap =>
    ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data });

  it('an informer (makeInformer) lists, then sees add / update / delete through the watch', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('pre-existing') });
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () => core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'suite=informer' }), 'suite=informer');
    informers.push(informer);
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add:${o.metadata?.name}`));
    informer.on('update', (o) => seen.push(`update:${o.metadata?.name}:${o.data?.v}`));
    informer.on('delete', (o) => seen.push(`delete:${o.metadata?.name}`));
    await informer.start();
    await waitFor('initial add', () => seen.includes('add:pre-existing'));
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('live') });
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('unlabelled', { v: '1' }, { other: 'x' }) });
    await waitFor('add of live', () => seen.includes('add:live'));
    await core.patchNamespacedConfigMap({ namespace: 'default', name: 'live', body: { data: { v: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await waitFor('update of live', () => seen.includes('update:live:2'));
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'live' });
    await waitFor('delete of live', () => seen.includes('delete:live'));
    expect(seen.some((s) => s.includes('unlabelled'))).toBe(false); // label selector honoured by list and watch
    expect(informer.list().map((o) => o.metadata?.name).sort()).toEqual(['pre-existing']);
  });

  it('recovers from 410 Gone: after history compaction the informer relists and keeps going', async () => {
    let lists = 0;
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () => { lists++; return core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'suite=gone' }); }, 'suite=gone');
    informers.push(informer);
    const names = new Set<string>();
    informer.on('add', (o) => names.add(o.metadata!.name!));
    informer.on('delete', (o) => names.delete(o.metadata!.name!));
    await informer.start();
    await waitFor('first list', () => lists >= 1);
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('g1', {}, { suite: 'gone' }) });
    await waitFor('g1 seen', () => names.has('g1'));
    // While the informer's watch is down, objects change and history is compacted past its resourceVersion.
    const listsBefore = lists;
    k.api.pauseWatches();
    const oldRv = Number((await core.readNamespacedConfigMap({ namespace: 'default', name: 'g1' })).metadata!.resourceVersion);
    await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'g1' });
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('g2', {}, { suite: 'gone' }) });
    k.store.compact();
    expect(k.store.oldestWatchableRV()).toBeGreaterThan(oldRv);
    expect(names.has('g2')).toBe(false); // the informer could not have seen it yet
    k.api.resumeWatches();
    await waitFor('relist after 410', () => lists > listsBefore);
    await waitFor('state converged after relist', () => names.has('g2') && !names.has('g1'));
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('g3', {}, { suite: 'gone' }) });
    await waitFor('watch resumed after relist', () => names.has('g3'));
  });

  it('a watch from a compacted resourceVersion gets an ERROR event with a 410 Expired Status', async () => {
    const rv = k.store.currentRV();
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('bump') });
    k.store.compact();
    const res = await fetch(`${k.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`);
    expect(res.status).toBe(200);
    const line = JSON.parse((await res.text()).trim().split('\n')[0]);
    expect(line.type).toBe('ERROR');
    expect(line.object).toMatchObject({ kind: 'Status', status: 'Failure', code: 410, reason: 'Expired' });
  });

  it('watch resumes from a resourceVersion and sends BOOKMARKs when asked', async () => {
    const rv = (await core.listNamespacedConfigMap({ namespace: 'default' })).metadata!.resourceVersion!;
    await core.createNamespacedConfigMap({ namespace: 'default', body: cm('after-rv') });
    const ctrl = new AbortController();
    const res = await fetch(`${k.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`, { signal: ctrl.signal });
    const reader = res.body!.getReader();
    let text = '';
    await waitFor('ADDED replay and a BOOKMARK', async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return text.includes('"BOOKMARK"') && text.includes('after-rv');
    });
    ctrl.abort();
    const events = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'after-rv' } } });
    expect(events.find((e) => e.type === 'BOOKMARK').object.metadata.resourceVersion).toMatch(/^\d+$/);
  });

  it('409 Conflict on a stale resourceVersion, with a real Status body', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: cm('occ') });
    const stale = structuredClone(created);
    await core.replaceNamespacedConfigMap({ namespace: 'default', name: 'occ', body: { ...created, data: { v: 'first' } } });
    let err: unknown;
    try { await core.replaceNamespacedConfigMap({ namespace: 'default', name: 'occ', body: { ...stale, data: { v: 'second' } } }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(k8s.ApiException);
    const ex = err as k8s.ApiException<string>;
    expect(ex.code).toBe(409);
    const body = typeof ex.body === 'string' ? JSON.parse(ex.body) : ex.body;
    expect(body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    expect(body.message).toContain('the object has been modified');
    expect((await core.readNamespacedConfigMap({ namespace: 'default', name: 'occ' })).data).toEqual({ v: 'first' });
  });

  it('NotFound, AlreadyExists and Invalid carry the right reason and code', async () => {
    const codes: [number, string][] = [];
    for (const f of [
      () => core.readNamespacedConfigMap({ namespace: 'default', name: 'nope' }),
      () => core.createNamespacedConfigMap({ namespace: 'default', body: cm('occ') }),
      () => core.createNamespace({ body: { metadata: { name: 'Not_Valid' } } }),
    ]) {
      try { await f(); codes.push([0, '']); } catch (e) {
        const ex = e as k8s.ApiException<string>;
        const body = typeof ex.body === 'string' ? JSON.parse(ex.body) : ex.body;
        codes.push([ex.code, body.reason]);
      }
    }
    expect(codes).toEqual([[404, 'NotFound'], [409, 'AlreadyExists'], [422, 'Invalid']]);
  });

  it('list with limit/continue pages through everything once', async () => {
    for (let i = 0; i < 7; i++) await core.createNamespacedConfigMap({ namespace: 'default', body: cm(`page-${i}`, {}, { suite: 'paging' }) });
    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const l = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'suite=paging', limit: 3, ...(cont ? { _continue: cont } : {}) });
      names.push(...l.items.map((i) => i.metadata!.name!));
      cont = l.metadata?._continue;
      pages++;
    } while (cont);
    expect(pages).toBe(3);
    expect(names).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `page-${i}`));
  });
});
