/**
 * The persistent state of the group coordinator, expressed as COMMANDS applied by a deterministic
 * `applyGroupCommand`. The same commands are entries of the standalone command log (./command-log.ts) and, in
 * cluster mode, of the metadata Raft log: whoever applies the same commands in the same order gets the same state.
 * Commands are plain JSON (Buffers as base64) so they can be stored and replicated as-is.
 */

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
