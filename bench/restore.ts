/**
 * `npm run bench:restore`: restore ≥ 1 GiB from s3rver (`lnc restore`'s code path: restoreDataDir) and, in the same
 * run against the same bucket, a plain parallel GetObject of exactly the same objects into files (same concurrency).
 * Prints both throughputs and their ratio (goal ≥ 0.7). Not part of npm test.
 *
 * Setup (not measured): a standalone data dir with BENCH_PARTITIONS partitions of random (incompressible) 1 MiB
 * record batches, uploaded by TieredStorage (verified uploads, manifests), then one restore point.
 * Env: BENCH_RESTORE_MIB (default 1100), BENCH_PARTITIONS (8), BENCH_CONCURRENCY (8), BENCH_SEGMENT_MIB (64).
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import { randomBytes, randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { silentLogger } from '../broker/src/common/log.ts';
import * as catalog from '../broker/src/storage/catalog.ts';
import { PartitionLog } from '../broker/src/storage/partition-log.ts';
import { EntryType } from '../broker/src/storage/types.ts';
import { encodeRecordBatch } from '../broker/src/server/records.ts';
import { createObjectStore } from '../broker/src/tiering/config.ts';
import { manifestPrefix, newestFirst, decodeManifest } from '../broker/src/tiering/manifest.ts';
import { DR_FORMAT, MetadataUploader, type MetadataSnapshot } from '../broker/src/tiering/metadata-dr.ts';
import { restoreDataDir } from '../broker/src/tiering/restore.ts';
import { TieredStorage } from '../broker/src/tiering/tiered-storage.ts';
import { s3rverConfig, startS3rver } from '../test/s3/harness.ts';

const MiB = 1024 * 1024;
const TOTAL_MIB = Number(process.env.BENCH_RESTORE_MIB ?? 1100);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const SEGMENT_MIB = Number(process.env.BENCH_SEGMENT_MIB ?? 64);
const CLUSTER = 'bench-restore';

const uuidFromHex = (hex: string): string => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;

async function main(): Promise<void> {
  const work = await fsp.mkdtemp(path.join(tmpdir(), 'lance-bench-restore-'));
  const s3 = await startS3rver();
  const cfg = s3rverConfig(s3.endpoint, s3.bucket, { multipartThresholdBytes: 16 * MiB, partSizeBytes: 16 * MiB });
  const store = createObjectStore(cfg);
  try {
    // ---- setup: a data dir with random data, uploaded by TieredStorage
    const src = path.join(work, 'src');
    const meta = await catalog.createTopic(src, 'bench', PARTITIONS, { segmentBytes: SEGMENT_MIB * MiB });
    const topicId = uuidFromHex(meta.uuid);
    const tiering = new TieredStorage({ store, nodeId: 1, logger: silentLogger, settings: { uploadIntervalMs: 3600_000 } });
    const perPartition = Math.ceil(TOTAL_MIB / PARTITIONS);
    const value = Buffer.alloc(256 * 1024);
    const logs: PartitionLog[] = [];
    process.stderr.write(`setup: ${PARTITIONS} partitions × ${perPartition} MiB of random 1 MiB batches, uploading to s3rver...\n`);
    const t0 = Date.now();
    for (let p = 0; p < PARTITIONS; p++) {
      const log = await PartitionLog.open(catalog.partitionDir(src, meta.id, p), { segmentBytes: SEGMENT_MIB * MiB, flush: { mode: 'interval', ms: 50 } });
      logs.push(log);
      for (let i = 0; i < perPartition; i++) {
        const recs = Array.from({ length: 4 }, () => ({ key: null, value: Buffer.from(randomFillSync(value)), headers: [], timestamp: Date.now() }));
        const b = encodeRecordBatch(recs);
        await log.append([{ type: EntryType.DATA, term: 1, offsetCount: b.offsetCount, maxTimestamp: b.maxTimestamp, payload: b.bytes }]).durable;
      }
      await log.flush();
      tiering.addPartition({
        topic: 'bench', ref: { clusterId: CLUSTER, topicId, partition: p }, log, term: () => 1,
        highWatermark: () => log.nextOffset, remoteRetention: () => ({ retentionMs: 0, retentionBytes: 0 }),
      });
    }
    await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => tiering.syncNow('bench', p)));
    const keys: Array<{ key: string; size: number }> = [];
    const partitions: MetadataSnapshot['partitions'] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      const ref = { clusterId: CLUSTER, topicId, partition: p };
      const mk: string[] = [];
      for await (const e of store.list(manifestPrefix(ref))) if (e.kind === 'object') mk.push(e.key);
      const m = decodeManifest(newestFirst(mk)[0]!, await store.get(newestFirst(mk)[0]!));
      for (const s of m.segments) for (const f of [s.data, s.idx, s.tix]) if (f) keys.push({ key: f.key, size: f.size });
      const last = m.segments.at(-1)!;
      partitions.push({ topic: 'bench', partition: p, highWatermark: logs[p]!.nextOffset, logStartOffset: 0, remoteEnd: last.lastOffset + 1, manifestKey: null, remoteBytes: m.segments.reduce((n, s) => n + s.data.size, 0) });
    }
    await tiering.stop();
    for (const l of logs) await l.close();
    const snap: MetadataSnapshot = {
      format: DR_FORMAT, clusterId: CLUSTER, mode: 'standalone', node: 1, takenAt: new Date().toISOString(), takenAtMs: Date.now(),
      topics: [{ name: 'bench', id: meta.id, topicId, partitions: PARTITIONS, config: { ...meta.config } }], partitions, groups: [], producerIdNext: 0,
    };
    await new MetadataUploader({ store, clusterId: CLUSTER, nodeId: 1, logger: silentLogger, intervalMs: 3600_000, retentionMs: 0, collect: async () => snap }).uploadNow();
    await fsp.rm(src, { recursive: true, force: true });
    const totalBytes = keys.reduce((n, k) => n + k.size, 0);
    process.stderr.write(`setup done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${keys.length} objects, ${(totalBytes / MiB).toFixed(0)} MiB\n`);

    // ---- baseline: plain parallel GetObject of the same objects into files
    const raw = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    const baseDir = path.join(work, 'baseline');
    await fsp.mkdir(baseDir);
    const runBaseline = async (): Promise<number> => {
      const tb = Date.now();
      let next = 0;
      const order = [...keys].sort((a, b) => b.size - a.size);
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < order.length) {
          const k = order[next++]!;
          const r = await raw.send(new GetObjectCommand({ Bucket: s3.bucket, Key: k.key }));
          const file = path.join(baseDir, randomBytes(8).toString('hex'));
          await pipeline(r.Body as Readable, createWriteStream(file));
          const fh = await fsp.open(file, 'r+');
          await fh.sync();
          await fh.close();
        }
      }));
      return (Date.now() - tb) / 1000;
    };
    // ---- lnc restore's code path
    const runRestore = async (i: number): Promise<number> => {
      const dir = path.join(work, `restored-${i}`);
      const tr = Date.now();
      const report = await restoreDataDir({ store, dataDir: dir, nodeId: 1, concurrency: CONCURRENCY });
      const secs = (Date.now() - tr) / 1000;
      if (report.bytes !== totalBytes) throw new Error(`restored ${report.bytes} bytes, expected ${totalBytes}`);
      await fsp.rm(dir, { recursive: true, force: true });
      return secs;
    };
    // alternate, twice each, so cache/warm-up effects hit both sides alike; the best of each counts
    const b1 = await runBaseline();
    await fsp.rm(baseDir, { recursive: true, force: true });
    await fsp.mkdir(baseDir);
    const r1 = await runRestore(1);
    const r2 = await runRestore(2);
    const b2 = await runBaseline();
    const base = Math.min(b1, b2);
    const rest = Math.min(r1, r2);
    const mibps = (s: number): string => (totalBytes / MiB / s).toFixed(0);
    const ratio = base / rest;
    const lines = [
      `restore bench: ${(totalBytes / MiB).toFixed(0)} MiB in ${keys.length} objects from s3rver (${PARTITIONS} partitions, ${SEGMENT_MIB} MiB segments, concurrency ${CONCURRENCY})`,
      `  plain parallel GetObject → files: ${base.toFixed(2)} s (${mibps(base)} MiB/s)   [runs: ${b1.toFixed(2)}, ${b2.toFixed(2)}]`,
      `  lnc restore (restoreDataDir):     ${rest.toFixed(2)} s (${mibps(rest)} MiB/s)   [runs: ${r1.toFixed(2)}, ${r2.toFixed(2)}]`,
      `  ratio restore / plain GetObject throughput: ${ratio.toFixed(2)} (goal ≥ 0.7) ${ratio >= 0.7 ? 'OK' : 'BELOW GOAL'}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    raw.destroy();
  } finally {
    await store.close().catch(() => undefined);
    await s3.stop();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

await main();
