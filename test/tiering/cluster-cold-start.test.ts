/**
 * Multi-node cold start, the pure parts and one in-process run: the decision (restore only when the whole cluster
 * is gone, agree on the newest restore point, a majority after the wait), the restore plan (identical metadata entry
 * on every node, offsets clamped to what the bucket held), the partition Raft state, the metadata `restore`
 * command, and two nodes cold-starting against a file bucket (status servers, polling, restore, identical wal).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commands } from '../../broker/src/cli/commands.ts';
import { runCli } from '../../broker/src/cli/run.ts';
import { applyCommand, decodeCommand, emptyMetadata } from '../../broker/src/cluster/metadata.ts';
import { silentLogger } from '../../broker/src/common/log.ts';
import { decideColdStart, clusterColdStart, type PeerView } from '../../broker/src/tiering/cluster-cold-start.ts';
import { parseClusterMetadata, partitionRaftState, planClusterRestore } from '../../broker/src/tiering/cluster-restore.ts';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { DR_FORMAT, MetadataUploader, type MetadataSnapshot } from '../../broker/src/tiering/metadata-dr.ts';
import { PartitionLog } from '../../broker/src/storage/partition-log.ts';
import { EntryType } from '../../broker/src/storage/types.ts';
import { freePort } from '../ports.ts';
import { s3rverConfig } from '../s3/harness.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const A = { key: 'clusters/c/restore-points/00000000000000001000-0000000001/restore-point.json', takenAtMs: 1000 };
const B = { key: 'clusters/c/restore-points/00000000000000002000-0000000002/restore-point.json', takenAtMs: 2000 };
const fresh = (nodeId: number, c: { key: string; takenAtMs: number } | null, state: 'fresh' | 'restoring' = 'fresh'): PeerView => ({ state, nodeId, clusterId: 'c', restorePoint: c?.key ?? null, takenAtMs: c?.takenAtMs ?? 0 });
const down: PeerView = { state: 'unreachable', error: 'ECONNREFUSED' };

describe('decideColdStart', () => {
  const base = { nodeId: 1, elapsedMs: 0, peerWaitMs: 30_000 };
  it('a peer running with state → join through Raft, never restore', () => {
    const d = decideColdStart({ ...base, own: B, peers: new Map([[2, fresh(2, B)], [3, { state: 'running', nodeId: 3, clusterId: 'c', metaTerm: 4, metaLastIndex: 90, restoredFrom: null }]]) });
    expect(d.action).toBe('join');
  });
  it('a running peer without any state (term 0, empty log) is not live state', () => {
    const d = decideColdStart({ ...base, own: B, peers: new Map([[2, fresh(2, B)], [3, { state: 'running', nodeId: 3, clusterId: 'c', metaTerm: 0, metaLastIndex: 0, restoredFrom: null }]]) });
    expect(d).toMatchObject({ action: 'wait', waitingFor: [3] });
  });
  it('no restore point → skip (start empty)', () => {
    expect(decideColdStart({ ...base, own: null, peers: new Map([[2, fresh(2, null)]]) }).action).toBe('skip');
  });
  it('every peer fresh with the same choice → restore it', () => {
    expect(decideColdStart({ ...base, own: B, peers: new Map([[2, fresh(2, B)], [3, fresh(3, B)]]) })).toEqual({ action: 'restore', choice: B, agreed: [1, 2, 3], switchedFrom: null });
  });
  it('a peer saw a newer restore point → take it (and say which one was ours); the peer with the older one is waited for', () => {
    const d = decideColdStart({ ...base, own: A, peers: new Map([[2, fresh(2, B)], [3, fresh(3, A)]]) });
    expect(d).toEqual({ action: 'wait', choice: B, waitingFor: [3] });
    // once node 3 took B too
    expect(decideColdStart({ ...base, own: A, peers: new Map([[2, fresh(2, B)], [3, fresh(3, B)]]) })).toEqual({ action: 'restore', choice: B, agreed: [1, 2, 3], switchedFrom: A });
  });
  it('a peer already restoring fixes the choice, even an older one', () => {
    expect(decideColdStart({ ...base, own: B, peers: new Map([[2, fresh(2, A, 'restoring')], [3, fresh(3, A)]]) })).toMatchObject({ action: 'restore', choice: A, agreed: [1, 2, 3] });
    // ... and decided for the cluster: no need to wait for an unanswering peer
    expect(decideColdStart({ ...base, own: B, peers: new Map([[2, fresh(2, A, 'restoring')], [3, down]]) })).toMatchObject({ action: 'restore', choice: A, agreed: [1, 2] });
  });
  it('unreachable peers: wait; after peerWaitMs a majority suffices, a node alone never restores', () => {
    expect(decideColdStart({ ...base, own: B, peers: new Map([[2, fresh(2, B)], [3, down]]) })).toMatchObject({ action: 'wait', waitingFor: [3] });
    expect(decideColdStart({ ...base, elapsedMs: 30_000, own: B, peers: new Map([[2, fresh(2, B)], [3, down]]) })).toMatchObject({ action: 'restore', agreed: [1, 2] });
    expect(decideColdStart({ ...base, elapsedMs: 999_999, own: B, peers: new Map([[2, down], [3, down]]) })).toMatchObject({ action: 'wait' });
    expect(decideColdStart({ ...base, elapsedMs: 999_999, own: B, peers: new Map([[2, down], [3, down], [4, fresh(4, B)], [5, down]]) })).toMatchObject({ action: 'wait' });
    // peerWaitMs 0: every peer, however long it takes
    expect(decideColdStart({ ...base, peerWaitMs: 0, elapsedMs: 999_999, own: B, peers: new Map([[2, fresh(2, B)], [3, down]]) })).toMatchObject({ action: 'wait' });
  });
});

function snapshot(): MetadataSnapshot {
  const brokers = Object.fromEntries([1, 2, 3].map((id) => [String(id), { nodeId: id, host: '127.0.0.1', kafkaPort: 9000 + id, adminPort: 8000 + id, raftPort: 7000 + id }]));
  return {
    format: DR_FORMAT, clusterId: 'c', mode: 'cluster', node: 2, takenAt: new Date(5000).toISOString(), takenAtMs: 5000,
    topics: [{ name: 'orders', id: 3, topicId: 'u-orders', partitions: 2, config: {}, replicationFactor: 2, assignment: [[1, 2], [2, 3]] }],
    partitions: [
      { topic: 'orders', partition: 0, highWatermark: 120, logStartOffset: 0, remoteEnd: 100, manifestKey: 'm0', remoteBytes: 10 },
      { topic: 'orders', partition: 1, highWatermark: 40, logStartOffset: 0, remoteEnd: 40, manifestKey: 'm1', remoteBytes: 10 },
    ],
    groups: [{ groupId: 'billing', protocolType: 'consumer', generation: 3, offsets: [
      { topic: 'orders', partition: 0, offset: 110, leaderEpoch: 2, metadata: '', commitTimestamp: 1 },
      { topic: 'orders', partition: 1, offset: 30, leaderEpoch: 2, metadata: '', commitTimestamp: 1 },
      { topic: 'gone', partition: 0, offset: 5, leaderEpoch: 1, metadata: '', commitTimestamp: 1 },
    ] }],
    producerIdNext: 2000,
    clusterMetadata: {
      applied: 77, nextTopicId: 4, brokers, removed: [], metaTerm: 6,
      topics: { orders: { name: 'orders', topicId: 'u-orders', id: 3, rf: 2, config: { 'retention.ms': '-1' }, assignment: [[1, 2], [2, 3]], founders: [[1, 2], [2, 3]], leaders: [{ leader: 2, term: 9, voters: [1, 2], learners: [] }, null] } },
    },
  };
}

describe('planClusterRestore', () => {
  it('is a pure function of the restore point: the same metadata entry on every node, local replicas marked', () => {
    const snap = snapshot();
    const meta = parseClusterMetadata(snap, 'rp');
    const p1 = planClusterRestore(snap, meta, 1, 'rp');
    const p3 = planClusterRestore(snap, meta, 3, 'rp');
    expect(Buffer.from(p1.restoreCommand).equals(Buffer.from(p3.restoreCommand))).toBe(true);
    expect(p1.metaVoters).toEqual([1, 2, 3]);
    expect(p1.metaTerm).toBe(6);
    expect(p1.partitions.map((p) => [p.partition, p.local])).toEqual([[0, true], [1, false]]);
    expect(p3.partitions.map((p) => [p.partition, p.local])).toEqual([[0, false], [1, true]]);
    // membership at the log start: the leader's last report, else the assignment
    expect(p1.partitions[0]!.config).toEqual({ voters: [1, 2], learners: [] });
    expect(p1.partitions[0]!.reportTerm).toBe(9);
    expect(p1.partitions[1]!.config).toEqual({ voters: [2, 3], learners: [] });
    // 110 > what the bucket held (100): clamped, never beyond; a topic not in the restore point is dropped
    expect(p1.groups).toEqual([{ groupId: 'billing', offsets: 2, clamped: 1 }]);
  });

  it('the restore command rebuilds the metadata state (topics, brokers, groups, producer ids; leader reports reset)', () => {
    const snap = snapshot();
    const plan = planClusterRestore(snap, parseClusterMetadata(snap, 'rp'), 2, 'rp');
    const s = emptyMetadata();
    expect(applyCommand(s, 2, decodeCommand(plan.restoreCommand, 'entry 2'))).toEqual({ ok: true });
    expect(s.applied).toBe(2);
    expect(s.nextTopicId).toBe(4);
    expect(Object.keys(s.brokers).sort()).toEqual(['1', '2', '3']);
    expect(s.topics.orders!.id).toBe(3);
    expect(s.topics.orders!.assignment).toEqual([[1, 2], [2, 3]]);
    expect(s.topics.orders!.leaders).toEqual([null, null]);
    expect(s.nextProducerId).toBe(2000);
    const g = s.groups.groups.get('billing')!;
    expect(g.generation).toBe(3);
    expect([...g.offsets.values()].map((o) => o.offset).sort((a, b) => a - b)).toEqual([30, 100]);
  });

  it('refuses a node id the restored cluster does not have, and a standalone restore point', () => {
    const snap = snapshot();
    expect(() => planClusterRestore(snap, parseClusterMetadata(snap, 'rp'), 7, 'rp')).toThrow(/node 7 is not a member/);
    expect(() => parseClusterMetadata({ ...snap, mode: 'standalone', clusterMetadata: undefined }, 'rp')).toThrow(/standalone broker/);
    expect(() => parseClusterMetadata({ ...snap, clusterMetadata: { applied: 1 } }, 'rp')).toThrow(/clusterMetadata\.nextTopicId/);
  });
});

describe('partitionRaftState', () => {
  const cfg = { config: { voters: [1, 2, 3], learners: [] }, reportTerm: 4 };
  it('a log from index 1: no log start file; term = max(last entry, manifest, report); everything committed', () => {
    expect(partitionRaftState({ firstIndex: 1, lastIndex: 50, lastTerm: 3, prevTerm: 0, logStartOffset: 0 }, cfg, 5)).toEqual({ hardState: { term: 5, vote: null, commit: 50 }, logStart: null });
  });
  it('a log starting later: snapshot.json with the previous index/term, the start offset and the membership', () => {
    expect(partitionRaftState({ firstIndex: 31, lastIndex: 50, lastTerm: 7, prevTerm: 6, logStartOffset: 900 }, cfg, 5)).toEqual({
      hardState: { term: 7, vote: null, commit: 50 }, logStart: { index: 30, term: 6, nextOffset: 900, config: { voters: [1, 2, 3], learners: [] } },
    });
  });
});

describe('clusterColdStart in process (file bucket, two nodes)', () => {
  it('both nodes find each other fresh, agree, and write identical metadata logs; a third start on a non-empty dir does nothing', async () => {
    const bucket = await mkdtemp(path.join(tmpdir(), 'lance-cs-bucket-'));
    const d1 = await mkdtemp(path.join(tmpdir(), 'lance-cs-n1-'));
    const d2 = await mkdtemp(path.join(tmpdir(), 'lance-cs-n2-'));
    dirs.push(bucket, d1, d2);
    const storeConfig = { backend: 'file', path: bucket, prefix: '' } as Parameters<typeof createObjectStore>[0];
    const store = createObjectStore(storeConfig);
    const logger = silentLogger;
    // a two-node cluster's restore point; partitions without uploads (each replica starts with its membership)
    const snap = snapshot();
    const meta = snap.clusterMetadata as { brokers: Record<string, unknown>; topics: Record<string, { assignment: number[][]; founders: number[][]; leaders: unknown[] }> };
    delete meta.brokers['3'];
    meta.topics.orders!.assignment = [[1, 2], [1, 2]];
    meta.topics.orders!.founders = [[1, 2], [1, 2]];
    snap.partitions = snap.partitions.map((p) => ({ ...p, manifestKey: null, remoteEnd: 0, remoteBytes: 0 }));
    const up = new MetadataUploader({ store, clusterId: 'c', nodeId: 2, logger, intervalMs: 60_000, retentionMs: 0, collect: async () => snap });
    await up.uploadNow();
    await up.stop();
    const ports = [await freePort(), await freePort()];
    const run = (nodeId: number, dataDir: string) => clusterColdStart({
      dataDir, storeConfig, enabled: true, clusterId: 'c', nodeId, logger, peerWaitMs: 60_000, pollMs: 20,
      admin: { host: '127.0.0.1', port: ports[nodeId - 1]! }, peers: [{ nodeId: 3 - nodeId, host: '127.0.0.1', adminPort: ports[2 - nodeId]! }],
    });
    const [r1, r2] = await Promise.all([run(1, d1), run(2, d2)]);
    expect(r1.restored?.restorePoint.key).toBeDefined();
    expect(r1.restored!.restorePoint.key).toBe(r2.restored!.restorePoint.key);
    expect(r1.restored!.partitions.map((p) => [p.partition, p.lastIndex, p.term])).toEqual([[0, 1, 9], [1, 1, 1]]);
    // the metadata group's log: the same entries on both nodes, committed
    const entries = async (d: string) => {
      const l = await PartitionLog.open(path.join(d, 'wal'), {});
      try {
        return (await l.readByIndex(1, 10, 1 << 20)).map((e) => ({ index: e.index, term: e.term, type: e.type, payload: Buffer.from(e.payload).toString('hex') }));
      } finally {
        await l.close();
      }
    };
    const w1 = await entries(d1);
    expect(w1.map((e) => [e.index, e.term, e.type])).toEqual([[1, 0, EntryType.CONFIG], [2, 6, EntryType.CONTROL]]);
    expect(await entries(d2)).toEqual(w1);
    expect(JSON.parse(await readFile(path.join(d1, 'wal', 'raft.json'), 'utf8'))).toEqual({ term: 6, vote: null, commit: 2 });
    expect(JSON.parse(await readFile(path.join(d1, 'node.json'), 'utf8'))).toMatchObject({ clusterId: 'c', nodeId: 1 });
    // a restarted node (data in its dir) never asks anybody
    expect(await run(1, d1)).toEqual({ restored: null, reason: 'data dir has data' });

    // lnc restore --cluster-layout writes the same data dir as the cold start (the operator's restore Job)
    const d3 = await mkdtemp(path.join(tmpdir(), 'lance-cs-lnc-'));
    dirs.push(d3);
    const cli = async (argv: string[]): Promise<{ code: number; out: string; err: string }> => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const stdout = new PassThrough().on('data', (b: Buffer) => out.push(b));
      const stderr = new PassThrough().on('data', (b: Buffer) => err.push(b));
      const code = await runCli(argv, commands, { stdout, stderr, stdin: new PassThrough() });
      return { code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
    };
    const usage = await cli(['restore', '--from', `file://${bucket}`, '--data-dir', d3, '--cluster-layout', '--node-id', '2', '--time', '2026-11-22T09:00:00Z']);
    expect(usage.code).not.toBe(0);
    expect(usage.err).toMatch(/--time and --topics do not apply/);
    const wrongNode = await cli(['restore', '--from', `file://${bucket}`, '--data-dir', d3, '--cluster-layout', '--node-id', '7']);
    expect(wrongNode.code).not.toBe(0);
    expect(wrongNode.err).toMatch(/node 7 is not a member .* \(members: 1, 2\)/);
    // --cluster-id defaults to the backup's
    const r = await cli(['restore', '--from', `file://${bucket}`, '--data-dir', d3, '--cluster-layout', '--node-id', '2', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ mode: 'cluster', clusterId: 'c', nodeId: 2, restorePoint: { key: r2.restored!.restorePoint.key } });
    expect(await entries(d3)).toEqual(w1);
    expect(await readFile(path.join(d3, 'topic_3', '0', 'raft.json'), 'utf8')).toBe(await readFile(path.join(d2, 'topic_3', '0', 'raft.json'), 'utf8'));

    // an interrupted restore whose peer now runs with live state: what it left is removed, the node joins empty
    const d4 = await mkdtemp(path.join(tmpdir(), 'lance-cs-int-'));
    dirs.push(d4);
    await writeFile(path.join(d4, 'restore-in-progress.json'), '{}');
    await writeFile(path.join(d4, 'half-written'), 'x');
    const running = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ state: 'running', nodeId: 2, clusterId: 'c', metaTerm: 3, metaLastIndex: 40, restoredFrom: null }));
    });
    await new Promise<void>((r) => running.listen(ports[1], '127.0.0.1', () => r()));
    try {
      const r4 = await run(1, d4);
      expect(r4.restored).toBeNull();
      expect(r4).toMatchObject({ reason: expect.stringMatching(/node 2 is running with live state/) });
      expect(await readdir(d4)).toEqual([]);
      // an unreadable object store does not keep a wiped node of a live cluster from joining...
      const deadStore = s3rverConfig(`http://127.0.0.1:${await freePort()}`, 'nope', { maxAttempts: 1, connectTimeoutMs: 500 });
      const d5 = await mkdtemp(path.join(tmpdir(), 'lance-cs-dead-'));
      dirs.push(d5);
      const joinOpts = {
        dataDir: d5, storeConfig: deadStore, enabled: true, clusterId: 'c', nodeId: 1, logger, peerWaitMs: 60_000, pollMs: 20,
        admin: { host: '127.0.0.1', port: ports[0]! }, peers: [{ nodeId: 2, host: '127.0.0.1', adminPort: ports[1]! }],
      };
      expect(await clusterColdStart(joinOpts)).toMatchObject({ restored: null, reason: expect.stringMatching(/node 2 is running/) });
      // ... but without a running peer the error stands (the node cannot tell whether the cluster is gone)
      await expect(clusterColdStart({ ...joinOpts, peers: [{ nodeId: 2, host: '127.0.0.1', adminPort: await freePort() }] })).rejects.toMatchObject({ code: expect.stringMatching(/IO|TIMEOUT/) });
    } finally {
      await new Promise<void>((r) => running.close(() => r()));
    }
    await store.close();
  }, 60_000);
});
