/**
 * Lance under test: a standalone node or a 3-node cluster as real `node bin/lance.js` processes (the same spawn
 * approach as test/cluster/harness.ts), topics made over the Kafka protocol, and a produce Driver on LeanConn.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../../broker/src/admin/client.ts';
import { buildRecordBatch } from '../../broker/src/kafka/records.ts';
import type { Driver } from './driver.ts';
import { createTopic, LeanConn, leaders, produceError, produceTemplate, type PartitionLeader } from './kafka-lean.ts';
import { freePort, spawnChild, stopChild, waitFor, type Child } from './procs.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LANCE = path.join(ROOT, 'bin/lance.js');

export interface LanceNode { nodeId: number; kafkaPort: number; adminPort: number; raftPort: number; dataDir: string; child: Child | null; admin: AdminClient; logFile: string }

export class LanceSystem {
  readonly nodes: LanceNode[] = [];
  private configFile = '';
  private constructor(readonly dir: string, readonly cluster: boolean, private readonly nodeArgs: string[]) {}

  /** n = 1: `lance --standalone`; n > 1: cluster mode with n peers on 127.0.0.1. nodeArgs: e.g. --cpu-prof flags */
  static async start(dir: string, n: number, nodeArgs: string[] = []): Promise<LanceSystem> {
    const s = new LanceSystem(dir, n > 1, nodeArgs);
    mkdirSync(dir, { recursive: true });
    for (let i = 1; i <= n; i++) {
      const node: LanceNode = { nodeId: i, kafkaPort: await freePort(), adminPort: await freePort(), raftPort: await freePort(), dataDir: path.join(dir, `node-${i}`), child: null, admin: null as unknown as AdminClient, logFile: path.join(dir, `node-${i}.log`) };
      node.admin = new AdminClient(`127.0.0.1:${node.adminPort}`);
      s.nodes.push(node);
    }
    if (s.cluster) {
      s.configFile = path.join(dir, 'lance.yaml');
      const peers = s.nodes.map((x) => `    - {nodeId: ${x.nodeId}, host: 127.0.0.1, raftPort: ${x.raftPort}, kafkaPort: ${x.kafkaPort}, adminPort: ${x.adminPort}}`).join('\n');
      writeFileSync(s.configFile, `listeners:\n  kafka: {host: 127.0.0.1}\n  admin: {host: 127.0.0.1}\n  raft: {host: 127.0.0.1}\ncluster:\n  peers:\n${peers}\n`);
    }
    await Promise.all(s.nodes.map((x) => s.startNode(x.nodeId)));
    return s;
  }

  node(id: number): LanceNode {
    return this.nodes.find((x) => x.nodeId === id)!;
  }

  async startNode(id: number): Promise<void> {
    const x = this.node(id);
    mkdirSync(x.dataDir, { recursive: true });
    const env = { LANCE_LOG_LEVEL: 'warn', VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined };
    x.child = this.cluster
      ? spawnChild(`lance-${id}`, process.execPath, [...this.nodeArgs, LANCE, '--config', this.configFile], x.logFile, { ...env, LANCE_NODE_ID: String(id), LANCE_DATA_DIR: x.dataDir }, ROOT)
      : spawnChild('lance', process.execPath, [...this.nodeArgs, LANCE, '--standalone', '--data-dir', x.dataDir, '--host', '127.0.0.1', '--advertised-host', '127.0.0.1', '--kafka-port', String(x.kafkaPort), '--admin-port', String(x.adminPort)], x.logFile, env, ROOT);
    const child = x.child;
    await waitFor(`lance node ${id} admin /health/live`, async () => {
      if (child.exited) throw new Error(`lance node ${id} exited: ${child.tail()}`);
      return (await x.admin.live()).status === 'ok';
    }, 90_000);
  }

  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const x = this.node(id);
    if (x.child) await stopChild(x.child, signal);
    x.child = null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all(this.nodes.map((x) => this.kill(x.nodeId, signal)));
  }

  /** a Kafka connection to any running node */
  async anyConn(): Promise<LeanConn> {
    for (const x of this.nodes) {
      if (!x.child) continue;
      try {
        return await LeanConn.connect('127.0.0.1', x.kafkaPort);
      } catch {
        // next node
      }
    }
    throw new Error('no running lance node accepts Kafka connections');
  }

  /** creates `topic` (retrying while the controller is elected) and waits until every partition has a leader */
  async createTopic(topic: string, partitions: number, rf: number): Promise<PartitionLeader[]> {
    await waitFor(`topic ${topic} created`, async () => {
      const c = await this.anyConn();
      try {
        const code = await createTopic(c, topic, partitions, rf);
        return code === 0 || code === 36; // 36 TOPIC_ALREADY_EXISTS: an earlier try got through
      } finally {
        c.close();
      }
    }, 60_000, 200);
    return this.leaders(topic);
  }

  async leaders(topic: string, timeoutMs = 60_000): Promise<PartitionLeader[]> {
    return waitFor(`leaders of ${topic}`, async () => {
      const c = await this.anyConn();
      try {
        return await leaders(c, topic);
      } finally {
        c.close();
      }
    }, timeoutMs, 50);
  }

  /**
   * Cluster mode: moves partition i's leadership to node (i mod n)+1 so the leaders are spread like Kafka's
   * preferred leaders (Raft elects whoever times out first). Best effort: returns the final placement.
   */
  async spreadLeaders(topic: string): Promise<PartitionLeader[]> {
    let ls = await this.leaders(topic);
    if (!this.cluster) return ls;
    const view = await this.nodes[0]!.admin.cluster();
    const groups = (view.groups ?? []).map((g) => g.group).filter((g) => /^topic_\d+\/\d+$/.test(g));
    for (const l of ls) {
      const want = (l.partition % this.nodes.length) + 1;
      if (l.leaderId === want) continue;
      // several topics may exist: the group of this topic's partition is the one whose current leader matches
      const group = groups.find((g) => g.endsWith(`/${l.partition}`) && (view.groups ?? []).some((x) => x.group === g && x.leader === l.leaderId));
      if (!group) continue;
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await this.node(l.leaderId).admin.transferLeader({ group, to: want });
          const ok = await waitFor(`leader of ${group} → ${want}`, async () => (await this.leaders(topic, 5000)).find((x) => x.partition === l.partition)?.leaderId === want, 5000).catch(() => false);
          if (ok) break;
        } catch {
          // transfer aborted by Raft (best effort by design): try again
        }
      }
    }
    ls = await this.leaders(topic);
    return ls;
  }
}

