/**
 * Tiered segments against s3rver over HTTP: (1) the real `lance` process configured with the seed's env names,
 * produced to and consumed from offset 0 with kafkajs after every local segment but the active one was deleted;
 * (2) a LocalBroker whose object store goes through the fault proxy (500s, resets, stalls, lost and corrupted
 * uploads, a lost multipart part, corrupted downloads): no local segment is deleted before a verified upload,
 * uploads resume when the faults stop, and a corrupted remote read is CORRUPT, never wrong bytes.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLanceError } from '../../broker/src/common/errors.ts';
import { silentLogger } from '../../broker/src/common/log.ts';
import { ListOffsetsTimestamp } from '../../broker/src/kafka/backend.ts';
import { validateConfig } from '../../broker/src/server/config.ts';
import { LocalBroker } from '../../broker/src/server/local-broker.ts';
import { BrokerMetrics } from '../../broker/src/server/metrics.ts';
import { decodeRecordBatches, encodeRecordBatch } from '../../broker/src/server/records.ts';
import { createObjectStore, type ObjectStoreConfig } from '../../broker/src/tiering/config.ts';
import { decodeManifest, manifestPrefix, newestFirst } from '../../broker/src/tiering/manifest.ts';
import type { ObjectStore } from '../../broker/src/tiering/object-store.ts';
import { startLance, waitFor, type LanceProcess } from '../kafka/helpers/broker.ts';
import { KafkajsPartitionReader } from '../kafka/helpers/kafkajs-reader.ts';
import { op, startFaultProxy, type FaultProxy } from '../s3/fault-proxy.ts';
import { s3rverConfig, startS3rver, type S3rverHandle } from '../s3/harness.ts';

const MiB = 1024 * 1024;
let s3: S3rverHandle;
let direct: ObjectStore;
const dirs: string[] = [];
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  s3 = await startS3rver();
  direct = createObjectStore(s3rverConfig(s3.endpoint, s3.bucket));
});
afterAll(async () => {
  await direct?.close();
  await s3?.stop();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const values = (n: number, from = 0, pad = 80): string[] => Array.from({ length: n }, (_, i) => `v-${String(from + i).padStart(6, '0')}-${'y'.repeat(pad)}`);

async function newestManifest(prefix: string) {
  const keys: string[] = [];
  for await (const e of direct.list(prefix)) if (e.kind === 'object') keys.push(e.key);
  const k = newestFirst(keys)[0];
  return k === undefined ? undefined : decodeManifest(k, await direct.get(k));
}

describe('tiering: the lance process against s3rver (seed env names)', () => {
  let lance: LanceProcess | undefined;
  afterEach(async () => {
    await lance?.stop('SIGKILL');
    lance = undefined;
  });

  it('uploads, deletes local segments after verified upload, and kafkajs reads everything from offset 0', async () => {
    const dataDir = await tempDir('lance-tier-proc-');
    lance = await startLance({
      dataDir,
      env: {
        OBJECT_STORE_BACKEND: 's3', S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER',
        S3_PATH_STYLE: 'true', OBJECT_STORE_PREFIX: 'proc',
        LANCE_SEGMENT_BYTES: '4096', LANCE_TIERING_UPLOAD_INTERVAL_MS: '300', LANCE_TIERING_LOCAL_RETENTION_BYTES: '1',
      },
    });
    const kafka = new Kafka({ brokers: [lance.bootstrap], clientId: 'tiering-test', logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    const admin = kafka.admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    await admin.createTopics({ topics: [{ topic: 'events', numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    const vals = values(300);
    for (let i = 0; i < vals.length; i += 20) {
      await producer.send({ topic: 'events', acks: -1, messages: vals.slice(i, i + 20).map((value, j) => ({ key: `k${i + j}`, value })) });
    }
    const topicId = (await admin.fetchTopicMetadata({ topics: ['events'] })).topics[0]!;
    expect(topicId.name).toBe('events');
    const topicDir = (await readdir(dataDir)).find((d) => d.startsWith('topic_'))!;
    const partDir = path.join(dataDir, topicDir, '0');
    // everything uploaded (the tail too, without a size roll) and every local segment but the empty active one gone
    let prefix = '';
    await waitFor('all data in the bucket and local segments deleted', async () => {
      const lnc = (await readdir(partDir)).filter((f) => f.endsWith('.lnc'));
      if (lnc.length !== 1 || lnc[0] !== `${String(300).padStart(20, '0')}.lnc`) return false;
      if (!prefix) {
        for await (const e of direct.list('proc/clusters/')) {
          if (e.kind === 'object' && e.key.includes('/manifest/')) {
            prefix = e.key.slice(0, e.key.indexOf('/manifest/') + '/manifest/'.length);
            break;
          }
        }
      }
      const m = prefix ? await newestManifest(prefix) : undefined;
      return m?.segments.at(-1)?.lastOffset === 299;
    }, 90_000, 200);
    const m = (await newestManifest(prefix))!;
    expect(m.segments[0]!.baseOffset).toBe(0);
    expect(m.segments.length).toBeGreaterThan(3);
    const offsets = await admin.fetchTopicOffsets('events');
    expect(offsets[0]).toMatchObject({ partition: 0, low: '0', high: '300' });

    const reader = new KafkajsPartitionReader([lance.bootstrap]);
    await reader.connect();
    cleanup.push(() => reader.disconnect());
    const got = await reader.readToEnd('events', 0, 0);
    expect(got.map((r) => r.offset)).toEqual(vals.map((_, i) => i));
    expect(got.map((r) => r.value)).toEqual(vals);
    expect(got[7]!.key).toBe('k7');

    const metrics = await (await fetch(`http://127.0.0.1:${lance.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/lance_tiering_segments_uploaded_total [1-9]/);
    expect(metrics).toMatch(/lance_tiering_bytes_uploaded_total [1-9]/);
    expect(metrics).toMatch(/lance_tiering_remote_fetch_bytes_total [1-9]/);
    expect(metrics).toMatch(/lance_object_store_requests_total\{op="PutObject",outcome="ok"\} [1-9]/);
  });
});

describe('tiering through the fault proxy', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3.endpoint, { seed: 7 });
  });
  afterAll(async () => {
    await proxy?.close();
  });
  afterEach(() => proxy.clearRules());

  /** small bounds so that giving up takes seconds; generous for a loaded 2-core box */
  const faulty = (prefix: string): ObjectStoreConfig => s3rverConfig(proxy.endpoint, s3.bucket, {
    prefix, maxAttempts: 2, retryBaseDelayMs: 10, retryMaxDelayMs: 50, verifyAttempts: 2,
    idleTimeoutMs: 3000, requestTimeoutMs: 3000, minThroughputBytesPerSec: 16 * MiB, connectTimeoutMs: 2000,
    multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, partConcurrency: 2,
  });

  async function open(prefix: string, segmentBytes: number): Promise<LocalBroker> {
    const config = validateConfig({
      dataDir: await tempDir('lance-tier-fault-'),
      storage: { retentionCheckIntervalMs: 3_600_000 },
      objectStore: faulty(prefix),
      tiering: { uploadIntervalMs: 3_600_000, localRetentionBytes: 1 },
    });
    const broker = await LocalBroker.open({ config, clusterId: 'c1', nodeId: 1, logger: silentLogger, metrics: new BrokerMetrics() });
    cleanup.push(() => broker.close());
    await broker.createTopic({ name: 't', numPartitions: 1, replicationFactor: -1, assignments: [], configs: { 'segment.bytes': String(segmentBytes) }, validateOnly: false });
    return broker;
  }

  async function produce(b: LocalBroker, vals: string[], perBatch: number): Promise<void> {
    for (let i = 0; i < vals.length; i += perBatch) {
      const batch = encodeRecordBatch(vals.slice(i, i + perBatch).map((v) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: Date.now() })));
      await b.produce('t', 0, [batch], -1, 30_000);
    }
  }

  async function readAll(b: LocalBroker, from: number, maxBytes = 4 * MiB): Promise<string[]> {
    const out: string[] = [];
    let next = from;
    for (;;) {
      const r = await b.fetch('t', 0, next, maxBytes);
      for (const rec of decodeRecordBatches(r.records)) {
        if (rec.offset < next) continue;
        out.push(rec.value!.toString());
        next = rec.offset + 1;
      }
      if (next >= r.highWatermark) return out;
      if (r.records.length === 0) throw new Error(`fetch at ${next} returned nothing below ${r.highWatermark}`);
    }
  }

  const localStart = async (b: LocalBroker): Promise<number> => (await b.adminGetTopic('t')).partitionStates[0]!.logStartOffset;

  it('no local segment is deleted before a verified upload; uploads resume; corrupt reads are CORRUPT', async () => {
    const b = await open('faults', 1024);
    const vals = values(60);
    await produce(b, vals, 3);
    const tiering = b.tieredStorage!;
    const faults: { name: string; action: Parameters<FaultProxy['addRule']>[0]['action'] }[] = [
      { name: '500', action: { kind: 'error', status: 500 } },
      { name: 'reset', action: { kind: 'reset' } },
      { name: 'stall', action: { kind: 'stall' } },
      // the object IS stored, the answer is lost: still not in a manifest, so still not deletable locally
      { name: 'lose-response', action: { kind: 'lose-response' } },
      { name: 'lose', action: { kind: 'lose' } },
      { name: 'corrupt-request', action: { kind: 'corrupt-request' } },
    ];
    for (const f of faults) {
      const remove = proxy.addRule({ name: f.name, match: op('PutObject'), action: f.action });
      const err = await tiering.syncNow('t', 0).then(() => null, (e: unknown) => e);
      remove();
      expect(err, `pass under fault ${f.name}`).not.toBeNull();
      expect(proxy.fired(f.name)).toBeGreaterThan(0);
      await b.enforceRetention();
      expect(await localStart(b), `local segments after fault ${f.name}`).toBe(0);
      expect(tiering.manifest('t', 0)?.segments ?? []).toEqual([]);
    }
    expect(await readAll(b, 0)).toEqual(vals);

    // faults stop: the next pass uploads everything, then local retention deletes the verified segments
    await tiering.syncNow('t', 0);
    const m = tiering.manifest('t', 0)!;
    expect(m.segments.at(-1)!.lastOffset).toBe(59);
    expect(await localStart(b)).toBe(60);
    // every recorded object is really stored with the recorded size and checksum (checked directly, not via the proxy)
    for (const s of m.segments) {
      const info = await direct.head(`faults/${s.data.key}`);
      expect(info?.size).toBe(s.data.size);
      expect(info?.metadata['lance-crc32c']).toBe(s.data.crc32c);
    }

    // downloads damaged in transit: range reads are checked entry by entry → CORRUPT, never wrong bytes
    const removeCorrupt = proxy.addRule({ name: 'corrupt-get', match: (r) => r.op === 'GetObject' && r.key.endsWith('.lnc'), action: { kind: 'corrupt-response' } });
    const err = await readAll(b, 0).then(() => null, (e: unknown) => e);
    removeCorrupt();
    expect(isLanceError(err) && err.code).toBe('CORRUPT');
    expect(proxy.fired('corrupt-get')).toBeGreaterThanOrEqual(2); // read, then re-read once
    // once the path is clean the same offsets read correctly (nothing damaged was cached)
    expect(await readAll(b, 0)).toEqual(vals);
    expect((await b.listOffsets('t', 0, ListOffsetsTimestamp.EARLIEST)).offset).toBe(0);
  });

  it('a lost multipart part fails the upload and keeps the local segment; the retry uploads it', async () => {
    const b = await open('multipart', 6 * MiB);
    // ~6.5 MiB: one sealed segment above the 5 MiB multipart threshold plus the tail
    const vals = values(13, 0, 512 * 1024);
    await produce(b, vals, 1);
    const tiering = b.tieredStorage!;
    const remove = proxy.addRule({ name: 'lost-part', match: op('UploadPart'), action: { kind: 'lose' }, times: 1 });
    const outcome = await tiering.syncNow('t', 0).then(() => 'ok', (e: unknown) => e);
    remove();
    expect(proxy.fired('lost-part')).toBe(1);
    // Whether the store's own retries cured it within the pass or the pass failed, nothing unverified was deleted:
    const m1 = tiering.manifest('t', 0);
    const start1 = await localStart(b);
    if (outcome !== 'ok') expect(start1).toBe(0);
    for (const s of (await b.adminGetTopic('t')).partitionStates) expect(s.logStartOffset).toBeLessThanOrEqual((m1?.segments.at(-1)?.lastOffset ?? -1) + 1);
    await tiering.syncNow('t', 0);
    const m = tiering.manifest('t', 0)!;
    expect(m.segments.at(-1)!.lastOffset).toBe(12);
    expect(m.segments.some((s) => s.data.size > 5 * MiB)).toBe(true);
    expect(await localStart(b)).toBe(13);
    expect(await readAll(b, 0)).toEqual(vals);
  });
});
