/**
 * The metadata state machine (pure): the cluster catalog replicated by the "__meta" Raft group, whose leader is
 * the controller. Commands are JSON in CONTROL entries of `<data>/wal/`; every node applies the committed ones in
 * log order and gets the same state. In cluster mode this IS the topic catalog (storage/catalog.ts is standalone only).
 */
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import {
  applyGroupCommand, emptyGroupsState, groupCommandSchema, groupsSnapshotSchema, snapshotOf, stateFromSnapshot, type GroupsState,
} from '../groups/commands.ts';

export const META_GROUP = '__meta';

const nodeId = z.number().int().nonnegative();
const TopicConfigSchema = z.record(z.string(), z.string());

export const BrokerInfoSchema = z.strictObject({
  nodeId,
  host: z.string().min(1),
  kafkaPort: z.number().int().min(0).max(65535),
  adminPort: z.number().int().min(0).max(65535),
  raftPort: z.number().int().min(0).max(65535),
});
export type BrokerInfo = z.infer<typeof BrokerInfoSchema>;

/** A partition's new target replica set (membership changes): the partition's leader moves its Raft group there. */
const ReassignSchema = z.strictObject({ name: z.string().min(1), partition: z.number().int().nonnegative(), replicas: z.array(nodeId).min(1) });
export type Reassign = z.infer<typeof ReassignSchema>;

/** What a partition's leader last reported about its group (the Metadata answer for nodes without a replica). */
export const PartitionLeaderSchema = z.strictObject({
  leader: nodeId, term: z.number().int().nonnegative(), voters: z.array(nodeId), learners: z.array(nodeId),
});
export type PartitionLeader = z.infer<typeof PartitionLeaderSchema>;

export const MetaCommandSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('createTopic'), name: z.string().min(1), topicId: z.string().min(1), partitions: z.number().int().positive(),
    rf: z.number().int().positive(), config: TopicConfigSchema, assignment: z.array(z.array(nodeId)),
  }),
  z.strictObject({ op: z.literal('deleteTopic'), name: z.string().min(1) }),
  z.strictObject({ op: z.literal('createPartitions'), name: z.string().min(1), assignment: z.array(z.array(nodeId)) }),
  z.strictObject({ op: z.literal('alterConfig'), name: z.string().min(1), config: TopicConfigSchema }),
  /** add or update a broker's endpoints; `reassign`: partitions that gain it as a replica (under-replicated ones) */
  z.strictObject({ op: z.literal('registerBroker'), broker: BrokerInfoSchema, reassign: z.array(ReassignSchema).optional() }),
  /** the founding members at once (the controller's first act), so assignment never sees half of them */
  z.strictObject({ op: z.literal('registerBrokers'), brokers: z.array(BrokerInfoSchema) }),
  /** `lnc members remove`: the id is retired for good; `reassign` moves every replica it held */
  z.strictObject({ op: z.literal('unregisterBroker'), nodeId, reassign: z.array(ReassignSchema) }),
  /** a partition leader's report: leader, term (= Kafka leader epoch) and Raft membership of its group */
  z.strictObject({ op: z.literal('reportPartition'), name: z.string().min(1), id: z.number().int().positive(), partition: z.number().int().nonnegative(), state: PartitionLeaderSchema }),
  // consumer groups (broker/src/cluster/cluster-groups.ts): the coordinator's commands, applied in log order
  z.strictObject({ op: z.literal('groups'), cmds: z.array(groupCommandSchema) }),
  // producer ids [from, next) are reserved; applies only if `from` is the current high-water mark (no overlap)
  z.strictObject({ op: z.literal('producerIdBlock'), from: z.number().int().nonnegative(), next: z.number().int().positive() }),
  // cold start from the object store (broker/src/tiering/cluster-restore.ts): the whole state of a restore point, as
  // snapshotMetadata text; written as entry 2 of a fresh metadata log, identical on every restored node
  z.strictObject({ op: z.literal('restore'), from: z.string().min(1), state: z.string().min(2) }),
]);
export type MetaCommand = z.infer<typeof MetaCommandSchema>;

export interface TopicState {
  name: string;
  /** Kafka topic id (UUID string) */
  topicId: string;
  /** numeric id: the partition dirs are `<data>/topic_<id>/<partition>/` */
  id: number;
  rf: number;
  config: Record<string, string>;
  /** partition → target replica node ids (what the partition's Raft group converges to; first the founding voters) */
  assignment: number[][];
  /** partition → the founding voters (the Raft group's bootstrap config; only these pass it when they open the group) */
  founders?: number[][];
  /** partition → the last leader report (null until one arrives) */
  leaders?: Array<PartitionLeader | null>;
}

