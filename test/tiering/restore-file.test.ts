/**
 * restoreDataDir on the file backend (fast, no processes): --topics selects topics (and drops other topics'
 * offsets), committed offsets are clamped into the restored logs, point in time cuts at batch granularity, an
 * interrupted restore is redone, and the restored dir opens as a standalone data dir.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../broker/src/common/log.ts';
import { encodeRecordBatch } from '../../broker/src/server/records.ts';
import * as catalog from '../../broker/src/storage/catalog.ts';
import { PartitionLog } from '../../broker/src/storage/partition-log.ts';
import { EntryType } from '../../broker/src/storage/types.ts';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { DR_FORMAT, MetadataUploader, type MetadataSnapshot } from '../../broker/src/tiering/metadata-dr.ts';
import type { ObjectStore } from '../../broker/src/tiering/object-store.ts';
import { RESTORE_MARKER, restoreDataDir } from '../../broker/src/tiering/restore.ts';
import { TieredStorage } from '../../broker/src/tiering/tiered-storage.ts';

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(p: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), p));
  dirs.push(d);
  return d;
}
const uuid = (hex: string): string => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;

/** Two topics in a bucket: `a` (2 partitions, 80 records at t=10000+i), `b` (1 partition), a group with offsets. */
async function seed(store: ObjectStore): Promise<void> {
  const src = await tempDir('lance-rf-src-');
  const tiering = new TieredStorage({ store, nodeId: 1, logger: silentLogger });
  closers.push(() => tiering.stop());
  const snapTopics: MetadataSnapshot['topics'] = [];
  const partitions: MetadataSnapshot['partitions'] = [];
  for (const [name, parts, n] of [['a', 2, 40], ['b', 1, 10]] as const) {
    const meta = await catalog.createTopic(src, name, parts, { segmentBytes: 2048 });
    snapTopics.push({ name, id: meta.id, topicId: uuid(meta.uuid), partitions: parts, config: { ...meta.config } });
    for (let p = 0; p < parts; p++) {
      const log = await PartitionLog.open(catalog.partitionDir(src, meta.id, p), { segmentBytes: 2048 });
      closers.push(() => log.close());
      for (let i = 0; i < n; i++) {
        // one batch of 2 records per entry: timestamps 1000+2i and 1001+2i
        const b = encodeRecordBatch([0, 1].map((k) => ({ key: null, value: Buffer.from(`${name}${p}-${2 * i + k}-${'v'.repeat(60)}`), headers: [], timestamp: 10_000 + 2 * i + k })));
        await log.append([{ type: EntryType.DATA, term: 1, offsetCount: b.offsetCount, maxTimestamp: b.maxTimestamp, payload: b.bytes }]).durable;
      }
      tiering.addPartition({ topic: name, ref: { clusterId: 'src', topicId: uuid(meta.uuid), partition: p }, log, term: () => 1, highWatermark: () => log.nextOffset, remoteRetention: () => ({ retentionMs: 0, retentionBytes: 0 }) });
      await tiering.syncNow(name, p);
      partitions.push({ topic: name, partition: p, highWatermark: log.nextOffset, logStartOffset: 0, remoteEnd: log.nextOffset, manifestKey: null, remoteBytes: 1 });
    }
  }
  const snap: MetadataSnapshot = {
    format: DR_FORMAT, clusterId: 'src', mode: 'standalone', node: 1, takenAt: new Date(5000).toISOString(), takenAtMs: 5000,
    topics: snapTopics, partitions, producerIdNext: 4000,
    groups: [{ groupId: 'g', protocolType: 'consumer', generation: 3, offsets: [
      { topic: 'a', partition: 0, offset: 30, leaderEpoch: 1, metadata: '', commitTimestamp: 1 },
      { topic: 'a', partition: 1, offset: 500, leaderEpoch: 1, metadata: '', commitTimestamp: 1 },
      { topic: 'b', partition: 0, offset: 5, leaderEpoch: 1, metadata: '', commitTimestamp: 1 },
    ] }],
  };
  await new MetadataUploader({ store, clusterId: 'src', nodeId: 1, logger: silentLogger, intervalMs: 60_000, retentionMs: 0, collect: async () => snap }).uploadNow();
}

