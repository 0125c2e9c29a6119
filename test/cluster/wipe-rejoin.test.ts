/**
 * Acknowledged data survives wipe-and-rejoin under the SAME node id combined with rolling restarts and leadership
 * transfers (the operator e2e once saw a hole of acknowledged records on one replica after such a sequence).
 * Real processes, 3 nodes, 3 partitions RF 3, 64 KiB segments (segment transfer is exercised), a background acks=all
 * producer (one partition per send: kafkajs#1798 can drop a partition's batch of a multi-partition send). After
 * every round, every node's copy of every partition is read through its own admin fetch from the log start up to
 * its HW: offsets contiguous, identical (offset, value) sequence on every node, every acknowledged value present.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, waitUntil, type ClusterNode } from './harness.ts';

const SEGMENT_BYTES = 64 * 1024;
const TOPIC = 'wipe-rejoin';
const PARTITIONS = 3;
const ROUNDS = Number(process.env.WIPE_REJOIN_ROUNDS ?? 3);
const ENV = { LANCE_SEGMENT_BYTES: String(SEGMENT_BYTES) };
const saved: Record<string, string | undefined> = {};

interface Rec { offset: number; value: string }

describe('wipe + rejoin with the same id during rolling restarts (real processes)', () => {
  let c: TestCluster;
  let kafka: Kafka;
  const groups: string[] = [];
  /** acknowledged values per partition */
  const acked: Set<string>[] = Array.from({ length: PARTITIONS }, () => new Set<string>());
  let seq = 0;
  let producing = false;
  let loop: Promise<void> = Promise.resolve();
  let sendErrors = 0;
  /** records present twice (client re-sends), summed over partitions and rounds */
  let duplicates = 0;

  beforeAll(async () => {
    for (const [k, v] of Object.entries(ENV)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    c = await TestCluster.start(3);
    kafka = new Kafka({ clientId: 'wipe-rejoin', brokers: c.bootstrap(), logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 } });
  }, 120_000);

  afterAll(async () => {
    producing = false;
    await loop.catch(() => undefined);
    await c?.cleanup();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  /** background acks=all producer: one partition per send, unique values; records only acknowledged values */
  function startProducer(): void {
    producing = true;
    loop = (async () => {
      let producer: Producer | null = null;
      while (producing) {
        try {
          if (!producer) {
            producer = kafka.producer({ allowAutoTopicCreation: false });
            await producer.connect();
          }
          const p = seq % PARTITIONS;
          const values = Array.from({ length: 10 }, () => `p${p}-s${seq++}-${'x'.repeat(300)}`);
          await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value) => ({ partition: p, value })) });
          for (const v of values) acked[p]!.add(v);
        } catch {
          // not acknowledged: not counted; a fresh producer refreshes metadata from scratch
          sendErrors++;
          await producer?.disconnect().catch(() => undefined);
          producer = null;
        }
      }
      await producer?.disconnect().catch(() => undefined);
    })();
  }

  async function stopProducer(): Promise<void> {
    producing = false;
    await loop;
  }

  async function leaderOf(group: string): Promise<number> {
    return (await waitUntil(`agreed leader of ${group}`, () => c.agreedLeader(group), 90_000)).leader;
  }

  /** every record node x holds for `partition`, from its log start up to its HW */
  async function records(x: ClusterNode, partition: number): Promise<{ hw: number; recs: Rec[] }> {
    const first = await x.admin.fetchRecords(TOPIC, partition, { max: 1 });
    let offset = first.logStartOffset;
    const hw0 = first.highWatermark;
    const recs: Rec[] = [];
    while (offset < hw0) {
      const r = await x.admin.fetchRecords(TOPIC, partition, { offset, max: 5000, maxBytes: 4 * 1024 * 1024 });
      if (r.records.length === 0) throw new Error(`node ${x.nodeId} partition ${partition}: empty read at ${offset} below its HW ${hw0}`);
      for (const rec of r.records) if (rec.offset < hw0) recs.push({ offset: rec.offset, value: rec.value! });
      offset = r.nextOffset;
    }
    return { hw: hw0, recs };
  }

  /** wait until every node's HW of every partition equals the leader's log end, then compare all copies */
  async function checkAllReplicas(round: string): Promise<void> {
    for (const g of groups) {
      await waitUntil(`${round}: replicas of ${g} agree`, async () => {
        const vs = await c.views();
        const gs = vs.map((v) => v.groups?.find((x) => x.group === g));
        if (gs.some((x) => !x)) return false;
        const last = gs[0]!.lastIndex;
        return gs.every((x) => x!.lastIndex === last && x!.commitIndex === last);
      }, 120_000);
    }
    for (let p = 0; p < PARTITIONS; p++) {
      const leader = c.node(await leaderOf(groups[p]!));
      const lead = await waitUntil(`${round}: HWs of partition ${p} agree`, async () => {
        const all = await Promise.all(c.nodes.map(async (x) => (await x.admin.fetchRecords(TOPIC, p, { max: 1 })).highWatermark));
        return all.every((h) => h === all[0]) ? all[0] : undefined;
      }, 60_000);
      expect(lead).toBeGreaterThan(0);
      const want = await records(leader, p);
      for (const x of c.nodes) {
        const got = x === leader ? want : await records(x, p);
        const where = `${round}: node ${x.nodeId} partition ${p}`;
        // contiguous from 0 (nothing deleted by retention here): no hole
        const holes = got.recs.filter((r, i) => r.offset !== i);
        expect(holes.slice(0, 3), `${where}: offsets not contiguous`).toEqual([]);
        expect(got.recs.length, `${where}: record count`).toBe(got.hw);
        const have = new Set(got.recs.map((r) => r.value));
        const missing = [...acked[p]!].filter((v) => !have.has(v));
        expect(missing.slice(0, 5).map((v) => v.slice(0, 20)), `${where}: acknowledged records missing (${missing.length})`).toEqual([]);
        // duplicates are allowed: a plain (non-idempotent) producer re-sends a batch whose answer it lost (e.g. the
        // old leader answered NOT_LEADER after a transfer while the entry still committed under the new leader);
        // every copy is checked to be identical to the leader's below
        if (x === leader) duplicates += got.recs.length - have.size;
        if (x !== leader) {
          const diff = got.recs.findIndex((r, i) => r.value !== want.recs[i]?.value);
          expect(diff, `${where}: first offset differing from leader ${leader.nodeId}`).toBe(-1);
          expect(got.recs.length, `${where}: same length as the leader`).toBe(want.recs.length);
        }
      }
    }
  }

  /** move every group `id` leads to another node (best effort, re-issued until done: transfers can abort) */
  async function drainLeadership(id: number): Promise<void> {
    const all = ['__meta', ...groups];
    for (const g of all) {
      await waitUntil(`${g} led by a node other than ${id}`, async () => {
        const l = await c.agreedLeader(g);
        if (!l) return false;
        if (l.leader !== id) return true;
        const to = c.nodes.find((x) => x.nodeId !== id && x.proc)!.nodeId;
        await c.node(id).admin.transferLeader({ group: g, to }).catch(() => undefined);
        return false;
      }, 60_000);
    }
  }

  /** SIGTERM and wait for the exit, bounded: a broker that does not stop gracefully is a failure, not a hang */
  async function stopGracefully(id: number): Promise<void> {
    const x = c.node(id);
    const p = x.proc!;
    p.kill('SIGTERM');
    await waitUntil(`node ${id} exits after SIGTERM`, async () => p.exitCode !== null || p.signalCode !== null, 60_000).catch(async (e: unknown) => {
      await c.kill(id);
      throw e;
    });
    x.proc = null;
  }

  async function allLeadersAgreed(): Promise<void> {
    for (const g of ['__meta', ...groups]) await leaderOf(g);
  }

  it(`${ROUNDS} rounds of wipe-and-rejoin + rolling restart keep every acknowledged record on every replica, without holes`, async () => {
    await waitUntil('controller', () => c.agreedLeader('__meta'), 60_000);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitUntil('topic created', async () => {
        await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true });
        return (await admin.fetchTopicMetadata({ topics: [TOPIC] })).topics[0]?.partitions.length === PARTITIONS;
      }, 60_000);
    } finally {
      await admin.disconnect();
    }
    const view = await waitUntil('partition groups', async () => {
      const gs = (await c.node(1).admin.cluster()).groups?.filter((x) => x.topic === TOPIC) ?? [];
      return gs.length === PARTITIONS ? gs : undefined;
    });
    for (let p = 0; p < PARTITIONS; p++) groups.push(view.find((g) => g.partition === p)!.group);
    startProducer();
    // enough data for several sealed segments per partition before the first wipe
    await waitUntil('initial data', async () => acked.every((s) => s.size >= 800), 120_000);

    for (let round = 1; round <= ROUNDS; round++) {
      // the same node is wiped every round and rejoins under its id (like demo-2 in the operator e2e): odd rounds
      // SIGKILL it wherever it leads ("disk lost"), even rounds move its leaderships away and stop it gracefully
      // first ("replace")
      const victim = 2;
      if (round % 2 === 0) {
        await allLeadersAgreed();
        await drainLeadership(victim);
        await stopGracefully(victim);
      } else {
        await c.kill(victim);
      }
      await c.wipe(victim);
      const grown = acked.map((s) => s.size + 150);
      await waitUntil('more data while the victim is down', async () => acked.every((s, i) => s.size >= grown[i]!), 120_000);
      await c.startNode(victim);
      // while it catches up: SIGKILL the leader of one partition (if not the victim) and restart it
      const lk = await leaderOf(groups[round % PARTITIONS]!);
      if (lk !== victim) {
        await c.kill(lk);
        await c.startNode(lk);
      }
      // rolling restart: every node in turn, leadership moved away first, graceful stop; the victim last
      for (const id of [...c.nodes.map((x) => x.nodeId).filter((id) => id !== victim), victim]) {
        await allLeadersAgreed();
        await drainLeadership(id);
        await stopGracefully(id);
        await c.startNode(id);
      }
      await allLeadersAgreed();
      const more = acked.map((s) => s.size + 100);
      await waitUntil('producing after the round', async () => acked.every((s, i) => s.size >= more[i]!), 120_000);
      await stopProducer();
      await checkAllReplicas(`round ${round} (victim ${victim})`);
      startProducer();
    }
    await stopProducer();
    // the wiped node came back in vote hold and left it by catching up with a leader (rule 1), every round
    const victimLines = await c.logLines(2);
    const releases = victimLines.filter((l) => l.msg === 'raft: vote hold released');
    const held = victimLines.filter((l) => l.msg.startsWith('raft: vote hold (fresh storage)'));
    expect(held.filter((l) => l.group === '__meta').length).toBeGreaterThanOrEqual(ROUNDS);
    expect(releases.filter((l) => l.group === '__meta' && l.reason === 'caught-up').length).toBeGreaterThanOrEqual(ROUNDS);
    for (const g of groups) expect(releases.some((l) => l.group === g && l.reason === 'caught-up'), `${g} released on node 2`).toBe(true);
    // never two leaders of one group in one term (every node logs its role changes, over all its starts)
    const claims = new Map<string, Set<number>>();
    for (const x of c.nodes) {
      for (const l of await c.logLines(x.nodeId)) {
        if (l.msg !== 'raft: role change' || l.role !== 'leader') continue;
        const k = `${String(l.group)} term ${String(l.term)}`;
        const s2 = claims.get(k) ?? new Set<number>();
        s2.add(x.nodeId);
        claims.set(k, s2);
      }
    }
    const twice = [...claims.entries()].filter(([, ids]) => ids.size > 1).map(([k, ids]) => `${k}: nodes ${[...ids].join(',')}`);
    expect(twice).toEqual([]);
    expect(claims.size).toBeGreaterThan(0);
    const heldMs = releases.map((l) => Number(l.heldMs)).sort((a, b) => a - b);
    process.stdout.write(`wipe-rejoin: vote hold released ${releases.length} times on node 2 (held ${heldMs[0]}..${heldMs[heldMs.length - 1]} ms), ${claims.size} (group, term) leaderships, none claimed twice\n`);
    process.stdout.write(`wipe-rejoin: ${ROUNDS} rounds, acknowledged ${acked.map((s) => s.size).join('/')} records per partition, ${sendErrors} failed sends, ${duplicates} re-sent duplicates on the leaders\n`);
  }, 900_000);
});
