/**
 * Disaster recovery against s3rver over HTTP with real `lance` and `lnc` processes:
 *  - the seed's "Simulate Complete Node Loss": topics, produce, committed group offsets, wait for a restore point
 *    that covers everything, SIGKILL, delete the data dir, start a fresh broker on an empty dir with the same
 *    bucket → topics, committed offsets and every record are back (cold-start recovery); RPO printed;
 *  - point in time: `lnc restore --time T` between two produce waves → exactly the first wave; the restored broker
 *    (same cluster id, same bucket) keeps uploading after the cut;
 *  - faults: downloads damaged in transit are retried, a damaged object in the bucket stops the restore (CORRUPT,
 *    exit 1) and leaves no node.json behind; an empty bucket says "no restore point in <url>".
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { listRestorePoints } from '../../broker/src/tiering/metadata-dr.ts';
import type { ObjectStore } from '../../broker/src/tiering/object-store.ts';
import { startLance, waitFor, type LanceProcess } from '../kafka/helpers/broker.ts';
import { KafkajsPartitionReader } from '../kafka/helpers/kafkajs-reader.ts';
import { startFaultProxy } from '../s3/fault-proxy.ts';
import { s3rverConfig, startS3rver, type S3rverHandle } from '../s3/harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let s3: S3rverHandle;
const dirs: string[] = [];
const cleanup: (() => Promise<unknown>)[] = [];
const procs: LanceProcess[] = [];

beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.stop();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  for (const p of procs.splice(0)) await p.stop('SIGKILL').catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function storeFor(prefix: string): ObjectStore {
  const st = createObjectStore(s3rverConfig(s3.endpoint, s3.bucket, { prefix }));
  cleanup.push(() => st.close());
  return st;
}

const s3Env = (prefix: string, endpoint = s3.endpoint): Record<string, string> => ({
  OBJECT_STORE_BACKEND: 's3', S3_ENDPOINT: endpoint, S3_BUCKET: s3.bucket, S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER',
  S3_PATH_STYLE: 'true', OBJECT_STORE_PREFIX: prefix,
  LANCE_TIERING_UPLOAD_INTERVAL_MS: '300', LANCE_METADATA_UPLOAD_INTERVAL_MS: '300', LANCE_SEGMENT_BYTES: '8192',
});

async function start(dataDir: string, env: Record<string, string>): Promise<LanceProcess> {
  const p = await startLance({ dataDir, env });
  procs.push(p);
  return p;
}

/** Runs `lnc` as a process; resolves with its exit code and output. */
function lnc(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run('bin/lnc.js', args, env);
}

function run(bin: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, bin), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const lncEnv = { S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER' };
const fromUrl = (prefix: string, endpoint = s3.endpoint): string => `s3://${s3.bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&forcePathStyle=true`;

function kafkaOf(p: LanceProcess): Kafka {
  return new Kafka({ brokers: [p.bootstrap], clientId: 'dr-test', logLevel: logLevel.NOTHING, retry: { retries: 5 } });
}

async function connectAdmin(p: LanceProcess): Promise<Admin> {
  const admin = kafkaOf(p).admin();
  await admin.connect();
  cleanup.push(() => admin.disconnect());
  return admin;
}

async function produce(p: LanceProcess, topic: string, partition: number, values: string[], timestamp?: number): Promise<void> {
  const producer = kafkaOf(p).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let i = 0; i < values.length; i += 25) {
      await producer.send({ topic, acks: -1, messages: values.slice(i, i + 25).map((value) => ({ partition, value, ...(timestamp !== undefined ? { timestamp: String(timestamp) } : {}) })) });
    }
  } finally {
    await producer.disconnect();
  }
}

async function readAll(p: LanceProcess, topic: string, partition: number): Promise<string[]> {
  const reader = new KafkajsPartitionReader([p.bootstrap]);
  await reader.connect();
  try {
    return (await reader.readToEnd(topic, partition, 0)).map((r) => r.value ?? '');
  } finally {
    await reader.disconnect();
  }
}