describe('restoreDataDir (file backend)', () => {
  it('--topics, clamped offsets, point in time at batch granularity, interrupted restore redone', async () => {
    const bucket = await tempDir('lance-rf-bucket-');
    const store = createObjectStore({ backend: 'file', path: bucket, prefix: '' } as Parameters<typeof createObjectStore>[0]);
    closers.push(() => store.close());
    await seed(store);

    const dir = await tempDir('lance-rf-dst-');
    // an interrupted earlier restore: the marker and a stray file are wiped, the restore is redone
    await writeFile(path.join(dir, RESTORE_MARKER), '{}');
    await writeFile(path.join(dir, '.restore-junk'), 'x');
    await mkdir(path.join(dir, 'topic_9', '0'), { recursive: true });
    // restore points are chosen at or before T: the only one was taken at t=5000
    const early = await restoreDataDir({ store, dataDir: dir, nodeId: 7, atMs: 4999 }).catch((e: unknown) => e);
    expect(String(early)).toMatch(/no restore point taken at or before/);
    const rep = await restoreDataDir({ store, dataDir: dir, nodeId: 7, clusterId: 'dst', topics: ['a'], sourceClusterId: 'src' });
    expect(rep.topics.map((t) => t.name)).toEqual(['a']);
    expect(rep.partitions.map((p) => [p.partition, p.nextOffset, p.truncatedAt])).toEqual([[0, 80, null], [1, 80, null]]);
    expect(rep.groups).toEqual([{ groupId: 'g', offsets: 2, clamped: 1 }]);
    const groups = JSON.parse(await readFile(path.join(dir, 'groups', 'snapshot.json'), 'utf8')) as { nextOffset: number; groups: Array<{ offsets: Array<{ topic: string; partition: number; offset: number }> }> };
    expect(groups.nextOffset).toBe(0);
    expect(groups.groups[0]!.offsets.map((o) => [o.topic, o.partition, o.offset])).toEqual([['a', 0, 30], ['a', 1, 80]]);
    expect(JSON.parse(await readFile(path.join(dir, 'node.json'), 'utf8'))).toMatchObject({ clusterId: 'dst', nodeId: 7 });
    expect(JSON.parse(await readFile(path.join(dir, 'producer-ids.json'), 'utf8'))).toEqual({ next: 4000 });
    expect((await catalog.listTopics(dir)).map((t) => t.name)).toEqual(['a']);
    expect(await catalog.listTopicIds(dir)).toEqual([1]); // the interrupted restore's topic_9 is gone
    await expect(readFile(path.join(dir, RESTORE_MARKER))).rejects.toThrow();

    // a point in time inside the data: T = 10040 — records 0..40 are ≤ T, but record 40 shares its batch with
    // record 41 (t=10041), so the cut is before that batch: offsets 0..39 stay
    const dir2 = await tempDir('lance-rf-dst2-');
    const rep2 = await restoreDataDir({ store, dataDir: dir2, nodeId: 1, atMs: 10_040 });
    expect(rep2.restorePoint.clusterId).toBe('src');
    expect(rep2.partitions.map((p) => [p.topic, p.partition, p.nextOffset, p.truncatedAt])).toEqual([['a', 0, 40, 40], ['a', 1, 40, 40], ['b', 0, 20, null]]);
    expect(rep2.groups).toEqual([{ groupId: 'g', offsets: 3, clamped: 1 }]);
    const log = await PartitionLog.open(catalog.partitionDir(dir2, rep2.topics[0]!.id, 0));
    closers.push(() => log.close());
    const entries = await log.read(0, 1 << 20);
    expect(entries.filter((e) => e.type === EntryType.DATA).at(-1)!.maxTimestamp).toBe(10_039);
    // same cluster id: the cut partitions continue at a higher term (NOOP) and their manifests were superseded
    expect(entries.at(-1)!.type).toBe(EntryType.NOOP);
    expect(rep2.warnings.filter((w) => /manifest now ends before offset 40/.test(w))).toHaveLength(2);
    // a data dir with data in it is refused
    await expect(restoreDataDir({ store, dataDir: dir2, nodeId: 1 })).rejects.toThrow(/not empty/);
  });
});
