/** The kube plumbing against the test/kube API stand-in (a real HTTP server with watch/410/bookmark semantics). */
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../../../test/kube/cluster.ts';
import { waitFor } from '../../../test/kube/testutil.ts';
import { createOrUpdate, EventRecorder, isSubset, overlay, writeStatus } from './apply.ts';
import { Informer } from './informer.ts';
import { KINDS } from './kinds.ts';
import { LeaderElector, leaseDecision, type Lease } from './leader.ts';
import { isConflict, KubeRest, type KubeObject } from './rest.ts';

interface CM extends KubeObject { data?: Record<string, string> }

describe('kube plumbing against the stand-in', () => {
  let k: StandIn;
  let rest: KubeRest;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    k = await startStandIn({ workloads: false, bookmarkIntervalMs: 100 });
    const kc = new KubeConfig();
    kc.loadFromFile(k.kubeconfigPath);
    rest = new KubeRest(kc);
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await k?.stop();
  });

  const cm = (name: string, data: Record<string, string>, labels: Record<string, string> = { suite: 'inf' }): CM => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', labels }, data });

  it('informer: lists, watches add/update/delete, filters by label, relists after 410', async () => {
    const inf = new Informer<CM>(rest, KINDS.ConfigMap, { namespace: 'default', labelSelector: 'suite=inf', resyncMs: 60_000 });
    const seen: string[] = [];
    inf.on((e, o) => seen.push(`${e}:${o.metadata?.name}:${o.data?.v ?? ''}`));
    await rest.create(KINDS.ConfigMap, 'default', cm('a', { v: '1' }));
    inf.start();
    cleanups.push(() => inf.stop());
    await inf.waitForSync();
    expect(seen).toContain('add:a:1');
    await rest.create(KINDS.ConfigMap, 'default', cm('b', { v: '1' }));
    await rest.create(KINDS.ConfigMap, 'default', cm('other', { v: '1' }, { suite: 'x' }));
    await rest.mergePatch(KINDS.ConfigMap, 'default', 'a', { data: { v: '2' } });
    await rest.delete(KINDS.ConfigMap, 'default', 'b');
    await waitFor('events', () => seen.includes('update:a:2') && seen.includes('delete:b:1'));
    expect(seen.some((s) => s.includes('other'))).toBe(false);
    // Watch outage + compaction → the resumed watch gets 410 → relist converges the cache.
    const relists = inf.relists;
    k.api.pauseWatches();
    await rest.create(KINDS.ConfigMap, 'default', cm('c', { v: '1' }));
    await rest.delete(KINDS.ConfigMap, 'default', 'a');
    k.store.compact();
    k.api.resumeWatches();
    await waitFor('relisted', () => inf.relists > relists && inf.get('default', 'c') !== undefined && inf.get('default', 'a') === undefined);
  });

  it('informer: a watch that goes silent (no events, no bookmarks) is detected as stalled and restarted', async () => {
    const inf = new Informer<CM>(rest, KINDS.ConfigMap, { namespace: 'default', labelSelector: 'suite=stall', resyncMs: 100, stallFactor: 5 });
    const names = new Set<string>();
    inf.on((e, o) => (e === 'delete' ? names.delete(o.metadata!.name!) : names.add(o.metadata!.name!)));
    inf.start();
    cleanups.push(() => inf.stop());
    await inf.waitForSync();
    k.api.pauseWatches(); // connections stay open but nothing flows: a silent stall
    await waitFor('stall detected', () => inf.stalls > 0);
    k.api.resumeWatches();
    await rest.create(KINDS.ConfigMap, 'default', cm('after-stall', { v: '1' }, { suite: 'stall' }));
    await waitFor('watch works after restart', () => names.has('after-stall'));
  });

  it('informer: resync re-delivers cached objects', async () => {
    await rest.create(KINDS.ConfigMap, 'default', cm('r', { v: '1' }, { suite: 'resync' }));
    const inf = new Informer<CM>(rest, KINDS.ConfigMap, { namespace: 'default', labelSelector: 'suite=resync', resyncMs: 100, stallFactor: 1000 });
    let resyncs = 0;
    inf.on((e) => { if (e === 'resync') resyncs++; });
    inf.start();
    cleanups.push(() => inf.stop());
    await waitFor('two resyncs', () => resyncs >= 2);
  });

  it('createOrUpdate: creates, leaves an equal object alone, updates a drifted one, 409 on a stale write', async () => {
    const want = cm('applied', { v: '1' }, { app: 'x' });
    const r1 = await createOrUpdate(rest, KINDS.ConfigMap, want);
    expect(r1.action).toBe('created');
    const r2 = await createOrUpdate(rest, KINDS.ConfigMap, want);
    expect(r2.action).toBe('unchanged');
    expect(r2.object.metadata?.resourceVersion).toBe(r1.object.metadata?.resourceVersion);
    await rest.mergePatch(KINDS.ConfigMap, 'default', 'applied', { data: { v: 'drift' }, metadata: { labels: { extra: 'kept' } } });
    const r3 = await createOrUpdate(rest, KINDS.ConfigMap, want);
    expect(r3.action).toBe('updated');
    expect(r3.object.data).toEqual({ v: '1' });
    expect(r3.object.metadata?.labels).toEqual({ app: 'x', extra: 'kept' });
    let err: unknown;
    try { await rest.replace(KINDS.ConfigMap, 'default', 'applied', { ...r1.object, data: { v: 'stale' } }); } catch (e) { err = e; }
    expect(isConflict(err)).toBe(true);
  });

  it('isSubset/overlay: defaults the server adds do not count as drift; desired wins on overlay', () => {
    expect(isSubset({ a: { b: 1 }, l: [{ x: 1 }] }, { a: { b: 1, c: 2 }, l: [{ x: 1, y: 2 }], z: 1 })).toBe(true);
    expect(isSubset({ l: [{ x: 1 }] }, { l: [{ x: 1 }, { x: 2 }] })).toBe(false);
    expect(isSubset({ a: '1' }, { a: '2' })).toBe(false);
    expect(overlay({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: 3 }, l: [9] })).toEqual({ a: { b: 3, c: 2 }, l: [9] });
  });

  it('writeStatus is guarded by resourceVersion; events aggregate repeats into count', async () => {
    const created = await rest.create<CM>(KINDS.ConfigMap, 'default', cm('ev-target', { v: '1' }));
    const rec = new EventRecorder(rest);
    const involved = { kind: 'ConfigMap', name: 'ev-target', namespace: 'default', uid: created.metadata!.uid! };
    await rec.record({ involved, type: 'Normal', reason: 'Tested', message: 'hello' });
    await rec.record({ involved, type: 'Normal', reason: 'Tested', message: 'hello' });
    await rec.record({ involved, type: 'Warning', reason: 'Other', message: 'bad' });
    const evs = await rest.list<KubeObject & { reason?: string; count?: number; type?: string; involvedObject?: { name?: string } }>(KINDS.Event, 'default', { fieldSelector: 'involvedObject.name=ev-target' });
    const byReason = Object.fromEntries(evs.items.map((e) => [e.reason, e]));
    expect(byReason.Tested).toMatchObject({ count: 2, type: 'Normal' });
    expect(byReason.Other).toMatchObject({ count: 1, type: 'Warning' });
    // ConfigMaps have no /status; the guard itself is exercised on LanceCluster in the controller e2e.
    await expect(writeStatus(rest, KINDS.ConfigMap, { ...created, metadata: { ...created.metadata, resourceVersion: '1' } }, {})).rejects.toThrow();
  });

  it('leaseDecision: free → acquire, own → renew, other until expiry as observed locally', () => {
    expect(leaseDecision(undefined, 'a', 0, 0, 1000)).toBe('acquire');
    expect(leaseDecision({ holderIdentity: '' }, 'a', 0, 0, 1000)).toBe('acquire');
    expect(leaseDecision({ holderIdentity: 'a' }, 'a', 0, 0, 1000)).toBe('renew');
    expect(leaseDecision({ holderIdentity: 'b' }, 'a', 0, 999, 1000)).toBe('held-by-other');
    expect(leaseDecision({ holderIdentity: 'b' }, 'a', 0, 1001, 1000)).toBe('acquire');
  });

  it('leader election: a leader whose Lease was taken over steps down (stops leading)', async () => {
    let leading = false;
    let stopped = 0;
    const e = new LeaderElector(rest, {
      namespace: 'default', name: 'stolen-lease', identity: 'me', leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100,
      onStartedLeading: () => { leading = true; }, onStoppedLeading: () => { leading = false; stopped++; },
    });
    e.start();
    await waitFor('leading', () => leading);
    const lease = await rest.get<Lease>(KINDS.Lease, 'default', 'stolen-lease');
    await rest.replace(KINDS.Lease, 'default', 'stolen-lease', { ...lease, spec: { ...lease.spec, holderIdentity: 'usurper', renewTime: lease.spec?.renewTime } });
    await waitFor('stepped down', () => !leading && stopped === 1);
    expect(e.isLeader()).toBe(false);
    await e.stop();
  });

  it('leader election: two candidates → one leader; the leader dies → the other takes over after expiry; release hands over', async () => {
    const state = { a: false, b: false, c: false };
    const mk = (id: 'a' | 'b' | 'c'): LeaderElector => new LeaderElector(rest, {
      namespace: 'default', name: 'op-lease', identity: id, leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 200,
      onStartedLeading: () => { state[id] = true; }, onStoppedLeading: () => { state[id] = false; },
    });
    const a = mk('a');
    const b = mk('b');
    a.start();
    b.start();
    await waitFor('one leader', () => state.a || state.b);
    // Several renew rounds later there is still exactly one.
    const lease0 = await rest.get<Lease>(KINDS.Lease, 'default', 'op-lease');
    await waitFor('renewed', async () => (await rest.get<Lease>(KINDS.Lease, 'default', 'op-lease')).spec?.renewTime !== lease0.spec?.renewTime);
    expect(state.a && state.b).toBe(false);
    const [leader, follower, fid] = state.a ? [a, b, 'b' as const] : [b, a, 'a' as const];
    // Simulate a crashed leader: it stops renewing without releasing (no stop(): kill its timer by stopping campaign silently).
    (leader as unknown as { stopped: boolean }).stopped = true;
    await waitFor('follower takes over after expiry', () => state[fid], 30_000);
    const lease = await rest.get<Lease>(KINDS.Lease, 'default', 'op-lease');
    expect(lease.spec?.holderIdentity).toBe(fid);
    expect(lease.spec?.leaseTransitions).toBeGreaterThanOrEqual(1);
    // A graceful stop releases the lease: a third candidate gets it without waiting out the duration.
    const c = mk('c');
    c.start();
    await follower.stop();
    expect(state[fid]).toBe(false);
    await waitFor('c leads after release', () => state.c, 30_000);
    await c.stop();
    await leader.stop();
  });
});
