/**
 * Read-your-writes of committed group offsets on a real 3-node cluster (Kafka's contract: once OffsetCommit answers
 * NONE for a partition, every later OffsetFetch — from any coordinator — returns that offset or a newer one; a
 * coordinator that is not ready answers COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR, never stale or empty offsets).
 *
 * 1. kafkajs `admin.setOffsets` → `admin.fetchOffsets`, many rounds over topics whose partition leaders are spread over
 *    the three nodes (what test/cluster/cold-start.test.ts does in its setup).
 * 2. Wire level (exact requests): FindCoordinator asked of a random node, OffsetCommit (generation -1, several
 *    topics and partitions in one request), then FindCoordinator of another random node and OffsetFetch — while the
 *    controller (the coordinator) is moved with `transfer-leader` and SIGKILLed.
 * 3. The controller SIGSTOPped and cut off (raft proxies) while the two others elect a new one that acknowledges a
 *    commit; an OffsetFetch written to the old one's socket meanwhile is the first thing it reads on SIGCONT. Without
 *    the read barrier (broker/src/cluster/cluster-groups.ts) it answered the offsets from before the commit.
 */
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { KafkaWireClient } from '../../broker/src/kafka/client.ts';
import type { OffsetCommitRequest, OffsetCommitResponse, OffsetFetchResponse } from '../../broker/src/kafka/protocol/groups.ts';
import type { FindCoordinatorResponse } from '../../broker/src/kafka/protocol/messages.ts';
import { TestCluster, waitUntil } from '../cluster/harness.ts';
import { controllerOf, replicasAgree, startNodes, topicReady } from './helpers/cluster.ts';

let cluster: TestCluster | undefined;
const clients: KafkaWireClient[] = [];
afterAll(async () => {
  for (const w of clients) w.close();
  await cluster?.cleanup();
});

const TOPICS: Record<string, number> = { ra: 3, rb: 3, rc: 1 };
/** errors a client answers by looking the coordinator up again */
const RETRIABLE = new Set([14 /* COORDINATOR_LOAD_IN_PROGRESS */, 15 /* COORDINATOR_NOT_AVAILABLE */, 16 /* NOT_COORDINATOR */, 7 /* REQUEST_TIMED_OUT */]);

type Offsets = Record<string, Record<number, number>>;

async function kafkajsOffsets(admin: Admin, group: string): Promise<Offsets> {
  const out: Offsets = {};
  for (const r of await admin.fetchOffsets({ groupId: group, topics: Object.keys(TOPICS) })) {
    out[r.topic] = Object.fromEntries(r.partitions.map((p) => [p.partition, Number(p.offset)]));
  }
  return out;
}

/** A Kafka client reduced to what the contract is about: find the coordinator (asking any node), commit, fetch. */
class WireGroupClient {
  private readonly conns = new Map<string, KafkaWireClient>();
  private rr = 0;
  /** nodes not asked (a frozen process would never answer) */
  readonly exclude = new Set<number>();
  constructor(private readonly c: TestCluster) {}

  private async conn(host: string, port: number): Promise<KafkaWireClient> {
    const key = `${host}:${port}`;
    const have = this.conns.get(key);
    if (have) return have;
    const w = await KafkaWireClient.connect(host, port, 'ryw');
    clients.push(w);
    this.conns.set(key, w);
    return w;
  }

  private drop(host: string, port: number): void {
    const key = `${host}:${port}`;
    this.conns.get(key)?.close();
    this.conns.delete(key);
  }

  /** the coordinator as answered by the next running node (round robin over nodes: a different one each time) */
  private async coordinator(group: string): Promise<{ host: string; port: number; nodeId: number; askedNode: number }> {
    const running = this.c.nodes.filter((n) => n.proc && !this.exclude.has(n.nodeId));
    const n = running[this.rr++ % running.length]!;
    const w = await this.conn(n.host, n.kafkaPort);
    const r = await w.request<FindCoordinatorResponse>(10, 1, { key: group, keyType: 0, coordinatorKeys: [] });
    if (r.errorCode !== 0) throw Object.assign(new Error(`FindCoordinator on node ${n.nodeId}: error ${r.errorCode}`), { retriable: true });
    return { host: r.host, port: r.port, nodeId: r.nodeId, askedNode: n.nodeId };
  }

