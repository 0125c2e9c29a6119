import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LanceError } from '../common/errors.ts';
import { silentLogger } from '../common/log.ts';
import { ListOffsetsTimestamp } from '../kafka/backend.ts';
import { validateConfig } from './config.ts';
import { LocalBroker, parseKafkaTopicConfigs } from './local-broker.ts';
import * as catalog from '../storage/catalog.ts';
import { BrokerMetrics } from './metrics.ts';
import { decideIdentity, ensureNodeIdentity } from './node-identity.ts';
import { acquireDataDirLock, isLiveBroker, isStale, type LockHolder } from './data-dir-lock.ts';
import { hostname } from 'node:os';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { decodeRecordBatches, encodeRecordBatch } from './records.ts';

const dirs: string[] = [];
const brokers: LocalBroker[] = [];
afterEach(async () => {
  for (const b of brokers.splice(0)) await b.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function open(extra: Record<string, unknown> = {}, dataDir?: string): Promise<{ broker: LocalBroker; dataDir: string; metrics: BrokerMetrics }> {
  const dir = dataDir ?? (await mkdtemp(path.join(tmpdir(), 'lance-lb-')));
  if (!dataDir) dirs.push(dir);
  const config = validateConfig({ dataDir: dir, ...extra });
  const metrics = new BrokerMetrics();
  const broker = await LocalBroker.open({ config, clusterId: 'c1', nodeId: 1, logger: silentLogger, metrics });
  brokers.push(broker);
  return { broker, dataDir: dir, metrics };
}

function batch(values: string[], ts = 1_700_000_000_000) {
  return encodeRecordBatch(values.map((v, i) => ({ key: null, value: Buffer.from(v), headers: [], timestamp: ts + i })));
}

const create = (b: LocalBroker, name: string, numPartitions = 1, configs: Record<string, string | null> = {}) =>
  b.createTopic({ name, numPartitions, replicationFactor: -1, assignments: [], configs, validateOnly: false });

describe('LocalBroker', () => {
  it('produces with acks 1/-1/0, fetches only durable data, and survives a reopen', async () => {
    const { broker, dataDir } = await open();
    const t = await create(broker, 'orders', 2);
    expect(t.numPartitions).toBe(2);
    expect(t.topicId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(broker.getTopicById(t.topicId)?.name).toBe('orders');

    const hw: number[] = [];
    const off = broker.onHighWatermark((topic, p, h) => topic === 'orders' && p === 0 && hw.push(h));
    const r1 = await broker.produce('orders', 0, [batch(['a', 'b'])], 1, 10_000);
    const r2 = await broker.produce('orders', 0, [batch(['c'])], -1, 10_000);
    expect([r1.baseOffset, r2.baseOffset]).toEqual([0, 2]);
    expect(hw.at(-1)).toBe(3);
    off();
    // acks=0 answers at once; the data becomes visible when its fsync lands
    const r3 = await broker.produce('orders', 0, [batch(['d', 'e'])], 0, 10_000);
    expect(r3.baseOffset).toBe(3);
    await broker.waitForData('orders', 0, 4, 30_000);
    const f = await broker.fetch('orders', 0, 0, 1 << 20);
    expect(f.highWatermark).toBe(5);
    expect(decodeRecordBatches(f.records).map((r) => [r.offset, r.value?.toString()])).toEqual([[0, 'a'], [1, 'b'], [2, 'c'], [3, 'd'], [4, 'e']]);
    // a fetch in the middle of a batch returns that whole batch (clients skip the records before their offset)
    expect(decodeRecordBatches((await broker.fetch('orders', 0, 1, 1)).records).map((r) => r.offset)).toEqual([0, 1]);
    expect((await broker.fetch('orders', 0, 5, 1 << 20)).records.length).toBe(0);
    await expect(broker.fetch('orders', 0, 6, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expect(broker.produce('orders', 7, [batch(['x'])], 1, 1000)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(broker.produce('nope', 0, [batch(['x'])], 1, 1000)).rejects.toMatchObject({ code: 'NOT_FOUND' });

    expect(await broker.listOffsets('orders', 0, ListOffsetsTimestamp.EARLIEST)).toMatchObject({ offset: 0 });
    expect(await broker.listOffsets('orders', 0, ListOffsetsTimestamp.LATEST)).toMatchObject({ offset: 5 });
    expect(await broker.listOffsets('orders', 0, 1_700_000_000_001)).toMatchObject({ offset: 0, timestamp: 1_700_000_000_001 });
    expect(await broker.listOffsets('orders', 0, 1_800_000_000_000)).toMatchObject({ offset: -1 });
    expect(await broker.listOffsets('orders', 0, ListOffsetsTimestamp.MAX_TIMESTAMP)).toMatchObject({ offset: 4, timestamp: 1_700_000_000_001 });

    await broker.close();
    const again = await open({}, dataDir);
    expect(again.broker.listTopics().map((x) => x.name)).toEqual(['orders']);
    expect((await again.broker.fetch('orders', 0, 0, 1 << 20)).highWatermark).toBe(5);
    expect(again.broker.getTopic('orders')?.topicId).toBe(t.topicId);
  });

  it('validates topic creation like Kafka and keeps create/delete consistent on disk', async () => {
    const { broker, dataDir } = await open();
    await expect(create(broker, 'bad name')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: expect.objectContaining({ field: 'topic' }) });
    await expect(create(broker, 'x', 0)).rejects.toMatchObject({ details: expect.objectContaining({ field: 'numPartitions' }) });
    await expect(broker.createTopic({ name: 'x', numPartitions: 1, replicationFactor: 3, assignments: [], configs: {}, validateOnly: false }))
      .rejects.toMatchObject({ details: expect.objectContaining({ field: 'replicationFactor' }) });
    await expect(create(broker, 'x', 1, { 'retention.ms': '0' })).rejects.toThrow(/use -1 for unlimited/);
    await expect(create(broker, 'x', 1, { 'compression.type': 'gzip' })).rejects.toMatchObject({ details: expect.objectContaining({ field: 'config', key: 'compression.type' }) });
    const dry = await broker.createTopic({ name: 'x', numPartitions: 2, replicationFactor: 1, assignments: [], configs: {}, validateOnly: true });
    expect(dry.numPartitions).toBe(2);
    expect(broker.listTopics()).toEqual([]);

    await create(broker, 'x', 1, { 'retention.ms': '-1', 'retention.bytes': '1048576' });
    await expect(create(broker, 'x')).rejects.toMatchObject({ code: 'CONFLICT' });
    const cfg = await broker.describeTopicConfigs('x');
    expect(cfg.find((c) => c.name === 'retention.ms')).toMatchObject({ value: '-1', source: 'TOPIC' });
    expect(cfg.find((c) => c.name === 'retention.bytes')).toMatchObject({ value: '1048576', source: 'TOPIC' });
    expect(cfg.find((c) => c.name === 'cleanup.policy')).toMatchObject({ value: 'delete', readOnly: true });

    // non-incremental alter: keys not given revert to the defaults
    await broker.alterTopicConfigs('x', { 'retention.bytes': '2097152' }, false);
    const after = await broker.describeTopicConfigs('x');
    expect(after.find((c) => c.name === 'retention.ms')).toMatchObject({ value: '604800000', isDefault: true });
    expect(after.find((c) => c.name === 'retention.bytes')).toMatchObject({ value: '2097152' });
    const meta = JSON.parse(await readFile(path.join(dataDir, 'topic_1', 'topic.json'), 'utf8')) as { config: { retentionBytes: number } };
    expect(meta.config.retentionBytes).toBe(2097152);

    await broker.deleteTopic('x');
    await expect(broker.deleteTopic('x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(broker.listTopics()).toEqual([]);
    await expect(readFile(path.join(dataDir, 'topic_1', 'topic.json'))).rejects.toThrow();
  });

  it('read-only mode refuses writes with READ_ONLY and keeps reads working', async () => {
    const { broker, dataDir } = await open();
    await create(broker, 'ro');
    await broker.produce('ro', 0, [batch(['kept'])], 1, 10_000);
    await broker.close();
    const { broker: ro, metrics } = await open({ readOnly: true }, dataDir);
    expect(ro.isReadOnly()).toBe(true);
    await expect(ro.produce('ro', 0, [batch(['x'])], 1, 1000)).rejects.toMatchObject({ code: 'READ_ONLY', message: expect.stringContaining('read-only mode') });
    await expect(ro.produce('ro', 0, [batch(['x'])], 0, 1000)).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(create(ro, 'new')).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(ro.deleteTopic('ro')).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(ro.alterTopicConfigs('ro', {}, false)).rejects.toMatchObject({ code: 'READ_ONLY' });
    await expect(ro.adminProduce('ro', { records: [{ value: 'x' }] })).rejects.toMatchObject({ code: 'READ_ONLY' });
    expect(decodeRecordBatches((await ro.fetch('ro', 0, 0, 1000)).records).map((r) => r.value?.toString())).toEqual(['kept']);
    expect(await metrics.registry.getSingleMetricAsString('lance_read_only')).toMatch(/lance_read_only 1/);
  });

  it('admin produce partitions by key (murmur2), round robin otherwise, and admin fetch waits for data', async () => {
    const { broker } = await open();
    await create(broker, 'k', 3);
    const r = await broker.adminProduce('k', { records: [{ key: 'user-1', value: 'a' }, { key: 'user-1', value: 'b' }, { value: 'c' }, { value: 'd' }, { partition: 2, value: 'e' }] });
    const total = r.partitions.reduce((n, p) => n + p.count, 0);
    expect(total).toBe(5);
    const controller = new AbortController();
    // a waiting fetch at the end of partition 0 is woken by a produce to it (waits on the HW event, not a timer)
    const end = (await broker.adminGetTopic('k')).partitionStates[0]!.highWatermark;
    const waiting = broker.adminFetch('k', 0, { offset: end, max: 10, maxBytes: 1 << 20, waitMs: 30_000, encoding: 'utf8' }, controller.signal);
    await broker.adminProduce('k', { records: [{ partition: 0, value: 'late', headers: { h: 'v' } }] });
    const got = await waiting;
    expect(got.records.map((x) => [x.value, x.headers])).toEqual([['late', { h: 'v' }]]);
    expect(got.nextOffset).toBe(end + 1);
    // abort ends a wait at once with no records
    const aborted = broker.adminFetch('k', 1, { offset: (await broker.adminGetTopic('k')).partitionStates[1]!.highWatermark, max: 10, maxBytes: 1 << 20, waitMs: 30_000, encoding: 'utf8' }, AbortSignal.abort());
    expect((await aborted).records).toEqual([]);
    const all = await Promise.all([0, 1, 2].map((p) => broker.adminFetch('k', p, { max: 100, maxBytes: 1 << 20, waitMs: 0, encoding: 'utf8' }, controller.signal)));
    const user1 = all.filter((f) => f.records.some((x) => x.key === 'user-1'));
    expect(user1).toHaveLength(1);
    expect(user1[0]!.records.filter((x) => x.key === 'user-1').map((x) => x.value)).toEqual(['a', 'b']);
    expect(all.flatMap((f) => f.records.map((x) => x.value)).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'late']);
    await expect(broker.adminProduce('k', { records: [{ partition: 3, value: 'x' }] })).rejects.toThrow(/records\.0\.partition: topic "k" has partitions 0-2/);
  });

  it('retention deletes old sealed segments and 0 means unlimited', async () => {
    const { broker } = await open({ storage: { segmentBytes: 1024, retentionMs: 0, retentionBytes: 0 } });
    await create(broker, 'keep');
    await create(broker, 'trim', 1, { 'retention.bytes': '2048', 'segment.bytes': '1024' });
    const big = 'x'.repeat(600);
    for (let i = 0; i < 12; i++) {
      await broker.produce('keep', 0, [batch([big])], 1, 10_000);
      await broker.produce('trim', 0, [batch([big])], 1, 10_000);
    }
    const segs = async (name: string) => (await broker.adminGetTopic(name)).partitionStates[0]!;
    expect((await segs('keep')).segments).toBeGreaterThan(3);
    const deleted = await broker.enforceRetention();
    expect(deleted).toBeGreaterThan(0);
    expect((await segs('keep')).logStartOffset).toBe(0);
    expect((await segs('trim')).logStartOffset).toBeGreaterThan(0);
    expect((await segs('trim')).sizeBytes).toBeLessThanOrEqual(2048 + 1024 + 200);
    await expect(broker.fetch('trim', 0, 0, 100)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });

    // AlterConfigs takes effect on the open log at once: 'keep' gets a size limit and the next pass trims it
    await broker.alterTopicConfigs('keep', { 'retention.bytes': '2048', 'segment.bytes': '1024' }, false);
    expect(await broker.enforceRetention()).toBeGreaterThan(0);
    expect((await segs('keep')).logStartOffset).toBeGreaterThan(0);
  });

  it('auto-creates topics only when topics.autoCreate is on', async () => {
    const off = await open();
    expect(off.broker.autoCreateTopic('auto')).toBe(false);
    await off.broker.settled();
    expect(off.broker.getTopic('auto')).toBeUndefined();
    const on = await open({ topics: { autoCreate: true, defaultPartitions: 3 } });
    expect(on.broker.autoCreateTopic('bad name!')).toBe(false);
    expect(on.broker.autoCreateTopic('auto')).toBe(true);
    expect(on.broker.autoCreateTopic('auto')).toBe(true);
    await on.broker.settled();
    expect(on.broker.getTopic('auto')?.partitions).toHaveLength(3);
    expect(on.broker.listTopics().map((t) => t.name)).toEqual(['auto']);
  });

  it('serves topics that appear in the data dir while running (offline import)', async () => {
    const { broker, dataDir } = await open({ topics: { rescanIntervalMs: 0 } });
    // what lnc import-topic leaves behind: a complete topic dir with topic.json (here via the catalog directly)
    await catalog.createTopic(dataDir, 'imported', 2, {});
    expect(broker.getTopic('imported')).toBeUndefined();
    expect((await broker.adminGetTopic('imported')).partitions).toBe(2);
    expect(broker.getTopic('imported')?.partitions).toHaveLength(2);
    await catalog.createTopic(dataDir, 'second', 1, {});
    expect((await broker.adminListTopics()).map((t) => t.name)).toEqual(['imported', 'second']);
    expect(await broker.rescanCatalog()).toEqual([]);
  });

  it('maps Kafka config strings with -1 = unlimited', () => {
    expect(parseKafkaTopicConfigs({ 'retention.ms': '-1', 'retention.bytes': '100', 'segment.bytes': '4096', 'cleanup.policy': 'delete', 'segment.ms': null })).toEqual({ retentionMs: 0, retentionBytes: 100, segmentBytes: 4096 });
    expect(() => parseKafkaTopicConfigs({ 'retention.ms': 'abc' })).toThrow(LanceError);
    expect(() => parseKafkaTopicConfigs({ 'cleanup.policy': 'compact' })).toThrow(/only "delete"/);
  });
});

describe('data dir lock', () => {
  it('lets one process hold a data dir and takes over stale locks', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-lock-'));
    dirs.push(dir);
    const lock = await acquireDataDirLock(dir);
    // held by another live lance-looking process: refused
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', 'lance-lock-holder'], { stdio: 'ignore' });
    await once(holder, 'spawn'); // exec'd: its /proc cmdline is node's now
    try {
      const text0 = await readFile(lock.file, 'utf8');
      await writeFile(lock.file, text0.replace(`"pid":${process.pid}`, `"pid":${holder.pid}`));
      expect(isStale(JSON.parse(await readFile(lock.file, 'utf8')) as LockHolder, { pid: process.pid, host: hostname() }, () => true)).toBe(false);
      await expect(acquireDataDirLock(dir)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`is in use by another lance process (pid ${holder.pid}`) });
    } finally {
      holder.kill('SIGKILL');
    }
    const text = (await readFile(lock.file, 'utf8')).replace(`"pid":${holder.pid}`, `"pid":${process.pid}`);
    // our own pid from an earlier life, a dead pid, a half-written file: taken over
    await writeFile(lock.file, text);
    const again = await acquireDataDirLock(dir);
    await writeFile(again.file, '{"pid":');
    const third = await acquireDataDirLock(dir);
    await third.release();
    await third.release();
    expect(isStale({ pid: 999_999_999, host: 'h', startedAt: '' }, { pid: 1, host: 'h' }, isLiveBroker)).toBe(true);
    expect(isStale({ pid: 5, host: 'other', startedAt: '' }, { pid: 1, host: 'h' }, () => false)).toBe(false);
  });
});

describe('node.json', () => {
  it('is written once and guards the data dir', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-node-'));
    dirs.push(dir);
    const first = await ensureNodeIdentity(dir, { clusterId: undefined, nodeId: 4 });
    expect(first.clusterId).toMatch(/^lance-/);
    expect(await ensureNodeIdentity(dir, { clusterId: undefined, nodeId: 4 })).toEqual(first);
    expect(await ensureNodeIdentity(dir, { clusterId: first.clusterId, nodeId: 4 })).toEqual(first);
    await expect(ensureNodeIdentity(dir, { clusterId: 'other', nodeId: 4 })).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(ensureNodeIdentity(dir, { clusterId: undefined, nodeId: 5 })).rejects.toThrow(/belongs to node 4/);
    await writeFile(path.join(dir, 'node.json'), '{"version":1,"clusterId":"x"}');
    await expect(ensureNodeIdentity(dir, { clusterId: undefined, nodeId: 4 })).rejects.toMatchObject({ code: 'CORRUPT', message: expect.stringContaining('nodeId') });
  });

  it('decides purely from what is on disk and configured', () => {
    const fresh = { clusterId: 'gen', now: 't' };
    expect(decideIdentity(undefined, { clusterId: 'c', nodeId: 1 }, fresh, 'f')).toEqual({ action: 'create', identity: { version: 1, clusterId: 'c', nodeId: 1, createdAt: 't' } });
    expect(decideIdentity(undefined, { clusterId: undefined, nodeId: 1 }, fresh, 'f')).toMatchObject({ action: 'create', identity: { clusterId: 'gen' } });
    const onDisk = { version: 1 as const, clusterId: 'c', nodeId: 1, createdAt: 'x' };
    expect(decideIdentity(onDisk, { clusterId: undefined, nodeId: 1 }, fresh, 'f')).toEqual({ action: 'use', identity: onDisk });
    expect(decideIdentity(onDisk, { clusterId: 'd', nodeId: 1 }, fresh, 'f').action).toBe('refuse');
  });
});