export interface MetadataState {
  /** last applied raft index */
  applied: number;
  nextTopicId: number;
  topics: Record<string, TopicState>;
  /** brokers ever registered (keyed by node id); members are those not in `removed` */
  brokers: Record<string, BrokerInfo>;
  /** node ids retired by `members remove`; never registered again (node ids are never reused for a different disk) */
  removed?: number[];
  /** consumer groups: offsets and generations (cluster-groups.ts); snapshots carry it as `GroupsSnapshot` JSON */
  groups: GroupsState;
  /** producer ids below this may have been handed out (InitProducerId) */
  nextProducerId: number;
}

export function emptyMetadata(): MetadataState {
  return { applied: 0, nextTopicId: 1, topics: {}, brokers: {}, removed: [], groups: emptyGroupsState(), nextProducerId: 0 };
}

/** Brokers that are members (registered, not removed), sorted by id. */
export function activeBrokers(s: MetadataState): BrokerInfo[] {
  const removed = new Set(s.removed ?? []);
  return Object.values(s.brokers).filter((b) => !removed.has(b.nodeId)).sort((a, b) => a.nodeId - b.nodeId);
}

export function isRemoved(s: MetadataState, id: number): boolean {
  return (s.removed ?? []).includes(id);
}

function applyReassign(s: MetadataState, list: readonly Reassign[]): void {
  for (const r of list) {
    const t = s.topics[r.name];
    if (!t || r.partition >= t.assignment.length) continue;
    t.assignment[r.partition] = [...r.replicas];
  }
}

export function encodeCommand(c: MetaCommand): Uint8Array {
  return Buffer.from(JSON.stringify(c), 'utf8');
}