const vals = (tag: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${tag}-${String(i).padStart(5, '0')}-${'x'.repeat(60)}`);

/** Waits for a restore point that has every topic and no records still missing from the bucket. */
async function waitForCoveringRestorePoint(store: ObjectStore, topics: string[], after: number, groups = 0): Promise<number> {
  let at = 0;
  await waitFor('a restore point covering every record', async () => {
    const pts = await listRestorePoints(store);
    const ok = pts.filter((x) => x.point && x.takenAtMs >= after && x.point.unuploadedRecords === 0 && x.point.groups >= groups
      && topics.every((t) => x.point!.topics.some((y) => y.name === t)));
    if (ok.length === 0) return false;
    at = ok[0]!.takenAtMs;
    return true;
  }, 90_000, 200);
  return at;
}

describe('DR: complete node loss (standalone) against s3rver', () => {
  it('SIGKILL + wiped data dir → a fresh broker restores topics, committed offsets and every record from the bucket', async () => {
    const prefix = 'drill';
    const env = s3Env(prefix);
    const dataDir = await tempDir('lance-dr-a-');
    const a = await start(dataDir, env);
    const admin = await connectAdmin(a);
    await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 2 }, { topic: 'audit', numPartitions: 1 }], waitForLeaders: true });
    const orders0 = vals('o0', 300);
    const orders1 = vals('o1', 120);
    const audit = vals('a', 50);
    await produce(a, 'orders', 0, orders0);
    await produce(a, 'orders', 1, orders1);
    await produce(a, 'audit', 0, audit);
    const lastAck = Date.now();
    // a consumer group commits offsets
    await admin.setOffsets({ groupId: 'billing', topic: 'orders', partitions: [{ partition: 0, offset: '200' }, { partition: 1, offset: '120' }] });
    await admin.setOffsets({ groupId: 'billing', topic: 'audit', partitions: [{ partition: 0, offset: '7' }] });
    const before = await admin.fetchOffsets({ groupId: 'billing', topics: ['orders', 'audit'] });
    expect(before.find((t) => t.topic === 'orders')!.partitions.find((p) => p.partition === 0)!.offset).toBe('200');

    const store = storeFor(prefix);
    const covered = await waitForCoveringRestorePoint(store, ['orders', 'audit'], lastAck, 1);
    const rpoSeconds = (covered - lastAck) / 1000;
    process.stdout.write(`DR drill: last acknowledged write → first restore point covering it: ${rpoSeconds.toFixed(2)} s (metadata interval 0.3 s, upload interval 0.3 s)\n`);
    const metricsA = await (await fetch(`http://127.0.0.1:${a.adminPort}/metrics`)).text();
    expect(metricsA).toMatch(/lance_metadata_snapshots_uploaded_total [1-9]/);
    expect(metricsA).toMatch(/lance_dr_rpo_seconds \d/);

    // the disaster: SIGKILL, the disk is gone
    await a.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    const t0 = Date.now();
    const fresh = await tempDir('lance-dr-b-');
    const b = await start(fresh, { ...env, LANCE_LOG_LEVEL: 'info' });
    process.stdout.write(`DR drill: cold start on an empty data dir until ready: ${((Date.now() - t0) / 1000).toFixed(2)} s\n`);
    expect(b.output()).toContain('cold start: restored 2 topic(s), 1 group(s)');
    const info = JSON.parse(await readFile(path.join(fresh, 'restore-info.json'), 'utf8')) as { restorePoint: { key: string } };
    expect(info.restorePoint.key).toContain('/restore-points/');

    const admin2 = await connectAdmin(b);
    expect((await admin2.listTopics()).sort()).toEqual(['audit', 'orders']);
    const after = await admin2.fetchOffsets({ groupId: 'billing', topics: ['orders', 'audit'] });
    const norm = (x: typeof after) => x.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => ({ partition: p.partition, offset: p.offset })).sort((m, n) => m.partition - n.partition) })).sort((m, n) => m.topic.localeCompare(n.topic));
    expect(norm(after)).toEqual(norm(before));
    expect(await readAll(b, 'orders', 0)).toEqual(orders0);
    expect(await readAll(b, 'orders', 1)).toEqual(orders1);
    expect(await readAll(b, 'audit', 0)).toEqual(audit);
    const metricsB = await (await fetch(`http://127.0.0.1:${b.adminPort}/metrics`)).text();
    expect(metricsB).toMatch(/lance_dr_recovery_duration_seconds [0-9.]*[1-9]/);
    // the restored broker serves writes and keeps backing up
    await produce(b, 'audit', 0, vals('a2', 10));
    expect((await readAll(b, 'audit', 0)).length).toBe(60);
  }, 240_000);
});

