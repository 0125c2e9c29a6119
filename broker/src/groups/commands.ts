/**
 * The persistent state of the group coordinator, expressed as COMMANDS applied by a deterministic
 * `applyGroupCommand`. The same commands are entries of the standalone command log (./command-log.ts) and, in
 * cluster mode, of the metadata Raft log: whoever applies the same commands in the same order gets the same state.
 * Commands are plain JSON (Buffers as base64) so they can be stored and replicated as-is.
 */
import { z } from 'zod';

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string;
  /** commit time, ms since the epoch (the coordinator's clock when it accepted the commit) */
  commitTimestamp: number;
}

export interface PersistedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** base64 of the assignment bytes the leader sent (empty until the group is Stable) */
  assignment: string;
}

export interface PersistedGroup {
  groupId: string;
  protocolType: string;
  protocol: string | null;
  generation: number;
  leader: string | null;
  members: PersistedMember[];
  /** key `${topic}\u0000${partition}` */
  offsets: Map<string, CommittedOffset>;
}

export interface GroupsState {
  groups: Map<string, PersistedGroup>;
}

export type GroupCommand =
  | {
      type: 'group';
      groupId: string;
      protocolType: string;
      protocol: string | null;
      generation: number;
      leader: string | null;
      members: PersistedMember[];
    }
  | {
      type: 'offsets';
      groupId: string;
      offsets: Array<{ topic: string; partition: number } & CommittedOffset>;
    }
  | { type: 'offsets-delete'; groupId: string; partitions: Array<{ topic: string; partition: number }> }
  | { type: 'group-delete'; groupId: string };

export const offsetKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
export function splitOffsetKey(key: string): { topic: string; partition: number } {
  const i = key.lastIndexOf('\u0000');
  return { topic: key.slice(0, i), partition: Number(key.slice(i + 1)) };
}

export function emptyGroupsState(): GroupsState {
  return { groups: new Map() };
}

function groupOf(state: GroupsState, groupId: string): PersistedGroup {
  let g = state.groups.get(groupId);
  if (!g) {
    g = { groupId, protocolType: '', protocol: null, generation: 0, leader: null, members: [], offsets: new Map() };
    state.groups.set(groupId, g);
  }
  return g;
}

/** Applies one command (mutates and returns `state`). Deterministic: no clock, no randomness. */
export function applyGroupCommand(state: GroupsState, cmd: GroupCommand): GroupsState {
  switch (cmd.type) {
    case 'group': {
      const g = groupOf(state, cmd.groupId);
      g.protocolType = cmd.protocolType;
      g.protocol = cmd.protocol;
      g.generation = cmd.generation;
      g.leader = cmd.leader;
      g.members = cmd.members.map((m) => ({ ...m }));
      break;
    }
    case 'offsets': {
      const g = groupOf(state, cmd.groupId);
      for (const o of cmd.offsets) {
        g.offsets.set(offsetKey(o.topic, o.partition), { offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata, commitTimestamp: o.commitTimestamp });
      }
      break;
    }
    case 'offsets-delete': {
      const g = state.groups.get(cmd.groupId);
      if (g) for (const p of cmd.partitions) g.offsets.delete(offsetKey(p.topic, p.partition));
      break;
    }
    case 'group-delete':
      state.groups.delete(cmd.groupId);
      break;
  }
  return state;
}

/** JSON form of the whole state (snapshots). */
export interface GroupsSnapshot {
  groups: Array<Omit<PersistedGroup, 'offsets'> & { offsets: Array<{ topic: string; partition: number } & CommittedOffset> }>;
}

export function snapshotOf(state: GroupsState): GroupsSnapshot {
  return {
    groups: [...state.groups.values()].map((g) => ({
      ...g,
      members: g.members.map((m) => ({ ...m })),
      offsets: [...g.offsets].map(([k, o]) => ({ ...splitOffsetKey(k), ...o })),
    })),
  };
}

export function stateFromSnapshot(s: GroupsSnapshot): GroupsState {
  const state = emptyGroupsState();
  for (const g of s.groups) {
    applyGroupCommand(state, { type: 'group', groupId: g.groupId, protocolType: g.protocolType, protocol: g.protocol, generation: g.generation, leader: g.leader, members: g.members });
    applyGroupCommand(state, { type: 'offsets', groupId: g.groupId, offsets: g.offsets });
  }
  return state;
}

// ------------------------------------------------------------------ zod schemas (commands read back from a log)

const offsetSchema = z.object({ offset: z.number().int(), leaderEpoch: z.number().int(), metadata: z.string(), commitTimestamp: z.number() });
const memberSchema = z.object({ memberId: z.string(), groupInstanceId: z.string().nullable(), clientId: z.string(), clientHost: z.string(), assignment: z.string() });
const tp = { topic: z.string(), partition: z.number().int().nonnegative() };
/** building blocks shared with the standalone snapshot schema (command-log.ts) */
export const groupSchemaParts = { offsetSchema, memberSchema, tp };

/** A `GroupCommand` as read from a log (standalone command log, metadata Raft log). */
export const groupCommandSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('group'), groupId: z.string(), protocolType: z.string(), protocol: z.string().nullable(), generation: z.number().int(), leader: z.string().nullable(), members: z.array(memberSchema) }),
  z.object({ type: z.literal('offsets'), groupId: z.string(), offsets: z.array(z.object({ ...tp, ...offsetSchema.shape })) }),
  z.object({ type: z.literal('offsets-delete'), groupId: z.string(), partitions: z.array(z.object(tp)) }),
  z.object({ type: z.literal('group-delete'), groupId: z.string() }),
]);

/** The JSON snapshot form (`GroupsSnapshot`) as read back. */
export const groupsSnapshotSchema = z.object({
  groups: z.array(z.object({
    groupId: z.string(), protocolType: z.string(), protocol: z.string().nullable(), generation: z.number().int(), leader: z.string().nullable(),
    members: z.array(memberSchema), offsets: z.array(z.object({ ...tp, ...offsetSchema.shape })),
  })),
});

/** a deep copy (the coordinator mutates its state optimistically; the replicated copy must not move with it) */
export function cloneGroupsState(s: GroupsState): GroupsState {
  return stateFromSnapshot(snapshotOf(s));
}
