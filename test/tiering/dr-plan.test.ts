/**
 * The pure decisions of metadata DR and restore: keys, choosing a restore point / source cluster, which remote
 * segments to download, offset clamping, restore-point retention, --time parsing, fresh data dirs; plus the
 * uploader against the file backend (snapshot before restore point; a restore point lists in time order).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLanceError } from '../../broker/src/common/errors.ts';
import { silentLogger } from '../../broker/src/common/log.ts';
import { parseRestoreTime, parseTopicList } from '../../broker/src/cli/offline/restore.ts';
import { FsObjectStore } from '../../broker/src/tiering/fs-store.ts';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import type { RemoteSegment } from '../../broker/src/tiering/manifest.ts';
import {
  DR_FORMAT, MetadataUploader, chooseRestorePoint, decodeSnapshot, listRestorePoints, parseRestorePointKey, planRestorePointRetention,
  restorePointDir, type ListedRestorePoint, type MetadataSnapshot,
} from '../../broker/src/tiering/metadata-dr.ts';
import { chooseSourceCluster, clampOffset, findRestorePoint, isFreshDataDir, planPartitionDownload, topicConfigOf } from '../../broker/src/tiering/restore.ts';
import { drSettings } from '../../broker/src/tiering/standalone-dr.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function seg(base: number, last: number, maxTimestamp: number): RemoteSegment {
  return { baseOffset: base, lastOffset: last, firstIndex: base + 1, term: 1, maxTimestamp, uploadedAt: new Date(0).toISOString(), data: { key: `k${base}`, size: 100, crc32c: '00000000' } };
}

const listed = (takenAtMs: number, node = 1, ok = true): ListedRestorePoint => ({
  key: `${restorePointDir('c', takenAtMs, node)}restore-point.json`, clusterId: 'c', takenAtMs, node,
  point: ok ? ({ takenAtMs } as ListedRestorePoint['point']) : null, ...(ok ? {} : { error: 'CORRUPT: x' }),
});

describe('restore point keys', () => {
  it('fixed-width time then node, so keys list in time order; parse round-trips', () => {
    const k1 = `${restorePointDir('prod', 999, 2)}restore-point.json`;
    const k2 = `${restorePointDir('prod', 1000, 1)}restore-point.json`;
    expect([k2, k1].sort()).toEqual([k1, k2]);
    expect(parseRestorePointKey(k1)).toEqual({ clusterId: 'prod', takenAtMs: 999, node: 2, file: 'restore-point', dir: restorePointDir('prod', 999, 2) });
    expect(parseRestorePointKey(`${restorePointDir('prod', 5, 1)}snapshot.json`)?.file).toBe('snapshot');
    expect(parseRestorePointKey('clusters/prod/topics/x/0/manifest/1-1.json')).toBeNull();
  });
});

describe('choosing', () => {
  it('the newest usable restore point at or before T (newest overall without T); damaged ones are skipped', () => {
    const pts = [listed(100), listed(200), listed(300, 1, false), listed(250, 2)];
    expect(chooseRestorePoint(pts)?.takenAtMs).toBe(250);
    expect(chooseRestorePoint(pts, 220)?.takenAtMs).toBe(200);
    expect(chooseRestorePoint(pts, 200)?.takenAtMs).toBe(200);
    expect(chooseRestorePoint(pts, 99)).toBeNull();
    expect(chooseRestorePoint([])).toBeNull();
  });

  it('the source cluster: named, else the target if present, else the only one; several → USAGE, none → no restore point in <url>', () => {
    expect(chooseSourceCluster(['a', 'b'], { source: 'b' }, 'u')).toBe('b');
    expect(chooseSourceCluster(['a', 'b'], { target: 'a' }, 'u')).toBe('a');
    expect(chooseSourceCluster(['a'], { target: 'new' }, 'u')).toBe('a');
    expect(() => chooseSourceCluster(['a', 'b'], { target: 'new' }, 'u')).toThrow(/several clusters \(a, b\); choose one with --source-cluster-id/);
    expect(() => chooseSourceCluster([], {}, 's3://x/y')).toThrow('no restore point in s3://x/y');
    expect(() => chooseSourceCluster(['a'], { source: 'z' }, 'u')).toThrow(/no restore point of cluster "z"/);
  });
});

describe('planPartitionDownload', () => {
  it('the contiguous run ending at the newest segment', () => {
    const s = [seg(0, 9, 10), seg(20, 29, 30), seg(30, 39, 40)];
    const p = planPartitionDownload(s);
    expect(p.segments.map((x) => x.baseOffset)).toEqual([20, 30]);
    expect(p.skippedBeforeGap).toBe(1);
    expect(planPartitionDownload([]).segments).toEqual([]);
  });

  it('point in time: up to and including the first segment holding a record later than T', () => {
    const s = [seg(0, 9, 10), seg(10, 19, 20), seg(20, 29, 30), seg(30, 39, 40)];
    expect(planPartitionDownload(s, 25).segments.map((x) => x.baseOffset)).toEqual([0, 10, 20]);
    expect(planPartitionDownload(s, 20).segments.map((x) => x.baseOffset)).toEqual([0, 10, 20]);
    expect(planPartitionDownload(s, 5).segments.map((x) => x.baseOffset)).toEqual([0]);
    expect(planPartitionDownload(s, 100).segments.length).toBe(4);
  });
});

describe('offsets and config', () => {
  it('committed offsets are clamped into the restored [logStart, nextOffset]', () => {
    expect(clampOffset(50, 0, 40)).toBe(40);
    expect(clampOffset(5, 10, 40)).toBe(10);
    expect(clampOffset(20, 10, 40)).toBe(20);
  });

  it('a cluster snapshot\'s Kafka config strings become the standalone TopicConfig', () => {
    const t = { name: 't', id: 1, topicId: 'x', partitions: 1 };
    expect(topicConfigOf({ ...t, config: { retentionMs: 5, segmentBytes: 2048 } })).toEqual({ retentionMs: 5, segmentBytes: 2048 });
    expect(topicConfigOf({ ...t, config: { 'retention.ms': '-1', 'segment.bytes': '4096', 'cleanup.policy': 'delete' }, replicationFactor: 3 }))
      .toEqual({ retentionMs: 0, segmentBytes: 4096, replicationFactor: 3 });
  });
});

describe('restore point retention', () => {
  it('drops the oldest past retention, never the newest keepAtLeast', () => {
    const keys = [100, 200, 300, 400].map((t) => `${restorePointDir('c', t, 1)}restore-point.json`);
    expect(planRestorePointRetention(keys, 1000, 750, 1)).toEqual(keys.slice(0, 2));
    expect(planRestorePointRetention(keys, 1000, 750, 3)).toEqual(keys.slice(0, 1));
    expect(planRestorePointRetention(keys, 1000, 0, 1)).toEqual([]);
    expect(planRestorePointRetention(keys, 10_000, 1, 4)).toEqual([]);
  });
});

describe('CLI input and settings', () => {
  it('--time: RFC 3339 with a zone', () => {
    expect(parseRestoreTime('2026-11-22T09:00:00Z')).toBe(Date.UTC(2026, 10, 22, 9));
    expect(parseRestoreTime('2026-11-22T10:00:00.123456+01:00')).toBe(Date.UTC(2026, 10, 22, 9, 0, 0, 123));
    for (const bad of ['2026-11-22', '2026-11-22T09:00:00', 'yesterday']) {
      expect(() => parseRestoreTime(bad)).toThrow(/--time .*expected an RFC 3339 time with a zone/);
    }
  });

  it('--topics a,b (repeatable)', () => {
    expect(parseTopicList(['a,b', 'c', 'a'])).toEqual(['a', 'b', 'c']);
    expect(parseTopicList(undefined)).toBeUndefined();
    expect(() => parseTopicList(['a,,b'])).toThrow(/empty topic name/);
  });

  it('fresh data dirs: empty, a lock file, lost+found or an interrupted restore', () => {
    expect(isFreshDataDir([])).toBe(true);
    expect(isFreshDataDir(['lance.lock', 'lost+found', 'restore-in-progress.json'])).toBe(true);
    expect(isFreshDataDir(['node.json'])).toBe(false);
    expect(isFreshDataDir(['topic_1'])).toBe(false);
  });

  it('the seed\'s CHRONIK_METADATA_UPLOAD_INTERVAL (seconds) and CHRONIK_METADATA_DR', () => {
    const t = { metadataUploadIntervalMs: 10_000, metadataDr: true, restorePointRetentionMs: 5 };
    expect(drSettings(t, {})).toEqual({ enabled: true, intervalMs: 10_000, retentionMs: 5 });
    expect(drSettings(t, { CHRONIK_METADATA_UPLOAD_INTERVAL: '120' }).intervalMs).toBe(120_000);
    expect(drSettings(t, { CHRONIK_METADATA_UPLOAD_INTERVAL: '120', LANCE_METADATA_UPLOAD_INTERVAL_MS: '10000' }).intervalMs).toBe(10_000);
    expect(drSettings(t, { CHRONIK_METADATA_DR: 'false' }).enabled).toBe(false);
    expect(() => drSettings(t, { CHRONIK_METADATA_UPLOAD_INTERVAL: '1m' })).toThrow(/CHRONIK_METADATA_UPLOAD_INTERVAL: expected a positive number of seconds/);
  });
});

describe('MetadataUploader (file backend)', () => {
  it('writes snapshot then restore point; both verified and listable; the snapshot checksum is enforced', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lance-dr-up-'));
    dirs.push(dir);
    const store = createObjectStore({ backend: 'file', path: dir, prefix: '' } as Parameters<typeof createObjectStore>[0]);
    expect(store).toBeInstanceOf(FsObjectStore);
    let n = 0;
    const snap = (): MetadataSnapshot => ({
      format: DR_FORMAT, clusterId: 'c1', mode: 'standalone', node: 3, takenAt: new Date(1000).toISOString(), takenAtMs: 1000,
      topics: [{ name: 't', id: 1, topicId: 'u', partitions: 1, config: {} }],
      partitions: [{ topic: 't', partition: 0, highWatermark: 10 + n, logStartOffset: 0, remoteEnd: 10, manifestKey: null, remoteBytes: 500 }],
      groups: [], producerIdNext: 1000,
    });
    const up = new MetadataUploader({ store, clusterId: 'c1', nodeId: 3, logger: silentLogger, intervalMs: 60_000, retentionMs: 0, collect: async () => { n++; return snap(); } });
    const rp1 = await up.uploadNow();
    const rp2 = await up.uploadNow();
    // same clock reading twice: the second key is still distinct and later
    expect(rp1!.takenAtMs).toBe(1000);
    expect(rp2!.takenAtMs).toBe(1001);
    expect(rp2!.unuploadedRecords).toBe(2);
    expect(rp2!.topics).toEqual([{ name: 't', partitions: 1, bytes: 500 }]);
    const pts = await listRestorePoints(store);
    expect(pts.map((p) => [p.clusterId, p.takenAtMs, p.node])).toEqual([['c1', 1000, 3], ['c1', 1001, 3]]);
    const body = await store.get(rp2!.snapshot.key);
    expect(decodeSnapshot(rp2!.snapshot.key, body, rp2!.snapshot).partitions[0]!.highWatermark).toBe(12);
    const damaged = Buffer.from(body);
    damaged[10] ^= 1;
    try {
      decodeSnapshot(rp2!.snapshot.key, damaged, rp2!.snapshot);
      expect.unreachable();
    } catch (e) {
      expect(isLanceError(e, 'CORRUPT')).toBe(true);
    }
    // a restarted, EMPTY node of the same cluster does not bury the backup under empty restore points
    const empty = new MetadataUploader({ store, clusterId: 'c1', nodeId: 5, logger: silentLogger, intervalMs: 60_000, retentionMs: 0, collect: async () => ({ ...snap(), node: 5, topics: [], partitions: [], takenAtMs: 5000, takenAt: new Date(5000).toISOString() }) });
    expect(await empty.uploadNow()).toBeNull();
    expect((await listRestorePoints(store)).length).toBe(2);
    expect((await listRestorePoints(store, { newest: 1 })).map((p) => p.takenAtMs)).toEqual([1001]);
    // a damaged newer restore point is listed with its error and skipped by a restore
    await store.put(`${restorePointDir('c1', 2000, 3)}restore-point.json`, Buffer.from('{"format":1}'));
    const all = await listRestorePoints(store);
    expect(all.at(-1)!.error).toMatch(/^CORRUPT: restore point .*: /);
    expect((await findRestorePoint(store, { clusterId: 'c1' })).takenAtMs).toBe(1001);
    expect((await findRestorePoint(store, { clusterId: 'c1', atMs: 1000 })).takenAtMs).toBe(1000);
    await expect(findRestorePoint(store, { clusterId: 'c1', atMs: 999 })).rejects.toThrow(/no restore point taken at or before 1970-01-01T00:00:00.999Z in file:.* \(cluster c1: 3 restore point\(s\), oldest/);
    // a node that does not own the metadata uploads nothing
    const idle = new MetadataUploader({ store, clusterId: 'c1', nodeId: 4, logger: silentLogger, intervalMs: 60_000, retentionMs: 0, collect: async () => null });
    expect(await idle.uploadNow()).toBeNull();
    expect((await listRestorePoints(store)).length).toBe(3);
    await store.close();
  });
});
