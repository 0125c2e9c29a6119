/**
 * Cluster bootstrap configuration (`cluster:` in lance.yaml). Pure: parsing and validation only.
 *
 *   cluster:
 *     peers:                       # the founding members, identical on every node
 *       - {nodeId: 1, host: 10.0.0.1, raftPort: 1993, kafkaPort: 9092, adminPort: 1992}
 *     peersFile: /etc/lance/peers.yaml   # alternative: the operator's file {peers: [{ordinal, nodeId, pod, host, ...}]}
 *     bootstrapVoters: [1, 2, 3]   # the founding voters (default: every peer); a node not listed JOINS instead
 *     join: false                  # true: never bootstrap; wait to be added (`lnc members add`)
 *
 * With no peers the broker runs standalone (unchanged behaviour); `--standalone` forces standalone.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';

const port = z.number({ error: 'expected a port number 1-65535' }).int({ error: 'expected a port number 1-65535' })
  .min(1, { error: 'expected a port number 1-65535' }).max(65535, { error: 'expected a port number 1-65535' });

/** One peer. Extra keys (the operator's `ordinal`, `pod`) are allowed and ignored. */
export const ClusterPeerSchema = z.object({
  nodeId: z.number({ error: 'expected a non-negative integer' }).int({ error: 'expected a non-negative integer' }).nonnegative({ error: 'expected a non-negative integer' }),
  host: z.string({ error: 'expected a host name or IP address' }).min(1, { error: 'expected a host name or IP address' }),
  raftPort: port.default(1993),
  kafkaPort: port.default(9092),
  adminPort: port.default(1992),
  /** the pod this entry belongs to (operator's peers.yaml): with `cluster.podName` it selects this node's id */
  pod: z.string().min(1).optional(),
});
export type ClusterPeer = z.infer<typeof ClusterPeerSchema>;

export const ClusterSectionSchema = z.strictObject({
  peers: z.array(ClusterPeerSchema).default([]),
  peersFile: z.string().min(1, { error: 'expected a file path' }).optional(),
  /**
   * The node ids that founded the cluster (the metadata group's bootstrap voters, identical on every founder).
   * Default: every peer's id. Must not change after the first start; the operator writes the first replica set.
   */
  bootstrapVoters: z.array(z.number({ error: 'expected a node id' }).int({ error: 'expected a node id' }).nonnegative({ error: 'expected a node id' }))
    .min(1, { error: 'expected at least one node id' }).optional(),
  /**
   * This node's pod name (LANCE_POD_NAME): when a peer entry carries the same `pod`, its `nodeId` is this node's id
   * (over `nodeId`/LANCE_NODE_ID), so the operator can give a replacement pod a NEW id by editing peers.yaml.
   */
  podName: z.string().min(1, { error: 'expected a pod name' }).optional(),
  /** this node joins an existing cluster: it never bootstraps a group and waits to be added as a learner */
  join: z.boolean({ error: 'expected true or false' }).optional(),
  /**
   * Raft timing for every group on this node (defaults 150/300/50 ms: failover within the seed's 150–300 ms). A
   * shared or CPU-starved host can trade failover speed for fewer spurious elections by raising them; every node of
   * a cluster should use the same values.
   */
  raft: z.strictObject({
    electionTimeoutMinMs: z.number({ error: 'expected milliseconds' }).int({ error: 'expected whole milliseconds' }).positive({ error: 'expected > 0 ms' }).default(150),
    electionTimeoutMaxMs: z.number({ error: 'expected milliseconds' }).int({ error: 'expected whole milliseconds' }).positive({ error: 'expected > 0 ms' }).default(300),
    heartbeatMs: z.number({ error: 'expected milliseconds' }).int({ error: 'expected whole milliseconds' }).positive({ error: 'expected > 0 ms' }).default(50),
  }).superRefine((r, ctx) => {
    // the Raft core needs heartbeat < min < max: a follower must hear several heartbeats within one timeout
    if (!(r.heartbeatMs < r.electionTimeoutMinMs)) ctx.addIssue({ code: 'custom', path: ['heartbeatMs'], message: `must be below electionTimeoutMinMs (${r.electionTimeoutMinMs})` });
    if (!(r.electionTimeoutMinMs < r.electionTimeoutMaxMs)) ctx.addIssue({ code: 'custom', path: ['electionTimeoutMaxMs'], message: `must be above electionTimeoutMinMs (${r.electionTimeoutMinMs})` });
  }).optional(),
});
export type ClusterSection = z.infer<typeof ClusterSectionSchema>;

/** Checks a peer list: distinct node ids, distinct (host, port) per listener. Throws INVALID_CONFIG naming the field. */
export function validatePeers(peers: readonly ClusterPeer[], where: string): void {
  const ids = new Set<number>();
  const addrs = new Set<string>();
  peers.forEach((p, i) => {
    if (ids.has(p.nodeId)) throw new LanceError('INVALID_CONFIG', `${where}[${i}].nodeId: node id ${p.nodeId} appears twice`, { key: `${where}[${i}].nodeId` });
    ids.add(p.nodeId);
    for (const [name, port] of [['raftPort', p.raftPort], ['kafkaPort', p.kafkaPort], ['adminPort', p.adminPort]] as const) {
      const a = `${p.host}:${port}`;
      if (addrs.has(a)) throw new LanceError('INVALID_CONFIG', `${where}[${i}].${name}: ${a} is used twice`, { key: `${where}[${i}].${name}` });
      addrs.add(a);
    }
  });
}

/**
 * Founders and this node's mode. A node bootstraps the metadata group only when it is a founder and not told to join;
 * every other node starts with an empty log and no membership and waits for the controller to add it (a bootstrap
 * from a non-founder would write a different entry 1 than the founders' and break Raft's log matching).
 */
export function bootstrapPlan(section: Pick<ClusterSection, 'bootstrapVoters' | 'join'>, peers: readonly ClusterPeer[], nodeId: number): { founders: number[]; bootstrap: boolean } {
  const founders = [...(section.bootstrapVoters ?? peers.map((p) => p.nodeId))].sort((a, b) => a - b);
  if (new Set(founders).size !== founders.length) throw new LanceError('INVALID_CONFIG', `cluster.bootstrapVoters: a node id appears twice (${founders.join(', ')})`, { key: 'cluster.bootstrapVoters' });
  return { founders, bootstrap: section.join !== true && founders.includes(nodeId) };
}

/** This node's id: the peer entry naming `podName` wins over the configured `nodeId`. */
export function resolveNodeId(section: Pick<ClusterSection, 'podName'>, peers: readonly ClusterPeer[], configured: number): number {
  if (section.podName === undefined) return configured;
  return peers.find((p) => p.pod === section.podName)?.nodeId ?? configured;
}

/** Parses the operator's peers.yaml (`peers: [...]`). */
export function parsePeersFile(text: string, file: string): ClusterPeer[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new LanceError('INVALID_CONFIG', `${file}: not valid YAML: ${e instanceof Error ? e.message : String(e)}`, { path: file });
  }
  const r = z.object({ peers: z.array(ClusterPeerSchema) }).safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new LanceError('INVALID_CONFIG', `${file}: ${i.path.join('.') || '(root)'}: ${i.message}`, { path: file, key: i.path.join('.') });
  }
  validatePeers(r.data.peers, `${file}: peers`);
  return r.data.peers;
}