/**
 * Produce driver: `connsPerPartition` connections to each partition's leader, a pre-encoded Produce v9 frame per
 * partition carrying one RecordBatch v2 of `recordsPerUnit` records; send() round-robins the partitions. Like a
 * real Kafka producer it retries NOT_LEADER_OR_FOLLOWER (6) / a lost connection after refreshing the leaders
 * (`refresh`), so a leadership change costs latency, not a failed request; `retries` counts them.
 */
export async function lanceDriver(topic: string, ls: PartitionLeader[], recordBytes: number, recordsPerUnit: number, acks: number, connsPerPartition = 2, refresh?: () => Promise<PartitionLeader[]>): Promise<Driver & { retries: () => number }> {
  const value = Buffer.alloc(recordBytes, 0x61);
  const batch = buildRecordBatch(Array.from({ length: recordsPerUnit }, (_, i) => ({ key: null, value, headers: [], timestamp: 1_700_000_000_000 + i })));
  type Slot = { partition: number; leaderId: number; conn: LeanConn; frame: Buffer };
  let slots: Slot[] = [];
  const open = async (leaders: PartitionLeader[]): Promise<void> => {
    const next: Slot[] = [];
    for (let k = 0; k < connsPerPartition; k++) {
      for (const l of leaders) {
        const old = slots.find((x) => x.partition === l.partition && x.leaderId === l.leaderId && !x.conn.isClosed && !next.includes(x));
        next.push(old ?? { partition: l.partition, leaderId: l.leaderId, conn: await LeanConn.connect(l.host, l.port), frame: produceTemplate(topic, l.partition, batch, acks) });
      }
    }
    for (const s of slots) if (!next.includes(s)) s.conn.close();
    slots = next;
  };
  await open(ls);
  let refreshing: Promise<void> | null = null;
  const doRefresh = (): Promise<void> => {
    if (!refresh) return Promise.resolve();
    refreshing ??= refresh().then(open).finally(() => (refreshing = null));
    return refreshing;
  };
  let rr = 0;
  let retries = 0;
  return {
    recordBytes,
    recordsPerUnit,
    retries: () => retries,
    async send() {
      const i = rr++;
      for (let attempt = 0; ; attempt++) {
        if (refreshing) await refreshing;
        const s = slots[i % slots.length]!;
        let code: number;
        try {
          code = produceError(await s.conn.sendFrame(s.frame));
        } catch (e) {
          if (!refresh || attempt >= 20) throw e;
          code = -1;
        }
        if (code === 0) return;
        if (!refresh || attempt >= 20 || (code !== 6 && code !== -1)) throw new Error(`produce error code ${code}`);
        retries++;
        await doRefresh().catch(() => undefined);
        // metadata may still name the old leader until the election settles: back off a little, growing
        await new Promise((r) => setTimeout(r, Math.min(100, 5 * attempt)));
      }
    },
    async close() {
      for (const s of slots) s.conn.close();
    },
  };
}