  /** retries whole-request retriable outcomes (coordinator moved, loading, connection lost) like a client does */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        const retriable = (e as { retriable?: boolean }).retriable === true || /closed|ECONNREFUSED|ECONNRESET|EPIPE/.test(String(e));
        if (!retriable || Date.now() > deadline) throw new Error(`${what}: ${String(e)}`);
        await new Promise((r) => setTimeout(r, 100)); // client backoff before looking the coordinator up again
      }
    }
  }

  /** commits every partition of `offsets` (generation -1); resolves when the coordinator answered NONE for all */
  async commit(group: string, offsets: Offsets): Promise<{ coordinator: number }> {
    return this.retrying('OffsetCommit', async () => {
      const co = await this.coordinator(group);
      const w = await this.conn(co.host, co.port).catch((e: unknown) => { throw Object.assign(new Error(String(e)), { retriable: true }); });
      const req: OffsetCommitRequest = {
        groupId: group, generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1,
        topics: Object.entries(offsets).map(([name, ps]) => ({
          name, partitions: Object.entries(ps).map(([p, o]) => ({ partitionIndex: Number(p), committedOffset: o, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: null })),
        })),
      };
      let r: OffsetCommitResponse;
      try {
        r = await w.request<OffsetCommitResponse>(8, 5, req);
      } catch (e) {
        this.drop(co.host, co.port);
        throw Object.assign(new Error(String(e)), { retriable: true });
      }
      const codes = r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode));
      if (codes.some((x) => RETRIABLE.has(x))) throw Object.assign(new Error(`OffsetCommit on node ${co.nodeId}: errors ${codes.join(',')}`), { retriable: true });
      if (codes.some((x) => x !== 0)) throw new Error(`OffsetCommit on node ${co.nodeId}: errors ${codes.join(',')}`);
      return { coordinator: co.nodeId };
    });
  }

  /** the committed offsets of every partition of TOPICS, from the coordinator some (other) node names */
  async fetch(group: string): Promise<{ offsets: Offsets; coordinator: number; askedNode: number }> {
    return this.retrying('OffsetFetch', async () => {
      const co = await this.coordinator(group);
      const w = await this.conn(co.host, co.port).catch((e: unknown) => { throw Object.assign(new Error(String(e)), { retriable: true }); });
      let r: OffsetFetchResponse;
      try {
        r = await w.request<OffsetFetchResponse>(9, 5, fetchRequest(group));
      } catch (e) {
        this.drop(co.host, co.port);
        throw Object.assign(new Error(String(e)), { retriable: true });
      }
      const codes = [r.errorCode, ...r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode))];
      if (codes.some((x) => RETRIABLE.has(x))) throw Object.assign(new Error(`OffsetFetch on node ${co.nodeId}: errors ${codes.join(',')}`), { retriable: true });
      if (codes.some((x) => x !== 0)) throw new Error(`OffsetFetch on node ${co.nodeId}: errors ${codes.join(',')}`);
      const offsets: Offsets = {};
      for (const t of r.topics) offsets[t.name] = Object.fromEntries(t.partitions.map((p) => [p.partitionIndex, p.committedOffset]));
      return { offsets, coordinator: co.nodeId, askedNode: co.askedNode };
    });
  }
}

function fetchRequest(group: string): object {
  return { groupId: group, topics: Object.entries(TOPICS).map(([name, n]) => ({ name, partitionIndexes: Array.from({ length: n }, (_, i) => i) })), groups: [], requireStable: false };
}

function valuesFor(round: number): Offsets {
  const out: Offsets = {};
  for (const [t, n] of Object.entries(TOPICS)) out[t] = Object.fromEntries(Array.from({ length: n }, (_, p) => [p, round * 10 + p]));
  return out;
}

