/**
 * Tiered segments on the standalone LocalBroker with the file backend (a real directory as the bucket):
 * uploads with manifests, local deletion only after a verified upload, fetches below the local log start served
 * from the bucket, the committed tail uploaded without a size-based roll, damaged remote objects never served.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLanceError } from '../../broker/src/common/errors.ts';
import { silentLogger } from '../../broker/src/common/log.ts';
import { ListOffsetsTimestamp } from '../../broker/src/kafka/backend.ts';
import { FetchQuerySchema } from '../../broker/src/admin/schemas.ts';
import { validateConfig } from '../../broker/src/server/config.ts';
import { LocalBroker } from '../../broker/src/server/local-broker.ts';
import { BrokerMetrics } from '../../broker/src/server/metrics.ts';
import { decodeRecordBatches, encodeRecordBatch } from '../../broker/src/server/records.ts';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { manifestPrefix, partitionPrefix } from '../../broker/src/tiering/manifest.ts';
import type { ObjectStore } from '../../broker/src/tiering/object-store.ts';
import { waitFor } from '../kafka/helpers/broker.ts';

const dirs: string[] = [];
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function openBroker(bucketDir: string, tiering: Record<string, number>, dataDir?: string): Promise<{ broker: LocalBroker; metrics: BrokerMetrics; dataDir: string }> {
  const dir = dataDir ?? (await tempDir('lance-tier-data-'));
  const config = validateConfig({
    dataDir: dir,
    storage: { retentionCheckIntervalMs: 3_600_000 },
    objectStore: { backend: 'file', path: bucketDir },
    tiering,
  });
  const metrics = new BrokerMetrics();
  const broker = await LocalBroker.open({ config, clusterId: 'c1', nodeId: 1, logger: silentLogger, metrics });
  cleanup.push(() => broker.close());
  return { broker, metrics, dataDir: dir };
}

const values = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `value-${String(from + i).padStart(5, '0')}-${'x'.repeat(80)}`);

async function produceAll(b: LocalBroker, topic: string, vals: string[], perBatch = 3): Promise<void> {
  for (let i = 0; i < vals.length; i += perBatch) {
    const chunk = vals.slice(i, i + perBatch);
    // current timestamps: the topic retention (7 days by default) applies to the remote log
    const ts = Date.now();
    const batch = encodeRecordBatch(chunk.map((v, j) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: ts + j })));
    await b.produce(topic, 0, [batch], -1, 30_000);
  }
}

/** Reads the partition from `from` to the high watermark through LocalBroker.fetch (the Kafka Fetch path). */
async function readAll(b: LocalBroker, topic: string, from: number): Promise<{ offset: number; value: string }[]> {
  const out: { offset: number; value: string }[] = [];
  let next = from;
  for (;;) {
    const r = await b.fetch(topic, 0, next, 700);
    for (const rec of decodeRecordBatches(r.records)) {
      if (rec.offset < next) continue;
      out.push({ offset: rec.offset, value: rec.value!.toString() });
      next = rec.offset + 1;
    }
    if (next >= r.highWatermark) return out;
    if (r.records.length === 0) throw new Error(`fetch at ${next} returned nothing below ${r.highWatermark}`);
  }
}

async function listKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of store.list(prefix)) if (e.kind === 'object') keys.push(e.key);
  return keys;
}

