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

export const MetaCommandSchema = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('createTopic'), name: z.string().min(1), topicId: z.string().min(1), partitions: z.number().int().positive(),
    rf: z.number().int().positive(), config: TopicConfigSchema, assignment: z.array(z.array(nodeId)),
  }),
  z.strictObject({ op: z.literal('deleteTopic'), name: z.string().min(1) }),
  z.strictObject({ op: z.literal('createPartitions'), name: z.string().min(1), assignment: z.array(z.array(nodeId)) }),
  z.strictObject({ op: z.literal('alterConfig'), name: z.string().min(1), config: TopicConfigSchema }),
  z.strictObject({ op: z.literal('registerBroker'), broker: BrokerInfoSchema }),
  // consumer groups (broker/src/cluster/cluster-groups.ts): the coordinator's commands, applied in log order
  z.strictObject({ op: z.literal('groups'), cmds: z.array(groupCommandSchema) }),
  // producer ids [from, next) are reserved; applies only if `from` is the current high-water mark (no overlap)
  z.strictObject({ op: z.literal('producerIdBlock'), from: z.number().int().nonnegative(), next: z.number().int().positive() }),
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
  /** partition → replica node ids (the founding voters of that partition's Raft group) */
  assignment: number[][];
}

export interface MetadataState {
  /** last applied raft index */
  applied: number;
  nextTopicId: number;
  topics: Record<string, TopicState>;
  brokers: Record<string, BrokerInfo>;
  /** consumer groups: offsets and generations (cluster-groups.ts); snapshots carry it as `GroupsSnapshot` JSON */
  groups: GroupsState;
  /** producer ids below this may have been handed out (InitProducerId) */
  nextProducerId: number;
}

export function emptyMetadata(): MetadataState {
  return { applied: 0, nextTopicId: 1, topics: {}, brokers: {}, groups: emptyGroupsState(), nextProducerId: 0 };
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
      s.topics[c.name] = { name: c.name, topicId: c.topicId, id: s.nextTopicId++, rf: c.rf, config: { ...c.config }, assignment: c.assignment.map((a) => [...a]) };
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
      s.brokers[String(c.broker.nodeId)] = { ...c.broker };
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
  }
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
  return { ...raw, groups, nextProducerId };
}
