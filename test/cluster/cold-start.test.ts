/**
 * The seed's "Simulate Complete Node Loss" for a 3-node cluster, automated against s3rver (a real S3 endpoint):
 * topics with RF 3, records, committed group offsets, a restore point covering them; every node SIGKILLed, every
 * data dir deleted, 3 fresh nodes started on the same bucket → they agree on ONE restore point, restore it (metadata
 * log, partition logs with the same Raft state on every replica), elect and serve: topics listed, offsets as
 * before, every record readable from the beginning through every node and from every replica (admin fetch), no
 * segment transferred between nodes, new acks=all produce works. RPO printed.
 * Then a single node wiped in the LIVE cluster does NOT cold-start: it catches up through Raft. Then the whole
 * (restored) cluster is lost again and only two machines come back: after the peer wait they restore as a majority,
 * and the third, started later, joins through Raft.
 */
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { decodeSnapshot, listRestorePoints, type ListedRestorePoint } from '../../broker/src/tiering/metadata-dr.ts';
import { loadNewestManifest } from '../../broker/src/tiering/restore.ts';
import type { ObjectStore } from '../../broker/src/tiering/object-store.ts';
import { KafkajsPartitionReader } from '../kafka/helpers/kafkajs-reader.ts';
import { s3rverConfig, startS3rver, type S3rverHandle } from '../s3/harness.ts';
import { TestCluster, waitUntil, type LogLine } from './harness.ts';

let s3: S3rverHandle | undefined;
let c: TestCluster | undefined;
let store: ObjectStore | undefined;
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
  await c?.cleanup();
  await store?.close().catch(() => undefined);
  await s3?.stop();
});