describe('tiered segments (file backend, LocalBroker)', () => {
  it('uploads sealed segments with manifests, deletes local copies only after verified upload, serves old offsets from the bucket', async () => {
    const bucket = await tempDir('lance-tier-bucket-');
    // a long interval: the test drives passes with syncNow (the timer's first pass may run too; syncNow waits for it)
    const { broker, metrics, dataDir } = await openBroker(bucket, { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 });
    const t = await broker.createTopic({ name: 'tiered', numPartitions: 1, replicationFactor: -1, assignments: [], configs: { 'segment.bytes': '1024' }, validateOnly: false });
    const vals = values(120);
    await produceAll(broker, 'tiered', vals);
    const tiering = broker.tieredStorage!;
    expect(tiering).toBeDefined();
    const partDir = path.join(dataDir, (await readdir(dataDir)).find((d) => d.startsWith('topic_'))!, '0');
    const localBefore = (await readdir(partDir)).filter((f) => f.endsWith('.lnc')).length;
    expect(localBefore).toBeGreaterThan(5);

    await tiering.syncNow('tiered', 0);
    const m = tiering.manifest('tiered', 0)!;
    expect(m.segments.length).toBeGreaterThanOrEqual(localBefore);
    expect(m.segments[0]!.baseOffset).toBe(0);
    expect(m.segments.at(-1)!.lastOffset).toBe(119);
    expect(m.remoteLogStartOffset).toBe(0);
    // the objects are in the bucket: every segment with its index files, plus manifest versions (at most 3 kept)
    const store = createObjectStore({ backend: 'file', path: bucket } as never);
    cleanup.push(() => store.close());
    const ref = { clusterId: 'c1', topicId: t.topicId, partition: 0 };
    const keys = await listKeys(store, partitionPrefix(ref));
    for (const s of m.segments) {
      expect(keys).toContain(s.data.key);
      expect(s.idx && keys.includes(s.idx.key)).toBe(true);
      expect(s.tix && keys.includes(s.tix.key)).toBe(true);
      expect(s.data.key).toMatch(/segments\/\d{20}-\d{20}-\d{20}-\d{10}\.lnc$/);
    }
    const manifests = await listKeys(store, manifestPrefix(ref));
    expect(manifests.length).toBeGreaterThan(0);
    expect(manifests.length).toBeLessThanOrEqual(3);
    // local retention (1 byte) deleted every uploaded segment: only the fresh active one is left
    const p = broker.listTopics()[0]!;
    expect(p.name).toBe('tiered');
    const localAfter = (await readdir(partDir)).filter((f) => f.endsWith('.lnc'));
    expect(localAfter).toEqual(['00000000000000000120.lnc']);
    expect((await broker.listOffsets('tiered', 0, ListOffsetsTimestamp.EARLIEST)).offset).toBe(0);

    const got = await readAll(broker, 'tiered', 0);
    expect(got.map((r) => r.offset)).toEqual(vals.map((_, i) => i));
    expect(got.map((r) => r.value)).toEqual(vals);
    // from the middle of a remote segment too
    const mid = await readAll(broker, 'tiered', 61);
    expect(mid[0]!.offset).toBe(61);
    expect(mid.map((r) => r.value)).toEqual(vals.slice(61));

    const text = await metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`lance_tiering_segments_uploaded_total ${m.segments.length}\\b`));
    expect(text).toMatch(/lance_tiering_remote_fetch_bytes_total [1-9]/);
    expect(text).toMatch(/lance_tiering_last_success_timestamp_seconds [1-9]/);

    // a restarted broker (same data dir and bucket) serves offset 0 at once, before any tiering pass ran
    await broker.close();
    const { broker: b2 } = await openBroker(bucket, { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 }, dataDir);
    // the admin consume endpoint without an offset starts at the remote log start
    const page = await b2.adminFetch('tiered', 0, FetchQuerySchema.parse({ max: 5 }), new AbortController().signal);
    expect(page.records.map((r) => r.value)).toEqual(vals.slice(0, 5));
    expect(page.nextOffset).toBe(5);
    expect((await b2.listOffsets('tiered', 0, ListOffsetsTimestamp.EARLIEST)).offset).toBe(0);
    expect((await readAll(b2, 'tiered', 0)).map((r) => r.value)).toEqual(vals);
    // its next pass continues the manifest versions (a new object, never a rewrite of an old key)
    await produceAll(b2, 'tiered', values(9, 120));
    await b2.tieredStorage!.syncNow('tiered', 0);
    expect(b2.tieredStorage!.manifest('tiered', 0)!.version).toBeGreaterThan(m.version);
    expect(b2.tieredStorage!.manifest('tiered', 0)!.segments.at(-1)!.lastOffset).toBe(128);
    expect((await readAll(b2, 'tiered', 0)).map((r) => r.value)).toEqual([...vals, ...values(9, 120)]);
  });

  it('local and remote reads join up when new data follows a local deletion', async () => {
    const bucket = await tempDir('lance-tier-join-');
    const { broker } = await openBroker(bucket, { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 });
    await broker.createTopic({ name: 'tiered', numPartitions: 1, replicationFactor: -1, assignments: [], configs: { 'segment.bytes': '1024' }, validateOnly: false });
    const vals = values(120);
    await produceAll(broker, 'tiered', vals);
    await broker.tieredStorage!.syncNow('tiered', 0);
    // more data after the local deletion: local and remote reads join up
    await produceAll(broker, 'tiered', values(9, 120));
    const all = await readAll(broker, 'tiered', 0);
    expect(all.map((r) => r.value)).toEqual([...vals, ...values(9, 120)]);
  });

  it('keeps every local segment while uploads fail, then uploads and deletes once it works', async () => {
    const bucket = await tempDir('lance-tier-fail-');
    const { broker } = await openBroker(bucket, { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 });
    await broker.createTopic({ name: 'ro', numPartitions: 1, replicationFactor: -1, assignments: [], configs: { 'segment.bytes': '1024', 'retention.bytes': '1024' }, validateOnly: false });
    const vals = values(60);
    await produceAll(broker, 'ro', vals);
    const tiering = broker.tieredStorage!;
    // a regular file where the file backend needs its first key directory: every put fails (works as root too)
    const blocker = path.join(bucket, 'clusters.d');
    await writeFile(blocker, 'not a directory');
    await expect(tiering.syncNow('ro', 0)).rejects.toThrow();
    await expect(tiering.syncNow('ro', 0)).rejects.toThrow();
    // neither tiering's local retention nor the topic retention (retention.bytes 1024) deleted anything
    await broker.enforceRetention();
    expect((await broker.listOffsets('ro', 0, ListOffsetsTimestamp.EARLIEST)).offset).toBe(0);
    expect((await readAll(broker, 'ro', 0)).map((r) => r.value)).toEqual(vals);
    // at least our two passes (a timer pass may have failed as well)
    expect((await broker.tieredStorage!.metrics!.uploadErrors.get()).values[0]!.value).toBeGreaterThanOrEqual(2);

    await rm(blocker);
    await tiering.syncNow('ro', 0);
    await broker.enforceRetention();
    const m = tiering.manifest('ro', 0)!;
    expect(m.segments.at(-1)!.lastOffset).toBe(59);
    // retention.bytes 1024 applies to the remote log too: the oldest remote segments went, the rest reads back
    const earliest = (await broker.listOffsets('ro', 0, ListOffsetsTimestamp.EARLIEST)).offset;
    expect(earliest).toBe(m.remoteLogStartOffset);
    expect(earliest).toBeGreaterThan(0);
    expect((await readAll(broker, 'ro', earliest)).map((r) => r.value)).toEqual(vals.slice(earliest));
    // and the local copies of what expired remotely are gone too
    expect(broker.listTopics()).toHaveLength(1);
    const detail = await broker.adminGetTopic('ro');
    expect(detail.partitionStates[0]!.logStartOffset).toBe(60);
  });

  it('uploads the committed tail within about one interval without a size-based roll', async () => {
    const bucket = await tempDir('lance-tier-tail-');
    const { broker } = await openBroker(bucket, { uploadIntervalMs: 200 });
    await broker.createTopic({ name: 'tail', numPartitions: 1, replicationFactor: -1, assignments: [], configs: {}, validateOnly: false });
    await produceAll(broker, 'tail', values(5));
    const tiering = broker.tieredStorage!;
    // segment.bytes is the default 128 MiB: only the tiering roll can seal this data
    await waitFor('tail uploaded', () => (tiering.manifest('tail', 0)?.segments.at(-1)?.lastOffset ?? -1) === 4, 60_000);
    await produceAll(broker, 'tail', values(4, 5));
    await waitFor('second tail uploaded', () => (tiering.manifest('tail', 0)?.segments.at(-1)?.lastOffset ?? -1) === 8, 60_000);
    const m = tiering.manifest('tail', 0)!;
    expect(m.segments.map((s) => [s.baseOffset, s.lastOffset])).toEqual([[0, 4], [5, 8]]);
  });

  it('a damaged remote segment is never served: CORRUPT, not wrong bytes', async () => {
    const bucket = await tempDir('lance-tier-corrupt-');
    const { broker, dataDir } = await openBroker(bucket, { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 });
    await broker.createTopic({ name: 'dmg', numPartitions: 1, replicationFactor: -1, assignments: [], configs: { 'segment.bytes': '1024' }, validateOnly: false });
    const vals = values(30);
    await produceAll(broker, 'dmg', vals);
    await broker.tieredStorage!.syncNow('dmg', 0);
    const m = broker.tieredStorage!.manifest('dmg', 0)!;
    const victim = m.segments[0]!;
    await broker.close();
    // rewrite the object with one payload byte flipped (a fresh object CRC, so only the entries' CRCs can tell)
    const store = createObjectStore({ backend: 'file', path: bucket } as never);
    cleanup.push(() => store.close());
    const body = await store.get(victim.data.key);
    body[body.length - 5] ^= 0xff;
    await store.put(victim.data.key, body);
    const { broker: b2 } = await openBroker(bucket, { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 }, dataDir);
    await b2.tieredStorage!.syncNow('dmg', 0); // loads the manifest
    let err: unknown;
    try {
      await readAll(b2, 'dmg', 0);
    } catch (e) {
      err = e;
    }
    expect(isLanceError(err) && err.code).toBe('CORRUPT');
    expect(String((err as Error).message)).toContain(victim.data.key);
    // the other segments still read fine
    const rest = await readAll(b2, 'dmg', victim.lastOffset + 1);
    expect(rest.map((r) => r.value)).toEqual(vals.slice(victim.lastOffset + 1));
  });
});
