/** Helpers for the cluster-mode group tests (real 3-node clusters from test/cluster/harness.ts). */
import type { Admin } from 'kafkajs';
import { waitUntil, type TestCluster } from '../../cluster/harness.ts';

/** starts nodes one after the other (on a loaded machine parallel starts can exceed the harness's start timeout) */
export async function startNodes(c: TestCluster, ids: number[]): Promise<void> {
  for (const id of ids) await c.startNode(id);
}

/** every running node knows the topic and has the same high watermark for each partition (replicas caught up) */
export async function replicasAgree(c: TestCluster, topic: string, partitions: number): Promise<void> {
  await waitUntil(`replicas of ${topic} in agreement`, async () => {
    const vs = await c.views();
    for (let p = 0; p < partitions; p++) {
      const hws = vs.map((v) => v.topics.find((t) => t.name === topic)?.partitions.find((x) => x.partition === p)?.highWatermark);
      if (hws.some((h) => h === undefined) || new Set(hws).size !== 1) return false;
    }
    return true;
  }, 120_000);
}

/** the controller (metadata group leader) every running node agrees on */
export async function controllerOf(c: TestCluster): Promise<number> {
  return (await waitUntil('an agreed controller', () => c.agreedLeader('__meta'), 90_000)).leader;
}

/** the leader of a partition, agreed by every running node, whose process is running */
export async function partitionLeaderOf(c: TestCluster, topic: string, partition: number): Promise<number> {
  return waitUntil(`a leader of ${topic}-${partition}`, async () => {
    const vs = await c.views();
    const ls = vs.map((v) => v.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partition === partition)?.leader ?? -1);
    const l = ls[0]!;
    return l >= 0 && ls.every((x) => x === l) && c.node(l).proc ? l : undefined;
  }, 90_000);
}

/** every partition of the topic has a leader agreed by every running node */
export async function topicReady(c: TestCluster, topic: string, partitions: number): Promise<void> {
  for (let p = 0; p < partitions; p++) await partitionLeaderOf(c, topic, p);
}

export async function committedOffsets(admin: Admin, group: string, topic: string): Promise<Map<number, number>> {
  const r = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return new Map(r[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
}

/** values that occur more than once */
export function duplicates(vals: string[]): string[] {
  const seen = new Set<string>();
  return vals.filter((v) => (seen.has(v) ? true : (seen.add(v), false)));
}

/**
 * Samples a group's committed offsets until stopped; records every move backwards. Failed fetches (a coordinator
 * moving) are skipped: the check is on the values that were read.
 */
export function offsetSampler(admin: Admin, group: string, topic: string): { stop(): Promise<string> } {
  const history = new Map<number, number>();
  let backwards = '';
  let running = true;
  const loop = (async () => {
    while (running) {
      const c = await committedOffsets(admin, group, topic).catch(() => null);
      for (const [p, o] of c ?? []) {
        const prev = history.get(p) ?? -1;
        if (o < prev) backwards += `partition ${p}: ${prev} → ${o}; `;
        history.set(p, Math.max(prev, o));
      }
      await new Promise((r) => setTimeout(r, 150)); // sampling period, not a race fix
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return backwards;
    },
  };
}
