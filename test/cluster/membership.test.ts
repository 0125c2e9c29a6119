/**
 * Membership with real processes: Metadata for partitions a node holds no replica of (RF 1 and 2 on 3 nodes), then
 * node replacement exactly as the runbook does it — node 3 dies, `lnc members remove 3`, a fresh node 4 starts with
 * `cluster.bootstrapVoters` (so it joins instead of bootstrapping), `lnc members add 4 ...` — while a kafkajs
 * producer with acks=all keeps writing. Node 4 must end up a voter of __meta and of every partition and hold every
 * record byte-equal; no acknowledged record may be lost.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient, type ConsumedRecord, type MembersList } from '../../broker/src/admin/client.ts';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import type { MetadataResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { TestCluster, waitUntil } from './harness.ts';

const LNC = fileURLToPath(new URL('../../bin/lnc.js', import.meta.url));
const LANCE = fileURLToPath(new URL('../../bin/lance.js', import.meta.url));

function lnc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LNC, ...args], { timeout: 240_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Kafka Metadata (v9) asked of ONE broker: its own answer, not a client's merged view. */
async function metadataOf(port: number, topics: string[]): Promise<MetadataResponse> {
  const c = await KafkaWireClient.connect('127.0.0.1', port);
  try {
    return await c.request<MetadataResponse>(3, 9, { topics: topics.map((name) => ({ name })), allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  } finally {
    c.close();
  }
}

/** the truth: for each partition group, the node that says it leads it and its term (from every running node's /v1/cluster) */
async function trueLeaders(c: TestCluster, extra: AdminClient[] = []): Promise<Map<string, { leader: number; term: number }>> {
  const views = [...(await c.views()), ...(await Promise.all(extra.map((a) => a.cluster())))];
  const out = new Map<string, { leader: number; term: number }>();
  for (const v of views) {
    for (const g of v.groups ?? []) {
      if (g.role !== 'leader' || g.topic === null) continue;
      const key = `${g.topic}-${g.partition}`;
      const cur = out.get(key);
      if (!cur || g.term > cur.term) out.set(key, { leader: v.nodeId, term: g.term });
    }
  }
  return out;
}

async function readAll(admin: AdminClient, topic: string, partition: number): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  let offset = 0;
  for (;;) {
    const r = await admin.fetchRecords(topic, partition, { offset, max: 10_000 });
    out.push(...r.records);
    if (r.records.length === 0 || r.nextOffset >= r.highWatermark) return out;
    offset = r.nextOffset;
  }
}

describe('cluster membership (real processes)', () => {
  let c: TestCluster;
  let node4: ChildProcess | null = null;
  /** node 4's endpoints once the replacement test started it */
  let spec4: { kafkaPort: number; adminPort: number; raftPort: number } | null = null;
  let startNode4: () => void = () => undefined;
  const killNode4 = async (): Promise<void> => {
    const p = node4;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await exited;
  };
  beforeAll(async () => {
    c = await TestCluster.start(3);
  }, 120_000);
  afterAll(async () => {
    await killNode4();
    await c?.cleanup();
  });

  it('Metadata on every node shows the true leader of RF=1 and RF=2 partitions, also after a leader change', async () => {
    await waitUntil('controller', () => c.agreedLeader('__meta'), 60_000);
    const kafka = new Kafka({ clientId: 'membership-md', brokers: c.bootstrap(), logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'rf1', numPartitions: 3, replicationFactor: 1 }, { topic: 'rf2', numPartitions: 3, replicationFactor: 2 }], waitForLeaders: true });
    await admin.disconnect();

    const agree = async (): Promise<boolean> => {
      const truth = await trueLeaders(c);
      if (truth.size < 6) return false;
      for (const x of c.nodes) {
        const md = await metadataOf(x.kafkaPort, ['rf1', 'rf2']);
        for (const t of md.topics) {
          for (const p of t.partitions) {
            const want = truth.get(`${t.name}-${p.partitionIndex}`);
            // never an epoch newer than the truth, and (once reported) exactly the leader and its term
            if (want && p.leaderEpoch > want.term) throw new Error(`node ${x.nodeId}: ${t.name}-${p.partitionIndex} epoch ${p.leaderEpoch} > true term ${want.term}`);
            if (!want || p.leaderId !== want.leader || p.leaderEpoch !== want.term) return false;
            if (!p.replicaNodes.includes(p.leaderId)) return false;
          }
        }
        // every replica count is the topic's replication factor, and most partitions are not local to every node
        const rf2 = md.topics.find((t) => t.name === 'rf2')!;
        if (!rf2.partitions.every((p) => p.replicaNodes.length === 2)) return false;
      }
      return true;
    };
    await waitUntil('every node reports the true leaders', agree, 30_000);

    // a leader change: move rf2-0's leadership to its other replica; non-replicas learn it from the new leader's report
    const md = await metadataOf(c.node(1).kafkaPort, ['rf2']);
    const p0 = md.topics[0]!.partitions.find((p) => p.partitionIndex === 0)!;
    const other = p0.replicaNodes.find((r) => r !== p0.leaderId)!;
    const group = (await c.node(p0.leaderId).admin.cluster()).groups!.find((g) => g.topic === 'rf2' && g.partition === 0)!.group;
    await waitUntil('leadership moved', async () => {
      const t = (await trueLeaders(c)).get('rf2-0');
      if (t?.leader === other) return true;
      if (t) await c.node(t.leader).admin.transferLeader({ group, to: other }).catch(() => undefined);
      return false;
    }, 30_000);
    await waitUntil('every node reports the new leader', agree, 30_000);

    // the admin API names what is wrong, with a code
    const base = `http://127.0.0.1:${c.node(2).adminPort}`;
    const call = async (method: string, p: string, body?: unknown): Promise<{ status: number; json: { code: string; message: string } }> => {
      const r = await fetch(`${base}${p}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
      return { status: r.status, json: (await r.json()) as { code: string; message: string } };
    };
    const badId = await call('PUT', '/v1/members/abc', { host: 'h', kafkaPort: 1, adminPort: 2, raftPort: 3 });
    expect([badId.status, badId.json.code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(badId.json.message).toMatch(/nodeId/);
    const badPort = await call('PUT', '/v1/members/9', { host: 'h', kafkaPort: 0, adminPort: 2, raftPort: 3 });
    expect([badPort.status, badPort.json.code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(badPort.json.message).toMatch(/kafkaPort/);
    const clash = await call('PUT', '/v1/members/9', { host: '127.0.0.1', kafkaPort: c.node(1).kafkaPort, adminPort: 2, raftPort: 3 });
    expect([clash.status, clash.json.code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(clash.json.message).toMatch(/kafkaPort: .* is already used by node 1/);
    const unknown = await call('DELETE', '/v1/members/42');
    expect([unknown.status, unknown.json.code]).toEqual([404, 'NOT_FOUND']);
  }, 180_000);

  it('node replacement: members remove 3, a fresh node 4 joins via members add, becomes a voter everywhere and holds every record; acks=all producer loses nothing', async () => {
    await waitUntil('controller', () => c.agreedLeader('__meta'), 60_000);
    const kafka = new Kafka({ clientId: 'membership', brokers: c.bootstrap(), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 2, replicationFactor: 3 }], waitForLeaders: true });
    await admin.disconnect();

    // background producer: acks=all, unique values; only answered sends count as acknowledged
    const acked = new Set<string>();
    let failures = 0;
    let stop = false;
    const producer: Producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    await producer.connect();
    const loop = (async () => {
      let i = 0;
      while (!stop) {
        // one partition per send: kafkajs (2.2) keeps a per-broker "already answered" map across retries, so a send
        // spanning two brokers can resolve without re-sending a partition whose leader moved to the other broker
        // (tulios/kafkajs#1798) — a client-side loss this test must not count against the broker
        const batch = Array.from({ length: 10 }, (_, k) => ({ key: `k${(i + k) % 5}`, value: `m-${i + k}`, partition: (i / 10) % 2 }));
        i += 10;
        try {
          await producer.send({ topic: 'orders', acks: -1, timeout: 30_000, messages: batch });
          for (const m of batch) acked.add(m.value);
        } catch {
          failures++;
        }
      }
    })();
    await waitUntil('first acknowledged writes', async () => acked.size >= 200, 60_000);

    // node 3 fails for good; the runbook: remove it, then add a replacement with a NEW id
    await c.kill(3);
    const admin1 = `127.0.0.1:${c.node(1).adminPort}`;
    // the RF=1/RF=2 topics of the first test have partitions that cannot reach a majority without node 3: refused
    await waitUntil('node 3 seen as down', async () => {
      const r = await lnc(['members', 'remove', '3', '--server', admin1, '--no-wait']);
      return r.code !== 0 && /CONFLICT/.test(r.stderr) ? r : undefined;
    }, 30_000).then((r) => expect(r.stderr).toMatch(/node 3 is down and .*rf1-/));
    for (const t of ['rf1', 'rf2']) await c.node(1).admin.deleteTopic(t);
    const rm = await lnc(['members', 'remove', '3', '--server', admin1, '--timeout-ms', '120000']);
    expect(rm.stderr + rm.stdout).not.toMatch(/error/i);
    expect(rm.code).toBe(0);
    const afterRemove = await new AdminClient(admin1).listMembers();
    expect(afterRemove.members.find((m) => m.nodeId === 3)?.state).toBe('removed');
    const mdRemoved = await metadataOf(c.node(1).kafkaPort, ['orders']);
    for (const p of mdRemoved.topics[0]!.partitions) expect([...p.replicaNodes].sort()).toEqual([1, 2]);
    expect(mdRemoved.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2]);
    const beforeAdd = acked.size;
    await waitUntil('writes continue on two nodes', async () => acked.size >= beforeAdd + 100, 60_000);

    // removing again is a no-op; removing below a live majority is refused with a code
    const again = await lnc(['members', 'remove', '3', '--server', admin1, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false });

    // a fresh node 4 (new id, empty disk) on node 3's address and ports, as the operator does (same pod host): not a
    // founder, so it joins instead of bootstrapping. Its peers list has only the current members, so the cluster id
    // is given (it cannot derive the founders' id).
    const n3 = c.node(3);
    const spec = { nodeId: 4, kafkaPort: n3.kafkaPort, adminPort: n3.adminPort, raftPort: n3.raftPort, dataDir: path.join(c.dir, 'node-4') };
    await mkdir(spec.dataDir, { recursive: true });
    const entry = (x: { nodeId: number; kafkaPort: number; adminPort: number; raftPort: number }): string =>
      `    - {nodeId: ${x.nodeId}, host: 127.0.0.1, raftPort: ${x.raftPort}, kafkaPort: ${x.kafkaPort}, adminPort: ${x.adminPort}}`;
    const cfg4 = path.join(c.dir, 'lance-4.yaml');
    const clusterId = (await c.node(1).admin.cluster()).clusterId;
    await writeFile(cfg4, `clusterId: ${clusterId}\nlisteners:\n  kafka: {host: 127.0.0.1}\n  admin: {host: 127.0.0.1}\n  raft: {host: 127.0.0.1}\ncluster:\n  bootstrapVoters: [1, 2, 3]\n  peers:\n${[c.node(1), c.node(2), spec].map(entry).join('\n')}\n`);
    startNode4 = () => {
      const out = createWriteStream(path.join(c.dir, 'node-4.log'), { flags: 'a' });
      const p = spawn(process.execPath, [LANCE, '--config', cfg4], { env: { ...process.env, LANCE_NODE_ID: '4', LANCE_DATA_DIR: spec.dataDir, LANCE_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout!.pipe(out);
      p.stderr!.pipe(out);
      node4 = p;
    };
    startNode4();
    spec4 = spec;
    const admin4 = new AdminClient(`127.0.0.1:${spec.adminPort}`);
    await waitUntil('node 4 admin', async () => (await admin4.live()).status === 'ok', 60_000);
    // before it is added it is no member of anything
    expect((await admin4.cluster()).groups!.find((g) => g.group === '__meta')!.voters).toEqual([]);

    const add = await lnc(['members', 'add', '4', '--server', admin1, '--host', '127.0.0.1', '--kafka-port', String(spec.kafkaPort),
      '--admin-port', String(spec.adminPort), '--raft-port', String(spec.raftPort), '--timeout-ms', '180000']);
    expect(add.stderr).toMatch(/node 4 registered/);
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/node 4 is active/);
    // idempotent
    const add2 = await lnc(['members', 'add', '4', '--server', admin1, '--host', '127.0.0.1', '--kafka-port', String(spec.kafkaPort),
      '--admin-port', String(spec.adminPort), '--raft-port', String(spec.raftPort), '--json', '--no-wait']);
    expect(add2.code).toBe(0);
    expect(JSON.parse(add2.stdout)).toMatchObject({ changed: false });

    const list: MembersList = JSON.parse((await lnc(['members', 'list', '--server', `127.0.0.1:${spec.adminPort}`, '--json'])).stdout) as MembersList;
    expect(list.members.map((m) => [m.nodeId, m.role, m.state])).toEqual([[1, 'voter', 'active'], [2, 'voter', 'active'], [3, 'none', 'removed'], [4, 'voter', 'active']]);
    const view4 = await admin4.cluster();
    expect(view4.groups!.find((g) => g.group === '__meta')!.voters).toEqual([1, 2, 4]);
    const orderGroups = view4.groups!.filter((g) => g.topic === 'orders');
    expect(orderGroups).toHaveLength(2);
    for (const g of orderGroups) expect(g.voters).toEqual([1, 2, 4]);
    const status = await lnc(['cluster-status', '--server', `127.0.0.1:${spec.adminPort}`]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/node:\s+4/);
    const metaLine = status.stdout.split('\n').find((l) => l.startsWith('__meta'));
    expect(metaLine).toMatch(/\s1,2,4\s/);

    // keep writing through the change, then stop and compare every replica
    const beforeStop = acked.size;
    await waitUntil('writes continue after the add', async () => acked.size >= beforeStop + 100, 60_000);
    stop = true;
    await loop;
    await producer.disconnect();

    const replicas = [c.node(1).admin, c.node(2).admin, admin4];
    for (let p = 0; p < 2; p++) {
      const hw = await waitUntil(`orders-${p}: equal high watermarks`, async () => {
        const hws = await Promise.all(replicas.map(async (a) => (await a.fetchRecords('orders', p, { offset: 0, max: 1 })).highWatermark));
        return hws.every((h) => h === hws[0]) ? hws[0] : undefined;
      }, 60_000);
      const logs = await Promise.all(replicas.map((a) => readAll(a, 'orders', p)));
      for (const l of logs) expect(l.length).toBe(hw);
      // byte-equal content on every replica: offsets, timestamps, keys, values, headers
      expect(JSON.stringify(logs[1])).toBe(JSON.stringify(logs[0]));
      expect(JSON.stringify(logs[2])).toBe(JSON.stringify(logs[0]));
    }
    const stored = new Set<string>();
    for (let p = 0; p < 2; p++) for (const r of await readAll(admin4, 'orders', p)) stored.add(r.value!);
    const lost = [...acked].filter((v) => !stored.has(v));
    expect(lost).toEqual([]);
    expect(acked.size).toBeGreaterThan(400);
    // Metadata from the new node names the brokers of the registry, and it leads nothing it was not told about
    const md4 = await metadataOf(spec.kafkaPort, ['orders']);
    expect(md4.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 4]);
    for (const p of md4.topics[0]!.partitions) expect([...p.replicaNodes].sort()).toEqual([1, 2, 4]);
    // failed sends (NOT_LEADER while leaders moved, timeouts) are allowed: they were never acknowledged
    void failures;
  }, 420_000);

  it('removing the live controller moves its leadership first; it leaves every group; acks=all writes keep working', async () => {
    expect(spec4).not.toBeNull();
    const s4 = spec4!;
    const server = (id: number): string => `127.0.0.1:${id === 4 ? s4.adminPort : c.node(id).adminPort}`;
    const adminOf = (id: number): AdminClient => new AdminClient(server(id));
    // a removal that would leave the metadata group without a live majority is refused: voters [1, 2, 4], node 4
    // down, removing node 1 would leave [2, 4] with only node 2 alive
    await killNode4();
    await waitUntil('removal refused for lack of a live majority', async () => {
      const r = await lnc(['members', 'remove', '1', '--server', server(2), '--no-wait']);
      if (r.code === 0) throw new Error(`removal of node 1 was accepted: ${r.stdout}`);
      return /CONFLICT: .*without a live majority/.test(r.stderr) ? r : undefined;
    }, 30_000);
    startNode4();
    await waitUntil('node 4 back and caught up', async () => {
      const l = await adminOf(2).listMembers();
      const v = await adminOf(4).cluster();
      return l.members.filter((m) => m.state === 'active').length === 3 && v.groups!.filter((g) => g.topic === 'orders').every((g) => g.leader !== null);
    }, 60_000);

    const ctrl = await waitUntil('a controller', async () => {
      const id = (await adminOf(4).cluster()).controllerId;
      return id !== undefined && id >= 0 ? id : undefined;
    }, 30_000);
    const survivors = [1, 2, 4].filter((x) => x !== ctrl);
    const kafka = new Kafka({
      clientId: 'membership-ctrl', brokers: survivors.map((id) => `127.0.0.1:${id === 4 ? s4.kafkaPort : c.node(id).kafkaPort}`),
      logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    await producer.connect();
    const acked = new Set<string>();
    let stop = false;
    const loop = (async () => {
      let i = 0;
      while (!stop) {
        const batch = Array.from({ length: 10 }, (_, k) => ({ key: `c${(i + k) % 5}`, value: `c-${i + k}`, partition: (i / 10) % 2 }));
        i += 10;
        try {
          await producer.send({ topic: 'orders', acks: -1, timeout: 30_000, messages: batch });
          for (const m of batch) acked.add(m.value);
        } catch {
          // not acknowledged: not counted
        }
      }
    })();
    await waitUntil('writes before the removal', async () => acked.size >= 100, 60_000);

    const rm = await lnc(['members', 'remove', String(ctrl), '--server', server(survivors[0]!), '--timeout-ms', '120000']);
    expect(rm.code).toBe(0);
    const newCtrl = (await adminOf(survivors[0]!).cluster()).controllerId;
    expect(survivors).toContain(newCtrl);
    const list = await adminOf(survivors[1]!).listMembers();
    expect(list.members.find((m) => m.nodeId === ctrl)).toMatchObject({ role: 'none', state: 'removed' });
    for (const id of survivors) expect(list.members.find((m) => m.nodeId === id)).toMatchObject({ role: 'voter', state: 'active' });
    // the removed node dropped its replicas (and their directories) once its groups no longer listed it
    await waitUntil('removed node holds no partition replica', async () => {
      const v = await adminOf(ctrl).cluster();
      return (v.groups ?? []).every((g) => g.topic === null);
    }, 60_000);

    const before = acked.size;
    await waitUntil('writes continue after the removal', async () => acked.size >= before + 100, 60_000);
    stop = true;
    await loop;
    await producer.disconnect();
    for (let p = 0; p < 2; p++) {
      const md = await metadataOf(survivors[0] === 4 ? s4.kafkaPort : c.node(survivors[0]!).kafkaPort, ['orders']);
      expect([...md.topics[0]!.partitions[p]!.replicaNodes].sort()).toEqual(survivors);
      const stored = new Set<string>();
      await waitUntil(`orders-${p} equal on the survivors`, async () => {
        const logs = await Promise.all(survivors.map((id) => readAll(adminOf(id), 'orders', p)));
        return JSON.stringify(logs[0]) === JSON.stringify(logs[1]) ? logs : undefined;
      }, 60_000).then((logs) => { for (const r of logs[0]!) stored.add(r.value!); });
      for (const v of acked) if (stored.has(v)) acked.delete(v);
    }
    if (acked.size > 0) {
      // diagnostics for a failure: every node's view of the orders groups
      for (const id of [...survivors, ctrl]) console.error(JSON.stringify((await adminOf(id).cluster()).groups?.filter((g) => g.topic === 'orders')));
    }
    expect([...acked]).toEqual([]);
  }, 300_000);
});