export function decodeCommand(data: Uint8Array, what: string): MetaCommand {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw new LanceError('CORRUPT', `${what}: metadata command is not JSON`);
  }
  const r = MetaCommandSchema.safeParse(raw);
  if (!r.success) throw new LanceError('CORRUPT', `${what}: invalid metadata command: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Group id of a partition's Raft group. */
export function partitionGroup(t: Pick<TopicState, 'id'>, partition: number): string {
  return `topic_${t.id}/${partition}`;
}

/**
 * Applies one committed command. Pure apart from mutating and returning `s` (callers own the state). Commands that
 * no longer make sense (a create that lost a race, a delete of a missing topic) are no-ops: the proposer validated
 * them against a state that may have changed before they committed, and the outcome is reported back to it.
 */
export function applyCommand(s: MetadataState, index: number, c: MetaCommand): { ok: boolean; error?: string } {
  s.applied = index;
  switch (c.op) {
    case 'createTopic': {
      if (s.topics[c.name]) return { ok: false, error: `topic "${c.name}" already exists` };
      s.topics[c.name] = {
        name: c.name, topicId: c.topicId, id: s.nextTopicId++, rf: c.rf, config: { ...c.config }, assignment: c.assignment.map((a) => [...a]),
        founders: c.assignment.map((a) => [...a]), leaders: c.assignment.map(() => null),
      };
      return { ok: true };
    }
    case 'deleteTopic': {
      if (!s.topics[c.name]) return { ok: false, error: `topic "${c.name}" does not exist` };
      delete s.topics[c.name];
      return { ok: true };
    }
    case 'createPartitions': {
      const t = s.topics[c.name];
      if (!t) return { ok: false, error: `topic "${c.name}" does not exist` };
      t.founders = [...foundersOf(t), ...c.assignment.map((a) => [...a])];
      t.leaders = [...(t.leaders ?? t.assignment.map(() => null)), ...c.assignment.map(() => null)];
      t.assignment.push(...c.assignment.map((a) => [...a]));
      return { ok: true };
    }
    case 'alterConfig': {
      const t = s.topics[c.name];
      if (!t) return { ok: false, error: `topic "${c.name}" does not exist` };
      t.config = { ...c.config };
      return { ok: true };
    }
    case 'registerBroker': {
      if (isRemoved(s, c.broker.nodeId)) return { ok: false, error: `node id ${c.broker.nodeId} was removed; node ids are never reused` };
      s.brokers[String(c.broker.nodeId)] = { ...c.broker };
      applyReassign(s, c.reassign ?? []);
      return { ok: true };
    }
    case 'registerBrokers': {
      for (const b of c.brokers) if (!isRemoved(s, b.nodeId)) s.brokers[String(b.nodeId)] = { ...b };
      return { ok: true };
    }
    case 'unregisterBroker': {
      if (isRemoved(s, c.nodeId)) return { ok: true };
      s.removed = [...(s.removed ?? []), c.nodeId].sort((a, b) => a - b);
      applyReassign(s, c.reassign);
      return { ok: true };
    }
    case 'reportPartition': {
      const t = s.topics[c.name];
      if (!t || t.id !== c.id || c.partition >= t.assignment.length) return { ok: false, error: `topic "${c.name}" (id ${c.id}) has no partition ${c.partition}` };
      const leaders = t.leaders ?? t.assignment.map(() => null);
      while (leaders.length < t.assignment.length) leaders.push(null);
      // Terms only move forward: a late report from a deposed leader never overwrites a newer one, so the epoch a
      // node without a replica reports is never newer than the truth.
      if (!acceptReport(leaders[c.partition] ?? null, c.state)) return { ok: false, error: 'stale report' };
      leaders[c.partition] = { ...c.state, voters: [...c.state.voters], learners: [...c.state.learners] };
      t.leaders = leaders;
      return { ok: true };
    }
    case 'groups': {
      for (const g of c.cmds) applyGroupCommand(s.groups, g);
      return { ok: true };
    }
    case 'producerIdBlock': {
      if (c.from !== s.nextProducerId || c.next <= c.from) return { ok: false, error: `producer id block [${c.from}, ${c.next}) does not start at the high-water mark ${s.nextProducerId}` };
      s.nextProducerId = c.next;
      return { ok: true };
    }
    case 'restore': {
      let r: MetadataState;
      try {
        r = restoreMetadata(c.state);
      } catch (e) {
        return { ok: false, error: `restore from ${c.from}: ${(e as Error).message}` };
      }
      // in place: callers hold `s`
      s.nextTopicId = r.nextTopicId;
      s.topics = r.topics;
      s.brokers = r.brokers;
      s.removed = r.removed ?? [];
      s.groups = r.groups;
      s.nextProducerId = r.nextProducerId;
      s.applied = index;
      return { ok: true };
    }
  }
}

/** A report replaces the stored one when its term is newer, or the same leader updates its membership in its term. */
export function acceptReport(cur: PartitionLeader | null, next: PartitionLeader): boolean {
  return cur === null || next.term > cur.term || (next.term === cur.term && next.leader === cur.leader);
}

export function foundersOf(t: TopicState): number[][] {
  return t.founders ?? t.assignment.map((a) => [...a]);
}

/** Replica count per active broker over every partition's target set (for least-loaded placement). */
function replicaLoad(s: MetadataState, brokers: readonly number[]): Map<number, number> {
  const load = new Map<number, number>(brokers.map((b) => [b, 0]));
  for (const t of Object.values(s.topics)) for (const r of t.assignment) for (const id of r) if (load.has(id)) load.set(id, load.get(id)! + 1);
  return load;
}

function topUp(replicas: readonly number[], want: number, load: Map<number, number>): number[] {
  const out = [...replicas];
  while (out.length < want) {
    const pick = [...load.entries()].filter(([id]) => !out.includes(id)).sort((a, b) => a[1] - b[1] || a[0] - b[0])[0];
    if (!pick) break;
    out.push(pick[0]);
    load.set(pick[0], pick[1] + 1);
  }
  return out;
}

/**
 * Pure plan for `members remove <id>`: every partition that lists `id` drops it and, when another active broker is
 * free, gains the least-loaded one instead (keeping the replication factor when enough brokers exist).
 * Partitions whose only replica is `id` would keep none: they are listed in `orphaned` (the caller refuses).
 */
export function planRemoval(s: MetadataState, id: number): { reassign: Reassign[]; orphaned: string[] } {
  const brokers = activeBrokers(s).map((b) => b.nodeId).filter((b) => b !== id);
  const load = replicaLoad(s, brokers);
  const reassign: Reassign[] = [];
  const orphaned: string[] = [];
  for (const t of Object.values(s.topics).sort((a, b) => a.id - b.id)) {
    t.assignment.forEach((replicas, p) => {
      if (!replicas.includes(id)) return;
      const next = topUp(replicas.filter((r) => r !== id), t.rf, load);
      if (next.length === 0) orphaned.push(`${t.name}-${p}`);
      else reassign.push({ name: t.name, partition: p, replicas: next });
    });
  }
  return { reassign, orphaned };
}

/** Pure plan for `members add`: partitions below their replication factor gain active brokers (least loaded first). */
export function planUnderReplicated(s: MetadataState, extra?: number): Reassign[] {
  const ids = activeBrokers(s).map((b) => b.nodeId);
  if (extra !== undefined && !ids.includes(extra)) ids.push(extra);
  const load = replicaLoad(s, ids);
  const out: Reassign[] = [];
  for (const t of Object.values(s.topics).sort((a, b) => a.id - b.id)) {
    t.assignment.forEach((replicas, p) => {
      if (replicas.length >= t.rf) return;
      const next = topUp(replicas, t.rf, load);
      if (next.length > replicas.length) out.push({ name: t.name, partition: p, replicas: next });
    });
  }
  return out;
}

export type MembershipStep =
  | { kind: 'addLearner' | 'promote' | 'remove'; nodeId: number }
  | { kind: 'transfer'; to: number };

/**
 * Pure: the next single-server change that moves a Raft group's membership toward `target` (run by the group's
 * leader; one change at a time: the core refuses a second while one is uncommitted). Order:
 *  1. drop learners that are not wanted;
 *  2. drop unwanted voters that are NOT alive (a dead member only makes the quorum harder: with voters [1, 3] and 3
 *     dead, adding a learner could never commit, removing 3 can);
 *  3. add missing members as learners; 4. promote caught-up learners;
 *  5. only when every wanted member is a voter, remove the remaining unwanted (live) voters, so a group never runs
 *     below its replication factor while a replacement catches up. A leader that must leave first transfers
 *     leadership to the most caught-up wanted voter.
 * `lag(id)`: entries behind the leader (Infinity when unknown); `alive(id)`: heard from recently.
 */
export function nextMembershipStep(
  self: number, config: { voters: readonly number[]; learners: readonly number[] }, target: readonly number[],
  lag: (id: number) => number, alive: (id: number) => boolean, maxPromoteLag: number,
): MembershipStep | null {
  const want = new Set(target);
  const stray = config.learners.find((l) => !want.has(l));
  if (stray !== undefined) return { kind: 'remove', nodeId: stray };
  const unwanted = config.voters.filter((v) => !want.has(v)).sort((a, b) => a - b);
  const dead = unwanted.find((v) => v !== self && !alive(v));
  if (dead !== undefined && config.voters.length > 1) return { kind: 'remove', nodeId: dead };
  const missing = [...want].sort((a, b) => a - b).find((id) => !config.voters.includes(id) && !config.learners.includes(id));
  if (missing !== undefined) return { kind: 'addLearner', nodeId: missing };
  const ready = config.learners.filter((l) => lag(l) <= maxPromoteLag).sort((a, b) => a - b)[0];
  if (ready !== undefined) return { kind: 'promote', nodeId: ready };
  if (config.learners.length > 0) return null; // a replacement is still catching up
  const other = unwanted.find((v) => v !== self);
  if (other !== undefined) return config.voters.length > 1 ? { kind: 'remove', nodeId: other } : null;
  if (!unwanted.includes(self)) return null;
  const to = config.voters.filter((v) => v !== self && want.has(v)).sort((a, b) => lag(a) - lag(b) || a - b)[0];
  return to === undefined ? null : { kind: 'transfer', to };
}

/**
 * Round-robin replica assignment: partition p gets `rf` consecutive brokers starting at (start + p) in the sorted
 * broker list, so leaders (the first replica campaigns no earlier than the others; Raft decides) and load spread.
 */
export function assignReplicas(brokers: readonly number[], partitions: number, rf: number, start: number, firstPartition = 0): number[][] {
  const ids = [...brokers].sort((a, b) => a - b);
  if (rf < 1 || rf > ids.length) {
    throw new LanceError('INVALID_ARGUMENT', `replicationFactor: ${rf} is not within 1..${ids.length} (live brokers)`, { field: 'replicationFactor' });
  }
  const out: number[][] = [];
  for (let p = firstPartition; p < firstPartition + partitions; p++) {
    const r: number[] = [];
    for (let k = 0; k < rf; k++) r.push(ids[(start + p + k) % ids.length]!);
    out.push(r);
  }
  return out;
}

export function snapshotMetadata(s: MetadataState): string {
  return JSON.stringify({ ...s, groups: snapshotOf(s.groups) });
}

export function restoreMetadata(text: string): MetadataState {
  const raw = JSON.parse(text) as Omit<MetadataState, 'groups' | 'nextProducerId'> & { groups?: unknown; nextProducerId?: unknown };
  if (typeof raw !== 'object' || raw === null || typeof raw.applied !== 'number' || typeof raw.topics !== 'object' || typeof raw.brokers !== 'object') {
    throw new LanceError('CORRUPT', 'metadata snapshot: expected {applied, nextTopicId, topics, brokers}');
  }
  // snapshots written before groups were replicated have neither field
  let groups = emptyGroupsState();
  if (raw.groups !== undefined) {
    const g = groupsSnapshotSchema.safeParse(raw.groups);
    if (!g.success) throw new LanceError('CORRUPT', `metadata snapshot: groups: ${g.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    groups = stateFromSnapshot(g.data);
  }
  const nextProducerId = typeof raw.nextProducerId === 'number' && Number.isInteger(raw.nextProducerId) && raw.nextProducerId >= 0 ? raw.nextProducerId : 0;
  return { ...raw, removed: Array.isArray(raw.removed) ? raw.removed : [], groups, nextProducerId };
}