describe('committed offsets read back after OffsetCommit answered NONE (3 nodes, any coordinator)', () => {
  it('kafkajs setOffsets → fetchOffsets; wire commit → fetch across transfer-leader, SIGKILL, and a frozen (SIGSTOP) cut-off controller', async () => {
    cluster = await TestCluster.start(3, { raftProxies: true });
    const c = cluster;
    await controllerOf(c);
    const kafka = new Kafka({ brokers: c.bootstrap(), clientId: 'ryw', logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: Object.entries(TOPICS).map(([topic, numPartitions]) => ({ topic, numPartitions, replicationFactor: 3 })), waitForLeaders: true });
    for (const [t, n] of Object.entries(TOPICS)) await topicReady(c, t, n);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (const [topic, n] of Object.entries(TOPICS)) {
      for (let p = 0; p < n; p++) await producer.send({ topic, acks: -1, messages: Array.from({ length: 200 }, (_, i) => ({ partition: p, value: `v${i}` })) });
    }
    await producer.disconnect();
    for (const [t, n] of Object.entries(TOPICS)) await replicasAgree(c, t, n);

    // 1. kafkajs, as the cold-start drill does it: one setOffsets per topic, then one read-back that must match
    const misses: string[] = [];
    for (let round = 1; round <= 6; round++) {
      const want = valuesFor(round);
      for (const [topic, ps] of Object.entries(want)) {
        await admin.setOffsets({ groupId: `kj-${round % 2}`, topic, partitions: Object.entries(ps).map(([partition, o]) => ({ partition: Number(partition), offset: String(o) })) });
      }
      const got = await kafkajsOffsets(admin, `kj-${round % 2}`);
      if (JSON.stringify(got) !== JSON.stringify(want)) misses.push(`round ${round}: wanted ${JSON.stringify(want)} got ${JSON.stringify(got)}`);
    }
    expect(misses).toEqual([]);

    // 2. wire level: commit (answered NONE) → fetch from the coordinator another node names, many rounds
    const wire = new WireGroupClient(c);
    const stale: string[] = [];
    const check = async (round: number, want: Offsets, committedOn: number): Promise<void> => {
      const got = await wire.fetch('wire');
      for (const [t, ps] of Object.entries(want)) {
        for (const [p, o] of Object.entries(ps)) {
          const g = got.offsets[t]?.[Number(p)] ?? -1;
          if (g < o) stale.push(`round ${round}: ${t}-${p} committed ${o} on node ${committedOn}, node ${got.coordinator} (named by node ${got.askedNode}) answered ${g}`);
        }
      }
    };
    let round = 100;
    for (let i = 0; i < 30; i++, round++) {
      const want = valuesFor(round);
      const { coordinator } = await wire.commit('wire', want);
      await check(round, want, coordinator);
    }
    expect(stale).toEqual([]);

    // across controller moves: commit, move the controller (not waiting for it), read back at once
    for (let i = 0; i < 6; i++, round++) {
      const ctl = await controllerOf(c);
      const want = valuesFor(round);
      const { coordinator } = await wire.commit('wire', want);
      const to = [1, 2, 3].find((n) => n !== ctl && c.node(n).proc)!;
      await c.node(ctl).admin.transferLeader({ group: '__meta', to }).catch(() => undefined); // may refuse while a move is under way
      await check(round, want, coordinator);
    }
    expect(stale).toEqual([]);

    // SIGKILL of the controller right after a commit answered: the offsets survive on the new one
    for (let i = 0; i < 2; i++, round++) {
      const ctl = await controllerOf(c);
      const want = valuesFor(round);
      const { coordinator } = await wire.commit('wire', want);
      await c.kill(ctl);
      await check(round, want, coordinator);
      await startNodes(c, [ctl]);
      await check(round, want, coordinator);
    }
    expect(stale).toEqual([]);

    // 3. the controller frozen (SIGSTOP: a long GC pause, a starved process) and cut off while the two others elect
    // a new controller that takes a commit; an OffsetFetch sent to the old one meanwhile is read when it wakes up,
    // before anything tells it that it was deposed. It must not answer with the offsets from before.
    for (let i = 0; i < 3; i++, round++) {
      await controllerOf(c);
      // the node that coordinates now: the one that acknowledged this commit
      const old = (await wire.commit('wire', valuesFor(round))).coordinator;
      const direct = await KafkaWireClient.connect(c.node(old).host, c.node(old).kafkaPort, 'ryw-direct');
      clients.push(direct);
      const pid = c.node(old).proc!.pid!;
      process.kill(pid, 'SIGSTOP');
      c.setProxiesCut(old, true);
      wire.exclude.add(old);
      try {
        const others = c.nodes.filter((n) => n.nodeId !== old);
        const fresh = await waitUntil('a new controller among the others', async () => {
          const vs = await Promise.all(others.map((n) => n.admin.cluster()));
          const ls = vs.map((v) => v.groups?.find((g) => g.group === '__meta')?.leader ?? null);
          return ls[0] !== null && ls[0] !== old && ls.every((l) => l === ls[0]) ? ls[0] : undefined;
        }, 120_000);
        round++;
        const after = valuesFor(round);
        // acknowledged by the new controller (the frozen one is asked nothing and named by no one)
        expect((await wire.commit('wire', after)).coordinator).not.toBe(old);
        // written while the old controller is stopped: it is the first thing it reads when it runs again
        const pending = direct.request<OffsetFetchResponse>(9, 5, fetchRequest('wire'));
        process.kill(pid, 'SIGCONT');
        const r = await pending;
        const codes = [r.errorCode, ...r.topics.flatMap((t) => t.partitions.map((p) => p.errorCode))];
        if (codes.every((x) => x === 0)) {
          for (const t of r.topics) {
            for (const p of t.partitions) {
              const want = after[t.name]![p.partitionIndex]!;
              if (p.committedOffset < want) stale.push(`frozen controller ${old}: ${t.name}-${p.partitionIndex} answered ${p.committedOffset} after node ${fresh} acknowledged ${want}`);
            }
          }
        } else {
          // a coordinator that is not sure it still is one answers a retriable error
          expect(codes.filter((x) => x !== 0).every((x) => RETRIABLE.has(x)), `error codes ${codes.join(',')}`).toBe(true);
        }
        process.stdout.write(`[ryw] frozen controller ${old} answered codes ${[...new Set(codes)].join(',')}\n`);
      } finally {
        process.kill(pid, 'SIGCONT');
        c.setProxiesCut(old, false);
        wire.exclude.delete(old);
      }
      await check(round, valuesFor(round), -1);
    }
    expect(stale).toEqual([]);
    await admin.disconnect();
  }, 900_000);
});
