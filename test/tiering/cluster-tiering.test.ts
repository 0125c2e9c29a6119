/**
 * Tiering + metadata DR in cluster mode, 3 real broker processes sharing a file-backend bucket: partition leaders
 * upload (term in keys and manifests), the controller writes restore points (mode "cluster"); after the leader of
 * a partition is SIGKILLed the new leader (other segment boundaries, higher term) continues the remote log; and
 * `lnc restore` turns the cluster's restore point + segments into a standalone data dir that serves every record.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { listRestorePoints, decodeSnapshot } from '../../broker/src/tiering/metadata-dr.ts';
import { loadNewestManifest } from '../../broker/src/tiering/restore.ts';
import { startLance, type LanceProcess } from '../kafka/helpers/broker.ts';
import { KafkajsPartitionReader } from '../kafka/helpers/kafkajs-reader.ts';
import { TestCluster, waitUntil } from '../cluster/harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let c: TestCluster | undefined;
let standalone: LanceProcess | undefined;
const dirs: string[] = [];
afterAll(async () => {
  await standalone?.stop('SIGKILL');
  await c?.cleanup();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const vals = (tag: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(5, '0')}-${'q'.repeat(80)}`);

describe('tiering and restore points in cluster mode', () => {
  it('leaders upload, the controller writes restore points, a new leader continues the remote log, lnc restore serves it all', async () => {
    const bucket = await mkdtemp(path.join(tmpdir(), 'lance-ctier-bucket-'));
    dirs.push(bucket);
    // the harness passes its environment to every node
    Object.assign(process.env, { OBJECT_STORE_PATH: bucket, LANCE_TIERING_UPLOAD_INTERVAL_MS: '300', LANCE_METADATA_UPLOAD_INTERVAL_MS: '300', LANCE_SEGMENT_BYTES: '8192' });
    c = await TestCluster.start(3);
    const store = createObjectStore({ backend: 'file', path: bucket, prefix: '' } as Parameters<typeof createObjectStore>[0]);
    const kafka = new Kafka({ clientId: 'ctier', brokers: c.bootstrap(), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    await waitUntil('a controller agreed by all nodes', () => c!.agreedLeader('__meta'), 90_000);
    // RF 3 needs every broker registered with the controller: retry until the topic exists with leaders
    await waitUntil('topic created with a leader per partition', async () => {
      await admin.createTopics({ topics: [{ topic: 'events', numPartitions: 2, replicationFactor: 3 }], waitForLeaders: true }).catch(() => false);
      const md = await admin.fetchTopicMetadata({ topics: ['events'] }).catch(() => null);
      const ps = md?.topics[0]?.partitions ?? [];
      return ps.length === 2 && ps.every((p) => p.leader >= 1);
    }, 90_000);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const p0a = vals('p0a', 300);
    const p1 = vals('p1', 200);
    for (let i = 0; i < 300; i += 50) await producer.send({ topic: 'events', acks: -1, messages: p0a.slice(i, i + 50).map((value) => ({ partition: 0, value })) });
    for (let i = 0; i < 200; i += 50) await producer.send({ topic: 'events', acks: -1, messages: p1.slice(i, i + 50).map((value) => ({ partition: 1, value })) });

    // the controller's restore point names the topic (mode cluster); the leaders' manifests hold every record
    const rp = await waitUntil('a cluster restore point with the topic', async () => {
      const pts = await listRestorePoints(store);
      return pts.reverse().find((p) => p.point?.mode === 'cluster' && p.point.topics.some((t) => t.name === 'events'));
    }, 90_000);
    const snap = decodeSnapshot(rp.point!.snapshot.key, await store.get(rp.point!.snapshot.key), rp.point!.snapshot);
    const t = snap.topics.find((x) => x.name === 'events')!;
    expect(t.assignment!.map((a) => [...a].sort())).toEqual([[1, 2, 3], [1, 2, 3]]);
    const ref = (partition: number) => ({ clusterId: snap.clusterId, topicId: t.topicId, partition });
    const m0 = await waitUntil('partition 0 fully uploaded', async () => {
      const m = (await loadNewestManifest(store, ref(0))).manifest;
      return m?.segments.at(-1)?.lastOffset === 299 ? m : undefined;
    }, 90_000);
    await waitUntil('partition 1 fully uploaded', async () => (await loadNewestManifest(store, ref(1))).manifest?.segments.at(-1)?.lastOffset === 199, 90_000);
    // the controller reads the other leaders' manifests: a restore point that holds every record
    await waitUntil('a cluster restore point with nothing left to upload', async () => (await listRestorePoints(store))
      .some((p) => p.point?.mode === 'cluster' && p.point.unuploadedRecords === 0 && p.point.totalBytes > 0 && p.point.topics.some((x) => x.name === 'events')), 90_000);

    // the leader of partition 0 dies; the new leader (higher term) continues the remote log
    const leader = (await admin.fetchTopicMetadata({ topics: ['events'] })).topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
    expect(m0.node).toBe(leader);
    await c.kill(leader);
    const p0b = vals('p0b', 100);
    for (let i = 0; i < 100; i += 50) await producer.send({ topic: 'events', acks: -1, messages: p0b.slice(i, i + 50).map((value) => ({ partition: 0, value })) });
    const m0b = await waitUntil('the new leader uploaded the new records', async () => {
      const m = (await loadNewestManifest(store, ref(0))).manifest;
      return m?.segments.at(-1)?.lastOffset === 399 ? m : undefined;
    }, 90_000);
    expect(m0b.term).toBeGreaterThan(m0.term);
    expect(m0b.node).not.toBe(leader);
    expect(m0b.segments[0]!.baseOffset).toBe(0);
    for (let i = 1; i < m0b.segments.length; i++) expect(m0b.segments[i]!.baseOffset).toBe(m0b.segments[i - 1]!.lastOffset + 1);
    await producer.disconnect();
    await admin.disconnect();
    await store.close();

    // the cluster's backup restored into a standalone data dir serves every record
    const target = await mkdtemp(path.join(tmpdir(), 'lance-ctier-restored-'));
    dirs.push(target);
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, [path.join(ROOT, 'bin/lnc.js'), 'restore', '--from', `file://${bucket}`, '--data-dir', target, '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      p.on('exit', (code) => resolve({ code, out }));
    });
    expect(r.code, r.out).toBe(0);
    standalone = await startLance({ dataDir: target });
    const reader = new KafkajsPartitionReader([standalone.bootstrap]);
    await reader.connect();
    try {
      expect((await reader.readToEnd('events', 0, 0)).map((x) => x.value)).toEqual([...p0a, ...p0b]);
      expect((await reader.readToEnd('events', 1, 0)).map((x) => x.value)).toEqual(p1);
    } finally {
      await reader.disconnect();
    }
  }, 300_000);
});
