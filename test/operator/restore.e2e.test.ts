/**
 * e2e: the LanceRestore controller (operator in-process) against the test/kube stand-in, whose Jobs and pods are
 * real `lnc restore` and broker processes, with an s3rver bucket. Driven by real kubectl.
 *   - a restore from an empty bucket fails: terminal Failed condition naming the Job, its reason and lnc's own error;
 *     its PVCs are removed again and no cluster is created;
 *   - a non-empty existing target and a target.spec name that already exists are refused (TargetNotEmpty) and
 *     nothing is created.
 * The DR drill itself (produce → restore point → delete cluster + PVCs → restore → data back; PITR) is in
 * restore-drill.e2e.*.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../broker/src/admin/client.ts';
import { kubectl, waitFor } from '../kube/testutil.ts';
import { clusterDoc, cond, listRestorePoints, source, startRestoreEnv, type RestoreEnv } from './restore-harness.ts';

const BUCKET = 'lance-dr';
const EMPTY = 'lance-empty';

describe('LanceRestore e2e: failures and refusals', () => {
  let e: RestoreEnv;

  beforeAll(async () => {
    e = await startRestoreEnv({ buckets: [BUCKET, EMPTY] });
  }, 180_000);

  afterAll(async () => {
    await e?.stop();
  }, 120_000);

  it('a restore from an empty bucket fails with a clear condition; its PVCs are removed and no cluster is created', async () => {
    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'from-empty' },
      spec: { source: source(e.s3, EMPTY, 'clusters/nothing'), target: { clusterName: 'nothing-restored', spec: { replicas: 1, image: 'lance/broker:dev', storage: { size: '1Gi' } } } },
    });
    // Restoring first: the PVC exists before the Job that writes into it.
    await waitFor('restore Job created', async () => (await e.getJson<{ items: unknown[] }>(['jobs', '-l', 'lance.dev/restore=from-empty'])).items.length === 1, 60_000, 250);
    const failed = await waitFor('phase Failed', async () => {
      const st = await e.restoreStatus('from-empty');
      return st?.phase === 'Failed' ? st : undefined;
    }, 180_000, 500);
    const c = cond(failed, 'Failed');
    expect(c, JSON.stringify(failed)).toMatchObject({ status: 'True', reason: 'JobFailed' });
    // The Job's own reason, and what lnc said (the container's output), both in the condition.
    expect(c!.message).toContain('restore Job from-empty-restore-0 failed (BackoffLimitExceeded');
    expect(c!.message).toContain('lnc: NOT_FOUND: no restore point in s3://lance-empty/clusters/nothing');
    expect(cond(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'JobFailed' });
    expect(failed!.jobNames).toEqual(['from-empty-restore-0']);
    expect(failed!.startTime).toBeDefined();
    expect(failed!.completionTime).toBeDefined();
    const ev = await e.events('from-empty');
    expect(ev.some((x) => x.reason === 'CreatedPvcs' && x.message.includes('data-nothing-restored-0'))).toBe(true);
    expect(ev.some((x) => x.reason === 'CreatedJobs')).toBe(true);
    expect(ev.some((x) => x.type === 'Warning' && x.reason === 'RestoreFailed')).toBe(true);
    // Nothing half-restored is left behind, and the failure is terminal (nothing restarted later).
    await waitFor('partial PVC removed', async () => (await e.getJson<{ items: unknown[] }>(['pvc', '-l', 'lance.dev/restore=from-empty'])).items.length === 0, 60_000, 250);
    expect((await e.getJson<{ items: unknown[] }>(['lc'])).items).toHaveLength(0);
    const table = await e.getJson<{ items: unknown[] }>(['jobs', '-l', 'lance.dev/restore=from-empty']);
    expect(table.items).toHaveLength(1);
  }, 300_000);

  it('a non-empty existing target and an existing target.spec name are refused (TargetNotEmpty); nothing is created', async () => {
    await e.apply(clusterDoc('src', e.s3, BUCKET, 'clusters/src'));
    await waitFor('src Running', async () => (await e.getJson<{ status?: { phase?: string } }>(['lc', 'src'])).status?.phase === 'Running', 180_000, 500);
    const ip = [...(await e.podIps('src')).values()][0]!;
    await new AdminClient(`http://${ip}:1992`).createTopic({ name: 'orders', partitions: 1 });

    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'into-src' },
      spec: { source: source(e.s3, BUCKET, 'clusters/src'), target: { clusterName: 'src', existing: true } },
    });
    const refused = await waitFor('TargetNotEmpty', async () => {
      const st = await e.restoreStatus('into-src');
      return cond(st, 'TargetNotEmpty')?.status === 'True' ? st : undefined;
    }, 120_000, 250);
    expect(refused!.phase).toBe('Pending');
    expect(cond(refused, 'TargetNotEmpty')).toMatchObject({ reason: 'TargetHasTopics', message: expect.stringContaining('orders') });
    expect((await e.events('into-src')).some((x) => x.type === 'Warning' && x.reason === 'TargetHasTopics')).toBe(true);

    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'over-src' },
      spec: { source: source(e.s3, BUCKET, 'clusters/src'), target: { clusterName: 'src', spec: { replicas: 1, image: 'lance/broker:dev' } } },
    });
    const clash = await waitFor('TargetExists', async () => {
      const st = await e.restoreStatus('over-src');
      return cond(st, 'TargetNotEmpty')?.status === 'True' ? st : undefined;
    }, 120_000, 250);
    expect(cond(clash, 'TargetNotEmpty')).toMatchObject({ reason: 'TargetExists', message: expect.stringContaining('LanceCluster src already exists') });

    // Refused means untouched: no Job, the source cluster still runs (not paused), its data still there.
    for (const r of ['into-src', 'over-src']) expect((await e.getJson<{ items: unknown[] }>(['jobs', '-l', `lance.dev/restore=${r}`])).items).toHaveLength(0);
    const src = await e.getJson<{ metadata: { annotations?: Record<string, string> }; status?: { phase?: string } }>(['lc', 'src']);
    expect(src.metadata.annotations?.['lance.dev/reconcile']).toBeUndefined();
    expect(src.metadata.annotations?.['lance.dev/restored-by']).toBeUndefined();
    expect((await new AdminClient(`http://${ip}:1992`).listTopics()).map((t) => t.name)).toContain('orders');
    const table = await kubectl(e.env, ['get', 'lrs']);
    expect(table.stdout).toMatch(/into-src\s+Pending/);
  }, 300_000);

  it('clusterRef: a missing cluster keeps the restore Pending (SourceNotFound); a live one lends its object store', async () => {
    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'from-ghost' },
      spec: { clusterRef: { name: 'ghost' }, target: { clusterName: 'ghost-copy', spec: { replicas: 1, image: 'lance/broker:dev' } } },
    });
    const pending = await waitFor('SourceNotFound', async () => {
      const st = await e.restoreStatus('from-ghost');
      return cond(st, 'Progressing')?.reason === 'SourceNotFound' ? st : undefined;
    }, 120_000, 250);
    expect(pending!.phase).toBe('Pending');
    expect(cond(pending, 'Progressing')!.message).toContain('spec.clusterRef.name: LanceCluster "ghost" was not found');
    expect((await e.getJson<{ items: unknown[] }>(['jobs', '-l', 'lance.dev/restore=from-ghost'])).items).toHaveLength(0);

    // src (from the test above) uploads restore points to its bucket prefix; one with its topic must exist first.
    await waitFor('a restore point of src with its topic', async () => (await listRestorePoints(e.s3, BUCKET, 'clusters/src')).some((r) => !r.error && r.topics.includes('orders')), 120_000, 2_000);
    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'copy-of-src' },
      spec: { clusterRef: { name: 'src' }, topics: ['orders'], target: { clusterName: 'src-copy', spec: { replicas: 1, image: 'lance/broker:dev', storage: { size: '1Gi' } } } },
    });
    const st = await waitFor('copy-of-src finished', async () => {
      const s = await e.restoreStatus('copy-of-src');
      return s?.phase === 'Succeeded' || s?.phase === 'Failed' ? s : undefined;
    }, 300_000, 1_000);
    expect(st!.phase, JSON.stringify(st!.conditions)).toBe('Succeeded');
    const job = await e.getJson<{ spec: { template: { spec: { containers: { command: string[] }[] } } } }>(['job', 'copy-of-src-restore-0']);
    const cmd = job.spec.template.spec.containers[0]!.command;
    expect(cmd.slice(0, 3)).toEqual(['lnc', 'restore', '--from']);
    expect(cmd[3]).toContain('s3://lance-dr/clusters/src?endpoint=');
    expect(cmd).toEqual(expect.arrayContaining(['--topics', 'orders', '--cluster-id', 'default.src-copy', '--node-id', '0']));
    const ip = [...(await e.podIps('src-copy')).values()][0]!;
    expect((await new AdminClient(`http://${ip}:1992`).listTopics()).map((t) => t.name)).toEqual(['orders']);
  }, 400_000);
});