describe('DR: point-in-time restore', () => {
  it('lnc restore --time between two waves → exactly the first wave; the restored broker keeps uploading after the cut', async () => {
    const prefix = 'pitr';
    const env = s3Env(prefix);
    const a = await start(await tempDir('lance-pitr-a-'), env);
    const admin = await connectAdmin(a);
    await admin.createTopics({ topics: [{ topic: 'ledger', numPartitions: 2 }], waitForLeaders: true });
    const w1p0 = vals('w1p0', 150);
    const w1p1 = vals('w1p1', 40);
    const startedAt = Date.now();
    await produce(a, 'ledger', 0, w1p0);
    await produce(a, 'ledger', 1, w1p1);
    await admin.setOffsets({ groupId: 'g', topic: 'ledger', partitions: [{ partition: 0, offset: '150' }] });
    const store = storeFor(prefix);
    await waitForCoveringRestorePoint(store, ['ledger'], Date.now(), 1);
    // T: after a restore point holding wave 1, before every record of wave 2 (producer timestamps are Date.now())
    const T = Date.now();
    await waitFor('the clock to pass T', () => Date.now() > T + 1, 5000, 1);
    await produce(a, 'ledger', 0, vals('w2p0', 80));
    await produce(a, 'ledger', 1, vals('w2p1', 30));
    await admin.setOffsets({ groupId: 'g', topic: 'ledger', partitions: [{ partition: 0, offset: '230' }] });
    await waitForCoveringRestorePoint(store, ['ledger'], Date.now(), 1);
    await a.stop('SIGKILL');

    const list = await lnc(['backups', 'list', '--from', fromUrl(prefix), '--json'], lncEnv);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { restorePoints: Array<{ time: string; topics: string[] }> };
    expect(listed.restorePoints.length).toBeGreaterThan(1);
    expect(listed.restorePoints.at(-1)!.topics).toEqual(['ledger']);

    const target = await tempDir('lance-pitr-b-');
    // no restore point is that old
    const tooEarly = await lnc(['restore', '--from', fromUrl(prefix), '--data-dir', target, '--time', new Date(startedAt - 3600_000).toISOString()], lncEnv);
    expect(tooEarly.code).toBe(2);
    expect(tooEarly.stderr).toMatch(/NOT_FOUND: no restore point taken at or before/);

    const r = await lnc(['restore', '--from', fromUrl(prefix), '--data-dir', target, '--time', new Date(T).toISOString(), '--node-id', '1', '--json'], lncEnv);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { partitions: Array<{ partition: number; nextOffset: number; truncatedAt: number | null }> };
    expect(rep.partitions.map((p) => [p.partition, p.nextOffset, p.truncatedAt])).toEqual([[0, 150, 150], [1, 40, 40]]);

    // the restored broker, on the same bucket and cluster id
    const b = await start(target, env);
    expect(await readAll(b, 'ledger', 0)).toEqual(w1p0);
    expect(await readAll(b, 'ledger', 1)).toEqual(w1p1);
    const admin2 = await connectAdmin(b);
    const off = await admin2.fetchOffsets({ groupId: 'g', topics: ['ledger'] });
    expect(off[0]!.partitions.find((p) => p.partition === 0)!.offset).toBe('150');
    // new writes continue after the cut and reach the bucket (no overlap with the superseded remote history)
    const w3 = vals('w3', 20);
    await produce(b, 'ledger', 0, w3);
    expect(await readAll(b, 'ledger', 0)).toEqual([...w1p0, ...w3]);
    await waitForCoveringRestorePoint(store, ['ledger'], Date.now());
    const metrics = await (await fetch(`http://127.0.0.1:${b.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/lance_tiering_upload_errors_total 0/);
  }, 240_000);
});

describe('DR: faults and errors', () => {
  it('an empty bucket: "no restore point in <url>"; a data dir with data is refused', async () => {
    const target = await tempDir('lance-dr-empty-');
    const r = await lnc(['restore', '--from', fromUrl('nothing-here'), '--data-dir', target], lncEnv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NOT_FOUND: no restore point in s3:\/\/lance-test\/nothing-here/);
    expect(await readdir(target)).toEqual([]);
    await writeFile(path.join(target, 'node.json'), '{}');
    const busy = await lnc(['restore', '--from', fromUrl('nothing-here'), '--data-dir', target], lncEnv);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/CONFLICT: --data-dir .*: not empty \(node\.json\)/);
  });

  it('downloads damaged in transit are retried; a damaged object in the bucket is never used (CORRUPT, no node.json)', async () => {
    const prefix = 'faults';
    const env = s3Env(prefix);
    const a = await start(await tempDir('lance-dr-f-'), env);
    const admin = await connectAdmin(a);
    await admin.createTopics({ topics: [{ topic: 't', numPartitions: 1 }], waitForLeaders: true });
    const data = vals('f', 400);
    await produce(a, 't', 0, data);
    const store = storeFor(prefix);
    await waitForCoveringRestorePoint(store, ['t'], Date.now());
    await a.stop('SIGKILL');

    // 1. through a proxy that corrupts and cuts GetObject responses now and then: retried, the data is exact
    const proxy = await startFaultProxy(s3.endpoint, { seed: 11 });
    cleanup.push(() => proxy.close());
    const seg = (q: { op: string; key: string }): boolean => q.op === 'GetObject' && q.key.endsWith('.lnc');
    proxy.addRule({ name: 'corrupt', match: seg, action: { kind: 'corrupt-response' }, times: 2 });
    proxy.addRule({ name: 'cut', match: seg, action: { kind: 'cut-response', afterBytes: 100 }, times: 2 });
    const t1 = await tempDir('lance-dr-f1-');
    const ok = await lnc(['restore', '--from', fromUrl(prefix, proxy.endpoint), '--data-dir', t1, '--json'], lncEnv);
    expect(ok.code, ok.stderr).toBe(0);
    expect(proxy.fired('corrupt') + proxy.fired('cut')).toBe(4);
    const b = await start(t1, {});
    expect(await readAll(b, 't', 0)).toEqual(data);

    // 2. a segment object damaged in the bucket (rewritten with other bytes: its own checksum matches, the
    //    manifest's does not) → CORRUPT, and the data dir is not a usable one (no node.json, marker left)
    let segKey = '';
    for await (const e of store.list('clusters/')) if (e.kind === 'object' && e.key.endsWith('.lnc')) segKey = e.key;
    expect(segKey).not.toBe('');
    const body = await store.get(segKey);
    body[body.length - 5] ^= 0xff;
    await store.put(segKey, body);
    const t2 = await tempDir('lance-dr-f2-');
    const bad = await lnc(['restore', '--from', fromUrl(prefix), '--data-dir', t2], lncEnv);
    expect(bad.code).toBe(1); // lnc: CORRUPT = a problem found in the data
    expect(bad.stderr).toMatch(/CORRUPT: object .*\.lnc: .* the manifest recorded/);
    await expect(stat(path.join(t2, 'node.json'))).rejects.toThrow();
    // a broker refuses the half-restored dir when it cannot redo the restore itself
    const refused = await run('bin/lance.js', ['--standalone', '--data-dir', t2, '--host', '127.0.0.1', '--kafka-port', '0', '--admin-port', '0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/CONFLICT: .*restore-in-progress\.json: a restore into this data dir did not finish/);
  }, 240_000);
});
