/**
 * Tiering with leader changes (cluster mode): replicas roll segments independently, so a new leader's local
 * segments do not line up with the manifest the old leader wrote. The new leader keeps the remote prefix ending
 * on one of its own segment boundaries and re-uploads from there; a replica that is not active uploads nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../broker/src/common/log.ts';
import { encodeRecordBatch } from '../../broker/src/server/records.ts';
import { PartitionLog } from '../../broker/src/storage/partition-log.ts';
import { EntryType } from '../../broker/src/storage/types.ts';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { decodeManifest, manifestPrefix, newestFirst } from '../../broker/src/tiering/manifest.ts';
import type { ObjectStore } from '../../broker/src/tiering/object-store.ts';
import { TieredStorage, planTakeover } from '../../broker/src/tiering/tiered-storage.ts';

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

async function fill(log: PartitionLog, from: number, n: number, term: number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    const b = encodeRecordBatch([{ key: null, value: Buffer.from(`r-${i}-${'z'.repeat(200)}`), headers: [], timestamp: 1000 + i }]);
    await log.append([{ type: EntryType.DATA, term, offsetCount: b.offsetCount, maxTimestamp: b.maxTimestamp, payload: b.bytes }]).durable;
  }
}

async function newest(store: ObjectStore, ref: { clusterId: string; topicId: string; partition: number }) {
  const keys: string[] = [];
  for await (const e of store.list(manifestPrefix(ref))) if (e.kind === 'object') keys.push(e.key);
  const k = newestFirst(keys)[0]!;
  return decodeManifest(k, await store.get(k));
}

describe('planTakeover', () => {
  // remote segments of 100 offsets and 10 entries each (indexes 1..10, 11..20, 21..30)
  const r = (b: number, l: number) => ({ baseOffset: b, lastOffset: l, firstIndex: b / 10 + 1, lastIndex: (l + 1) / 10 });
  const l = (b: number, i: number) => ({ baseOffset: b, firstIndex: i });
  it('keeps the longest remote prefix ending on a local boundary (offset AND raft index)', () => {
    const remote = [r(0, 99), r(100, 199), r(200, 299)];
    expect(planTakeover(remote, [l(0, 1), l(150, 16), l(200, 21), l(260, 27)])).toBe(2);
    expect(planTakeover(remote, [l(0, 1), l(100, 11), l(250, 26)])).toBe(1);
    expect(planTakeover(remote, [l(0, 1), l(150, 16), l(250, 26)])).toBe(0);
    // same offset, other index (a NOOP of the new leader in between): not a boundary
    expect(planTakeover(remote, [l(0, 1), l(200, 22)])).toBe(0);
    expect(planTakeover([r(100, 199), r(200, 299)], [l(150, 16), l(250, 26)])).toBeNull();
  });
});

describe('TieredStorage leader change', () => {
  it('a new leader with other segment boundaries re-uploads from a common boundary; inactive replicas upload nothing', async () => {
    const bucket = await tempDir('lance-takeover-b-');
    const store = createObjectStore({ backend: 'file', path: bucket, prefix: '' } as Parameters<typeof createObjectStore>[0]);
    closers.push(() => store.close());
    const ref = { clusterId: 'c', topicId: '00000000-0000-0000-0000-000000000001', partition: 0 };
    const logA = await PartitionLog.open(await tempDir('lance-takeover-a-'), { segmentBytes: 4096 });
    const logB = await PartitionLog.open(await tempDir('lance-takeover-c-'), { segmentBytes: 7000 });
    closers.push(() => logA.close(), () => logB.close());
    await fill(logA, 0, 100, 1);
    await fill(logB, 0, 100, 1);
    let aLeads = true;
    const tier = (log: PartitionLog, node: number, term: () => number, active: () => boolean) => {
      const t = new TieredStorage({ store, nodeId: node, logger: silentLogger });
      t.addPartition({ topic: 't', ref, log, term, highWatermark: () => log.nextOffset, remoteRetention: () => ({ retentionMs: 0, retentionBytes: 0 }), active });
      closers.push(() => t.stop());
      return t;
    };
    const a = tier(logA, 1, () => 1, () => aLeads);
    const b = tier(logB, 2, () => 2, () => !aLeads);
    await b.syncNow('t', 0); // not the leader: nothing
    let listed = 0;
    for await (const e of store.list(manifestPrefix(ref))) if (e.kind === 'object') listed++;
    expect(listed).toBe(0);
    await a.syncNow('t', 0);
    const m1 = await newest(store, ref);
    expect(m1.term).toBe(1);
    expect(m1.segments.at(-1)!.lastOffset).toBe(99);

    // leadership moves to B (term 2), which gets more data; A stops
    aLeads = false;
    await fill(logB, 100, 60, 2);
    await a.syncNow('t', 0);
    await b.syncNow('t', 0);
    const m2 = await newest(store, ref);
    expect(m2.term).toBe(2);
    expect(m2.segments[0]!.baseOffset).toBe(0);
    for (let i = 1; i < m2.segments.length; i++) expect(m2.segments[i]!.baseOffset).toBe(m2.segments[i - 1]!.lastOffset + 1);
    expect(m2.segments.at(-1)!.lastOffset).toBe(159);
    // every segment object listed exists with the recorded size
    for (const s of m2.segments) expect((await store.head(s.data.key))?.size).toBe(s.data.size);
  });
});