const vals = (tag: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(5, '0')}-${'c'.repeat(70)}`);

/** what each partition holds: topic → partition → values */
const data: Record<string, string[][]> = {
  orders: [vals('o0', 140), vals('o1', 90), vals('o2', 60)],
  audit: [vals('a0', 45), vals('a1', 0)],
};
const offsetsBefore: Record<string, Record<number, string>> = { orders: { 0: '100', 1: '50', 2: '60' }, audit: { 0: '10' } };
/** a topic whose remote retention (retention.bytes) dropped its first segments: restored logs start after index 1 */
const SHORT = vals('s0', 400);

function kafkaFor(bootstrap: string[]): Kafka {
  return new Kafka({ clientId: 'cold-start', brokers: bootstrap, logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
}

async function adminFor(bootstrap: string[]): Promise<Admin> {
  const a = kafkaFor(bootstrap).admin();
  await a.connect();
  cleanup.push(() => a.disconnect());
  return a;
}

async function readAll(bootstrap: string, topic: string, partition: number): Promise<string[]> {
  const reader = new KafkajsPartitionReader([bootstrap]);
  await reader.connect();
  try {
    return (await reader.readToEnd(topic, partition, 0)).map((r) => r.value ?? '');
  } finally {
    await reader.disconnect();
  }
}

/** every record of one local replica through its node's admin fetch (log start → HW) */
async function replicaValues(cl: TestCluster, node: number, topic: string, partition: number): Promise<string[]> {
  return (await replicaRead(cl, node, topic, partition)).values;
}

async function replicaRead(cl: TestCluster, node: number, topic: string, partition: number): Promise<{ logStart: number; values: string[] }> {
  const out: string[] = [];
  let offset: number | undefined;
  let logStart = -1;
  for (;;) {
    const r = await cl.node(node).admin.fetchRecords(topic, partition, { ...(offset !== undefined ? { offset } : {}), max: 1000 });
    if (logStart < 0) logStart = r.logStartOffset;
    for (const rec of r.records) out.push(rec.value ?? '');
    if (r.nextOffset >= r.highWatermark || r.records.length === 0) return { logStart, values: out };
    offset = r.nextOffset;
  }
}

async function offsetsOf(admin: Admin): Promise<Record<string, Record<number, string>>> {
  const out: Record<string, Record<number, string>> = {};
  for (const t of await admin.fetchOffsets({ groupId: 'billing', topics: ['orders', 'audit'] })) {
    out[t.topic] = Object.fromEntries(t.partitions.filter((p) => p.offset !== '-1').map((p) => [p.partition, p.offset]));
  }
  return out;
}

const metric = (text: string, name: string): number[] => text.split('\n').filter((l) => l.startsWith(name)).map((l) => Number(l.split(' ').at(-1)));

/** the log lines of a node since `t` whose message starts with `prefix` */
async function linesSince(cl: TestCluster, node: number, t: number, prefix: string): Promise<LogLine[]> {
  return (await cl.logLines(node)).filter((l) => l.t >= t && l.msg.startsWith(prefix));
}

/** the newest restore point taken after `after` whose snapshot says every record of `want` is in the bucket */
async function coveringRestorePoint(want: Record<string, string[][]>, after: number): Promise<ListedRestorePoint> {
  return waitUntil('a restore point covering every record', async () => {
    for (const p of (await listRestorePoints(store!, { newest: 3 })).reverse()) {
      if (!p.point || p.takenAtMs < after || p.point.mode !== 'cluster' || p.point.groups < 1) continue;
      const snap = decodeSnapshot(p.point.snapshot.key, await store!.get(p.point.snapshot.key), p.point.snapshot);
      if (Object.entries(want).every(([topic, parts]) => parts.every((v, partition) => snap.partitions.find((x) => x.topic === topic && x.partition === partition)?.remoteEnd === v.length))) return p;
    }
    return undefined;
  }, 180_000);
}

describe('multi-node cold start from the bucket', () => {
  let restoredKey = '';

  it('3 nodes lost with their disks: 3 fresh nodes agree on one restore point, restore it and serve every record', async () => {
    s3 = await startS3rver();
    Object.assign(process.env, {
      OBJECT_STORE_BACKEND: 's3', S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER', S3_PATH_STYLE: 'true',
      OBJECT_STORE_PREFIX: 'drill/', LANCE_TIERING_UPLOAD_INTERVAL_MS: '300', LANCE_METADATA_UPLOAD_INTERVAL_MS: '500', LANCE_SEGMENT_BYTES: '8192',
      // the three restarted nodes must all agree (no majority-only restore in this drill)
      LANCE_COLD_START_PEER_WAIT_MS: '600000',
    });
    store = createObjectStore(s3rverConfig(s3.endpoint, s3.bucket, { prefix: 'drill/' }));
    c = await TestCluster.start(3);
    const cl = c;
    await waitUntil('a controller agreed by all nodes', () => cl.agreedLeader('__meta'), 120_000);
    const admin = await adminFor(cl.bootstrap());
    for (const [topic, parts] of Object.entries(data)) {
      await waitUntil(`topic ${topic} with a leader per partition`, async () => {
        await admin.createTopics({ topics: [{ topic, numPartitions: parts.length, replicationFactor: 3 }], waitForLeaders: true }).catch(() => false);
        const ps = (await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => null))?.topics[0]?.partitions ?? [];
        return ps.length === parts.length && ps.every((p) => p.leader >= 1);
      }, 120_000);
    }
    await waitUntil('topic short with a leader', async () => {
      await admin.createTopics({ topics: [{ topic: 'short', numPartitions: 1, replicationFactor: 3, configEntries: [{ name: 'retention.bytes', value: '20000' }] }], waitForLeaders: true }).catch(() => false);
      const ps = (await admin.fetchTopicMetadata({ topics: ['short'] }).catch(() => null))?.topics[0]?.partitions ?? [];
      return ps.length === 1 && ps.every((p) => p.leader >= 1);
    }, 120_000);
    const producer = kafkaFor(cl.bootstrap()).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    for (const [topic, parts] of Object.entries(data)) {
      for (const [partition, values] of parts.entries()) {
        for (let i = 0; i < values.length; i += 30) await producer.send({ topic, acks: -1, messages: values.slice(i, i + 30).map((value) => ({ partition, value })) });
      }
    }
    for (let i = 0; i < SHORT.length; i += 20) await producer.send({ topic: 'short', acks: -1, messages: SHORT.slice(i, i + 20).map((value) => ({ partition: 0, value })) });
    // one setOffsets per topic, then ONE read-back that must match (no retry: a commit answered NONE reads back from
    // any coordinator — see the read barrier in broker/src/cluster/cluster-groups.ts)
    for (const [topic, ps] of Object.entries(offsetsBefore)) {
      await admin.setOffsets({ groupId: 'billing', topic, partitions: Object.entries(ps).map(([partition, offset]) => ({ partition: Number(partition), offset })) });
    }
    expect(await offsetsOf(admin)).toEqual(offsetsBefore);
    const lastWrite = Date.now();

    // a restore point taken after the last write whose snapshot has every record in the bucket
    const covering = await waitUntil('a restore point covering every record and the offsets', async () => {
      for (const p of (await listRestorePoints(store!, { newest: 3 })).reverse()) {
        if (!p.point || p.takenAtMs < lastWrite || p.point.mode !== 'cluster' || p.point.groups < 1) continue;
        const snap = decodeSnapshot(p.point.snapshot.key, await store!.get(p.point.snapshot.key), p.point.snapshot);
        const complete = Object.entries({ ...data, short: [SHORT] }).every(([topic, parts]) => parts.every((v, partition) => snap.partitions.find((x) => x.topic === topic && x.partition === partition)?.remoteEnd === v.length));
        // and the short topic's remote log no longer starts at offset 0 (its newest manifest, what a restore reads)
        const t = snap.topics.find((x) => x.name === 'short')!;
        const m = (await loadNewestManifest(store!, { clusterId: snap.clusterId, topicId: t.topicId, partition: 0 })).manifest;
        if (complete && m && m.segments[0]!.baseOffset > 0) return p;
      }
      return undefined;
    }, 180_000);

    // complete node loss: every process SIGKILLed, every disk gone
    await cl.stop();
    const killedAt = Date.now();
    for (const n of cl.nodes) await cl.wipe(n.nodeId);
    const newest: ListedRestorePoint = (await listRestorePoints(store, { newest: 1 })).at(-1)!;
    const rpoMs = killedAt - newest.takenAtMs;
    process.stdout.write(`[cold-start] RPO: newest restore point ${newest.key} was ${rpoMs} ms old at the kill (restore points every 500 ms); the covering one ${covering.key} held every acknowledged record (0 lost)\n`);

    // three fresh nodes, same bucket
    const restartAt = Date.now();
    await Promise.all(cl.nodes.map((n) => cl.startNode(n.nodeId)));
    const restored = await waitUntil('every node restored', async () => {
      const ls = await Promise.all(cl.nodes.map(async (n) => (await linesSince(cl, n.nodeId, restartAt, 'cold start: restored'))[0]));
      return ls.every((l) => l !== undefined) ? ls : undefined;
    }, 240_000);
    const keys = restored.map((l) => String(l.restorePoint));
    // ONE restore point: the newest visible when they started
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toBe(newest.key);
    restoredKey = keys[0]!;
    const took = restored.map((l) => Number(l.durationSeconds));
    process.stdout.write(`[cold-start] restore per node: ${took.map((s) => `${s.toFixed(2)} s`).join(', ')}\n`);

    await waitUntil('a controller agreed by all restored nodes', () => cl.agreedLeader('__meta'), 120_000);
    for (const n of cl.nodes) expect(await n.admin.node()).toMatchObject({ state: 'running', nodeId: n.nodeId, restoredFrom: restoredKey });
    const admin2 = await adminFor(cl.bootstrap());
    await waitUntil('every partition has a leader', async () => {
      const md = await admin2.fetchTopicMetadata({ topics: Object.keys(data) }).catch(() => null);
      return md?.topics.every((t) => t.partitions.length === data[t.name]!.length && t.partitions.every((p) => p.leader >= 1)) ?? false;
    }, 120_000);
    const servingMs = Date.now() - restartAt;
    process.stdout.write(`[cold-start] from start of the fresh processes to every partition led: ${servingMs} ms\n`);
    expect((await admin2.listTopics()).filter((t) => !t.startsWith('__')).sort()).toEqual(['audit', 'orders', 'short']);
    expect(await offsetsOf(admin2)).toEqual(offsetsBefore);

    // every record, through every node (kafkajs) and from every replica (admin fetch of its local log)
    for (const n of cl.nodes) {
      for (const [topic, parts] of Object.entries(data)) {
        for (const [partition, values] of parts.entries()) {
          expect(await readAll(`127.0.0.1:${n.kafkaPort}`, topic, partition), `${topic}-${partition} via node ${n.nodeId}`).toEqual(values);
          await waitUntil(`node ${n.nodeId} replica of ${topic}-${partition} at its HW`, async () => (await replicaValues(cl, n.nodeId, topic, partition)).length === values.length, 60_000);
          expect(await replicaValues(cl, n.nodeId, topic, partition), `${topic}-${partition} replica on node ${n.nodeId}`).toEqual(values);
        }
      }
      const m = await n.admin.metricsText();
      // the replicas were restored from the bucket, not copied from each other
      expect(metric(m, 'lance_segment_transfers_total{direction="in"}').reduce((a, b) => a + b, 0), `segments transferred into node ${n.nodeId}`).toBe(0);
      const rec = metric(m, 'lance_dr_recovery_duration_seconds');
      expect(rec.length).toBe(1);
      expect(rec[0]).toBeGreaterThan(0);
    }

    // the short topic: every replica starts at the same offset > 0 (remote retention), with the same log start file,
    // and holds every record from there
    const shortId = (await cl.node(1).admin.cluster()).topics.find((t) => t.name === 'short')!.id;
    const starts = await Promise.all(cl.nodes.map(async (n) => JSON.parse(await readFile(path.join(n.dataDir, `topic_${shortId}`, '0', 'snapshot.json'), 'utf8')) as { index: number; nextOffset: number }));
    expect(starts[0]!.index).toBeGreaterThan(0);
    expect(starts[0]!.nextOffset).toBeGreaterThan(0);
    expect(starts[1]).toEqual(starts[0]);
    expect(starts[2]).toEqual(starts[0]);
    for (const n of cl.nodes) {
      await waitUntil(`node ${n.nodeId} replica of short-0 at its HW`, async () => (await replicaRead(cl, n.nodeId, 'short', 0)).values.length === SHORT.length - starts[0]!.nextOffset, 60_000);
      expect(await replicaRead(cl, n.nodeId, 'short', 0)).toEqual({ logStart: starts[0]!.nextOffset, values: SHORT.slice(starts[0]!.nextOffset) });
    }
    process.stdout.write(`[cold-start] short-0 restored from offset ${starts[0]!.nextOffset} (raft index ${starts[0]!.index + 1}) on every replica\n`);

    // new acks=all writes work and are readable after the restored ones
    const p2 = kafkaFor(cl.bootstrap()).producer({ allowAutoTopicCreation: false });
    await p2.connect();
    cleanup.push(() => p2.disconnect());
    const more = vals('o0-after', 25);
    await p2.send({ topic: 'orders', acks: -1, messages: more.map((value) => ({ partition: 0, value })) });
    data.orders![0] = [...data.orders![0]!, ...more];
    expect(await readAll(cl.bootstrap()[0]!, 'orders', 0)).toEqual(data.orders![0]);
    // the restored cluster keeps backing up: a new restore point holds the new records too
    await waitUntil('a restore point of the restored cluster with the new records', async () => {
      for (const p of (await listRestorePoints(store!, { newest: 2 })).reverse()) {
        if (!p.point || p.takenAtMs < restartAt) continue;
        const snap = decodeSnapshot(p.point.snapshot.key, await store!.get(p.point.snapshot.key), p.point.snapshot);
        if (snap.partitions.find((x) => x.topic === 'orders' && x.partition === 0)?.remoteEnd === data.orders![0]!.length) return true;
      }
      return false;
    }, 120_000);
  }, 600_000);

  it('a single node wiped in the live cluster does not cold-start: it catches up through Raft', async () => {
    const cl = c!;
    expect(restoredKey).not.toBe('');
    await cl.kill(3);
    await cl.wipe(3);
    const at = Date.now();
    await cl.startNode(3);
    const decided = await waitUntil('node 3 decided', async () => (await linesSince(cl, 3, at, 'cold start: not restoring'))[0], 120_000);
    expect(String(decided.reason)).toMatch(/running with live state/);
    // its data comes from the other replicas
    for (const [topic, parts] of Object.entries(data)) {
      for (const [partition, values] of parts.entries()) {
        await waitUntil(`node 3 caught up ${topic}-${partition}`, async () => (await replicaValues(cl, 3, topic, partition).catch(() => [])).length === values.length, 180_000);
        expect(await replicaValues(cl, 3, topic, partition)).toEqual(values);
      }
    }
    expect(await cl.node(3).admin.node()).toMatchObject({ state: 'running', restoredFrom: null });
    // the bucket was not used to rebuild it
    expect(await linesSince(cl, 3, at, 'restoring this node of the cluster')).toEqual([]);
    expect(await linesSince(cl, 3, at, 'cold start: restored')).toEqual([]);
  }, 300_000);

  it('one machine never comes back: after the peer wait a majority restores; the late node then joins through Raft', async () => {
    const cl = c!;
    const admin = await adminFor(cl.bootstrap());
    expect(await offsetsOf(admin)).toEqual(offsetsBefore);
    await coveringRestorePoint(data, Date.now());
    await cl.stop();
    for (const n of cl.nodes) await cl.wipe(n.nodeId);
    const newest = (await listRestorePoints(store!, { newest: 1 })).at(-1)!;
    // node 3 stays down: nodes 1 and 2 wait for it this long, then restore as a majority
    process.env.LANCE_COLD_START_PEER_WAIT_MS = '3000';
    const at = Date.now();
    await Promise.all([cl.startNode(1), cl.startNode(2)]);
    const restored = await waitUntil('nodes 1 and 2 restored', async () => {
      const ls = await Promise.all([1, 2].map(async (id) => (await linesSince(cl, id, at, 'cold start: restored'))[0]));
      return ls.every((l) => l !== undefined) ? ls : undefined;
    }, 240_000);
    for (const l of restored) {
      expect(l.restorePoint).toBe(newest.key);
      expect(l.agreedWith).toEqual([1, 2]);
    }
    await waitUntil('a controller agreed by nodes 1 and 2', () => cl.agreedLeader('__meta'), 120_000);
    for (const [topic, parts] of Object.entries(data)) {
      for (const [partition, values] of parts.entries()) {
        expect(await readAll(`127.0.0.1:${cl.node(1).kafkaPort}`, topic, partition), `${topic}-${partition}`).toEqual(values);
      }
    }
    // the late machine: fresh, but its peers run with live state → it joins and catches up from them
    const lateAt = Date.now();
    await cl.startNode(3);
    const decided = await waitUntil('node 3 decided', async () => (await linesSince(cl, 3, lateAt, 'cold start: not restoring'))[0], 120_000);
    expect(String(decided.reason)).toMatch(/running with live state/);
    for (const [topic, parts] of Object.entries(data)) {
      for (const [partition, values] of parts.entries()) {
        await waitUntil(`node 3 caught up ${topic}-${partition}`, async () => (await replicaValues(cl, 3, topic, partition).catch(() => [])).length === values.length, 180_000);
        expect(await replicaValues(cl, 3, topic, partition)).toEqual(values);
      }
    }
    const admin2 = await adminFor(cl.bootstrap());
    expect(await offsetsOf(admin2)).toEqual(offsetsBefore);
  }, 600_000);
});
