/**
 * DR drill e2e (issue 9 acceptance): a LanceCluster with an s3rver bucket → produce + commit group offsets → wait
 * for a restore point that holds them → delete the cluster and its PVCs → `kubectl apply` a LanceRestore → a new
 * cluster is Ready with the topics, every record and the group offsets back. Point-in-time variant: a restore at a
 * time between two produce waves brings back exactly the first wave (and the offsets committed then).
 *
 * Real processes throughout: the operator (in-process), broker pods and `lnc restore` Job pods of the test/kube
 * stand-in, s3rver, kafkajs, real kubectl. One broker per cluster (standalone: metadata DR and restore points of a
 * multi-node cluster are the broker's cluster-mode work).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../broker/src/admin/client.ts';
import { kubectl, waitFor } from '../kube/testutil.ts';
import { clusterDoc, cond, listRestorePoints, source, startRestoreEnv, type LrsStatus, type RestoreEnv, type RestorePointRow } from './restore-harness.ts';

const BUCKET = 'lance-dr';
const PREFIX = 'clusters/prod';
const TOPIC = 'orders';
const GROUP = 'billing';
const WAVE1 = 20; // records per partition
const WAVE2 = 15;


describe('LanceRestore DR drill', () => {
  let e: RestoreEnv;
  let pointInTime = '';
  let wave1Offsets: number[] = [];
  let finalOffsets: number[] = [];

  const restorePoints = (): Promise<RestorePointRow[]> => listRestorePoints(e.s3, BUCKET, PREFIX);
  /** A restore point taken after `afterMs` that has the topic, the group, and every record uploaded. */
  const waitForRestorePoint = (afterMs: number, what: string): Promise<RestorePointRow> => waitFor(what, async () => {
    const rows = await restorePoints();
    return rows.find((r) => Date.parse(r.time) > afterMs && !r.error && r.topics.includes(TOPIC) && (r.groups ?? 0) >= 1 && r.unuploadedRecords === 0);
  }, 240_000, 2_000); // every poll spawns lnc: not too often on a loaded box

  const produceWave = async (cluster: string, wave: number, count: number): Promise<void> => {
    const kafka = await e.kafka(cluster);
    const producer = kafka.producer();
    await producer.connect();
    for (const partition of [0, 1]) {
      await producer.send({ topic: TOPIC, acks: -1, messages: Array.from({ length: count }, (_, i) => ({ partition, key: `k${i}`, value: `w${wave}-p${partition}-${i}` })) });
    }
    await producer.disconnect();
  };
  const commitOffsets = async (cluster: string, offsets: number[]): Promise<void> => {
    const admin = (await e.kafka(cluster)).admin();
    await admin.connect();
    await admin.setOffsets({ groupId: GROUP, topic: TOPIC, partitions: offsets.map((o, partition) => ({ partition, offset: String(o) })) });
    await admin.disconnect();
  };
  const groupOffsets = async (cluster: string): Promise<number[]> => {
    const admin = (await e.kafka(cluster)).admin();
    await admin.connect();
    const r = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    await admin.disconnect();
    return r[0]!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
  };
  const values = async (cluster: string, partition: number): Promise<string[]> => {
    const ip = [...(await e.podIps(cluster)).values()][0]!;
    const client = new AdminClient(`http://${ip}:1992`);
    const out: string[] = [];
    let offset = 0;
    for (;;) {
      const r = await client.fetchRecords(TOPIC, partition, { offset, encoding: 'utf8' });
      for (const rec of r.records) out.push(String(rec.value));
      if (r.records.length === 0 || r.nextOffset >= r.highWatermark) break;
      offset = r.nextOffset;
    }
    return out;
  };
  const expected = (partition: number, waves: number[][]): string[] => waves.flatMap(([wave, count]) => Array.from({ length: count! }, (_, i) => `w${wave}-p${partition}-${i}`));
  const restoreDoc = (name: string, target: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name },
    spec: {
      source: source(e.s3, BUCKET, PREFIX), ...extra,
      target: { clusterName: target, spec: clusterDoc(target, e.s3, BUCKET, `clusters/${target}`).spec },
    },
  });
  const waitSucceeded = (name: string): Promise<LrsStatus> => waitFor(`${name} Succeeded`, async () => {
    const st = await e.restoreStatus(name);
    if (st?.phase === 'Failed') throw new Error(`${name} failed: ${JSON.stringify(st.conditions)}`);
    return st?.phase === 'Succeeded' ? st : undefined;
  }, 360_000, 1_000);

  beforeAll(async () => {
    e = await startRestoreEnv({ buckets: [BUCKET] });
  }, 180_000);

  afterAll(async () => {
    await e?.stop();
  }, 120_000);

  it('source cluster: two produce waves with a restore point after each, group offsets committed after each', async () => {
    // Uploads every second and restore points every 2 s keep the drill short (defaults are 10 s).
    const doc = clusterDoc('prod', e.s3, BUCKET, PREFIX, { config: { additionalConfig: { 'tiering.uploadIntervalMs': 1000 } } }) as { spec: { objectStore: Record<string, unknown> } };
    doc.spec.objectStore.metadataUploadInterval = '2s';
    await e.apply(doc);
    await waitFor('prod Running', async () => (await e.getJson<{ status?: { phase?: string } }>(['lc', 'prod'])).status?.phase === 'Running', 180_000, 500);
    const admin = (await e.kafka('prod')).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }], waitForLeaders: true });
    await admin.disconnect();

    await produceWave('prod', 1, WAVE1);
    wave1Offsets = [12, WAVE1];
    await commitOffsets('prod', wave1Offsets);
    const committed1 = Date.now();
    const rp1 = await waitForRestorePoint(committed1, 'a restore point with wave 1 and its offsets');
    // The point in time: a whole second after that restore point (so it is chosen), before wave 2 exists.
    const t = Math.max(Date.now(), Date.parse(rp1.time)) + 1;
    pointInTime = new Date(Math.ceil(t / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    await waitFor('clock past the point in time', () => Date.now() > Date.parse(pointInTime) + 10, 30_000, 20);

    await produceWave('prod', 2, WAVE2);
    finalOffsets = [WAVE1 + 5, WAVE1 + WAVE2];
    await commitOffsets('prod', finalOffsets);
    await waitForRestorePoint(Date.now(), 'a restore point with wave 2 and the new offsets');
    expect(await values('prod', 0)).toEqual(expected(0, [[1, WAVE1], [2, WAVE2]]));
  }, 600_000);

  it('total loss: the cluster and its PVCs are deleted; a LanceRestore brings topics, records and offsets back', async () => {
    expect((await kubectl(e.env, ['delete', 'lc', 'prod', '--wait=true'])).code).toBe(0);
    await waitFor('prod pods gone', async () => (await e.podIps('prod')).size === 0 && (await e.getJson<{ items: unknown[] }>(['pods', '-l', 'app.kubernetes.io/instance=prod'])).items.length === 0, 120_000, 500);
    expect((await kubectl(e.env, ['delete', 'pvc', '-l', 'app.kubernetes.io/instance=prod', '--wait=true'])).code).toBe(0);
    await waitFor('prod PVCs gone', async () => (await e.getJson<{ items: unknown[] }>(['pvc', '-l', 'app.kubernetes.io/instance=prod'])).items.length === 0, 60_000, 500);

    await e.apply(restoreDoc('prod-restore', 'prod-restored'));
    const st = await waitSucceeded('prod-restore');
    expect(cond(st, 'Ready')).toMatchObject({ status: 'True', reason: 'Restored' });
    expect(st.restorePoint?.time).toBeDefined();
    expect(st.topicsRestored).toBe(1);
    expect(st.bytesRestored).toBeGreaterThan(0);
    expect(st.jobNames).toEqual(['prod-restore-restore-0']);
    expect(Date.parse(st.completionTime!)).toBeGreaterThanOrEqual(Date.parse(st.startTime!));
    const lc = await e.getJson<{ metadata: { annotations?: Record<string, string> }; status?: { phase?: string } }>(['lc', 'prod-restored']);
    expect(lc.status?.phase).toBe('Running');
    expect(lc.metadata.annotations?.['lance.dev/restored-by']).toBe('prod-restore');

    for (const p of [0, 1]) expect(await values('prod-restored', p)).toEqual(expected(p, [[1, WAVE1], [2, WAVE2]]));
    expect(await groupOffsets('prod-restored')).toEqual(finalOffsets);
    // It serves new writes after the restored ones.
    await produceWave('prod-restored', 3, 1);
    expect((await values('prod-restored', 1)).at(-1)).toBe('w3-p1-0');
    const ev = (await e.events('prod-restore')).map((x) => x.reason);
    expect(ev).toEqual(expect.arrayContaining(['CreatedPvcs', 'CreatedJobs', 'StartingTarget', 'RestoreSucceeded', 'PhaseSucceeded']));
    const table = await kubectl(e.env, ['get', 'lrs', 'prod-restore']);
    expect(table.stdout).toMatch(/prod-restore\s+Succeeded\s+prod-restored\s+\d{4}-/);
  }, 600_000);

  it('point in time between the waves: exactly the first wave and the offsets committed then; an operator restart mid-restore adopts the Job', async () => {
    await e.apply(restoreDoc('prod-pitr', 'prod-pitr', { pointInTime }));
    await waitFor('restore Job created', async () => (await e.getJson<{ items: unknown[] }>(['jobs', '-l', 'lance.dev/restore=prod-pitr'])).items.length === 1, 60_000, 100);
    await e.restartOperator();
    const st = await waitSucceeded('prod-pitr');
    // The new operator found the Job by label and owner uid instead of creating another one.
    expect((await e.getJson<{ items: unknown[] }>(['jobs', '-l', 'lance.dev/restore=prod-pitr'])).items).toHaveLength(1);
    const created = (await e.events('prod-pitr')).filter((x) => x.reason === 'CreatedJobs') as { count?: number }[];
    expect(created.map((x) => x.count ?? 1)).toEqual([1]);
    expect(Date.parse(st.restorePoint!.time)).toBeLessThanOrEqual(Date.parse(pointInTime));
    for (const p of [0, 1]) expect(await values('prod-pitr', p)).toEqual(expected(p, [[1, WAVE1]]));
    expect(await groupOffsets('prod-pitr')).toEqual(wave1Offsets);
  }, 600_000);

  it('an existing, empty LanceCluster is restored into: paused, stopped, PVCs replaced, Job, resumed with the data', async () => {
    await e.apply({ apiVersion: 'lance.dev/v1alpha1', kind: 'LanceCluster', metadata: { name: 'spare' }, spec: { replicas: 1, image: 'lance/broker:dev', storage: { size: '1Gi' } } });
    await waitFor('spare Running', async () => (await e.getJson<{ status?: { phase?: string } }>(['lc', 'spare'])).status?.phase === 'Running', 180_000, 500);
    const oldPvcUid = (await e.getJson<{ metadata: { uid: string } }>(['pvc', 'data-spare-0'])).metadata.uid;
    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'into-spare' },
      spec: { source: source(e.s3, BUCKET, PREFIX), target: { clusterName: 'spare', existing: true } },
    });
    const st = await waitSucceeded('into-spare');
    expect(st.topicsRestored).toBe(1);
    const lc = await e.getJson<{ metadata: { annotations?: Record<string, string> }; status?: { phase?: string } }>(['lc', 'spare']);
    expect(lc.metadata.annotations?.['lance.dev/restored-by']).toBe('into-spare');
    expect(lc.metadata.annotations?.['lance.dev/reconcile']).toBeUndefined(); // resumed
    expect(lc.status?.phase).toBe('Running');
    expect((await e.getJson<{ metadata: { uid: string } }>(['pvc', 'data-spare-0'])).metadata.uid).not.toBe(oldPvcUid);
    for (const p of [0, 1]) expect(await values('spare', p)).toEqual(expected(p, [[1, WAVE1], [2, WAVE2]]));
    expect(await groupOffsets('spare')).toEqual(finalOffsets);
    const ev = (await e.events('into-spare')).map((x) => x.reason);
    expect(ev).toEqual(expect.arrayContaining(['StoppingTarget', 'ReplacingPvcs', 'CreatedPvcs', 'CreatedJobs', 'StartingTarget', 'RestoreSucceeded']));
  }, 600_000);

  it('restored under its old name and prefix, the cluster serves the data and keeps writing restore points there', async () => {
    await e.apply({
      apiVersion: 'lance.dev/v1alpha1', kind: 'LanceRestore', metadata: { name: 'prod-again' },
      spec: { source: source(e.s3, BUCKET, PREFIX), target: { clusterName: 'prod', spec: clusterDoc('prod', e.s3, BUCKET, PREFIX).spec } },
    });
    const st = await waitSucceeded('prod-again');
    const restoredAt = Date.parse(st.completionTime!);
    for (const p of [0, 1]) expect(await values('prod', p)).toEqual(expected(p, [[1, WAVE1], [2, WAVE2]]));
    expect(await groupOffsets('prod')).toEqual(finalOffsets);
    // Same cluster id and prefix: its own restore points continue after the restore (default 10 s cadence).
    await produceWave('prod', 4, 2);
    await waitForRestorePoint(restoredAt, 'a restore point written by the restored cluster');
  }, 600_000);
});
