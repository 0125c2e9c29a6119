/**
 * The classic consumer-group protocol as a PURE state machine: every entry point takes the request and `now` (ms)
 * and returns a `Step` — the replies that are ready (possibly to requests received earlier, e.g. JoinGroups held
 * until the rebalance completes), and the persistent COMMANDS to make durable before those replies are sent. Time
 * passes only through `tick(now)` (session expiry, rebalance timeout). No I/O, no timers, no randomness (member ids
 * come from the injected `newMemberId`), so tests drive it with a fake clock and the cluster can run the same code.
 *
 * Persistent state (offsets, group generation/protocol/assignment) lives in `GroupsState` and changes only through
 * `applyGroupCommand`; members, pending requests and deadlines are volatile (after a coordinator restart or move the
 * group is Empty with its generation and offsets, and clients rejoin — as in Kafka).
 */
import type {
  DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, HeartbeatRequest,
  JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
  OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
} from '../kafka/protocol/groups.ts';
import { applyGroupCommand, emptyGroupsState, offsetKey, splitOffsetKey, type GroupCommand, type GroupsState, type PersistedGroup } from './commands.ts';

export const GroupErr = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  OFFSET_METADATA_TOO_LARGE: 12,
  COORDINATOR_NOT_AVAILABLE: 15,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  MEMBER_ID_REQUIRED: 79,
  FENCED_INSTANCE_ID: 82,
  GROUP_SUBSCRIBED_TO_TOPIC: 86,
} as const;

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

export interface CoordinatorOptions {
  /** Kafka group.min.session.timeout.ms / group.max.session.timeout.ms */
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  /** Kafka group.initial.rebalance.delay.ms: an Empty group waits this long for more members before the first generation */
  initialRebalanceDelayMs: number;
  maxMetadataBytes: number;
  newMemberId: (clientId: string) => string;
  /** commits to a partition for which this is false get UNKNOWN_TOPIC_OR_PARTITION (absent: every partition exists) */
  partitionExists?: (topic: string, partition: number) => boolean;
}

export const DEFAULT_COORDINATOR_OPTIONS: Omit<CoordinatorOptions, 'newMemberId'> = {
  minSessionTimeoutMs: 1000,
  maxSessionTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 0,
  maxMetadataBytes: 4096,
};

/** A reply for request `id` (the caller's token). */
export interface Reply {
  id: number;
  body: object;
}
export interface Step {
  replies: Reply[];
  commands: GroupCommand[];
  /** rebalances that completed a join phase in this step (metrics) */
  rebalances: number;
}

export interface RequestMeta {
  id: number;
  version: number;
  clientId: string;
  clientHost: string;
}

interface Member {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Array<{ name: string; metadata: Buffer }>;
  assignment: Buffer;
  heartbeatDeadline: number;
  pendingJoin: { id: number; version: number } | null;
  pendingSync: { id: number; version: number } | null;
}

interface Group {
  groupId: string;
  state: GroupStateName;
  protocolType: string | null;
  protocol: string | null;
  generation: number;
  leader: string | null;
  /** insertion order = join order (the first joiner leads a new generation) */
  members: Map<string, Member>;
  /** member ids handed out with MEMBER_ID_REQUIRED, valid until the deadline */
  pending: Map<string, number>;
  rebalanceDeadline: number | null;
  initialDelay: boolean;
}

const EMPTY = Buffer.alloc(0);

function step(): Step {
  return { replies: [], commands: [], rebalances: 0 };
}

export class GroupCoordinator {
  readonly persistent: GroupsState;
  private readonly groups = new Map<string, Group>();
  private readonly opts: CoordinatorOptions;

  /** `persistent` is the state rebuilt from the command log; every group starts Empty. */
  constructor(opts: Partial<CoordinatorOptions> & Pick<CoordinatorOptions, 'newMemberId'>, persistent: GroupsState = emptyGroupsState()) {
    this.opts = { ...DEFAULT_COORDINATOR_OPTIONS, ...opts };
    this.persistent = persistent;
    for (const pg of persistent.groups.values()) this.groups.set(pg.groupId, this.fromPersisted(pg));
  }

  private fromPersisted(pg: PersistedGroup): Group {
    return {
      groupId: pg.groupId, state: 'Empty', protocolType: pg.protocolType || null, protocol: pg.protocol, generation: pg.generation,
      leader: null, members: new Map(), pending: new Map(), rebalanceDeadline: null, initialDelay: false,
    };
  }

  private emit(s: Step, cmd: GroupCommand): void {
    applyGroupCommand(this.persistent, cmd);
    s.commands.push(cmd);
  }

  // ------------------------------------------------------------------ queries

  groupState(groupId: string): GroupStateName {
    return this.groups.get(groupId)?.state ?? 'Dead';
  }

  generation(groupId: string): number {
    return this.groups.get(groupId)?.generation ?? -1;
  }

  /** all groups with their state, for ListGroups, metrics and the admin API */
  list(): Array<{ groupId: string; protocolType: string; state: GroupStateName; members: number }> {
    return [...this.groups.values()].map((g) => ({ groupId: g.groupId, protocolType: g.protocolType ?? '', state: g.state, members: g.members.size }));
  }

  /** earliest deadline the caller must `tick` at (null: none) */
  nextDeadline(): number | null {
    let d: number | null = null;
    const min = (x: number): void => {
      d = d === null ? x : Math.min(d, x);
    };
    for (const g of this.groups.values()) {
      if (g.rebalanceDeadline !== null) min(g.rebalanceDeadline);
      for (const m of g.members.values()) if (!m.pendingJoin) min(m.heartbeatDeadline);
      for (const p of g.pending.values()) min(p);
    }
    return d;
  }

  // ------------------------------------------------------------------ JoinGroup

  joinGroup(req: JoinGroupRequest, meta: RequestMeta, now: number): Step {
    const s = step();
    const fail = (errorCode: number, memberId = req.memberId): Step => {
      s.replies.push({ id: meta.id, body: this.joinError(errorCode, memberId, meta.version) });
      return s;
    };
    if (req.groupId === '') return fail(GroupErr.INVALID_GROUP_ID);
    if (req.sessionTimeoutMs < this.opts.minSessionTimeoutMs || req.sessionTimeoutMs > this.opts.maxSessionTimeoutMs) return fail(GroupErr.INVALID_SESSION_TIMEOUT);
    if (req.protocols.length === 0 || req.protocolType === '') return fail(GroupErr.INCONSISTENT_GROUP_PROTOCOL);
    let g = this.groups.get(req.groupId);
    if (!g) {
      if (req.memberId !== '' && req.groupInstanceId === null) return fail(GroupErr.UNKNOWN_MEMBER_ID);
      g = { groupId: req.groupId, state: 'Empty', protocolType: null, protocol: null, generation: 0, leader: null, members: new Map(), pending: new Map(), rebalanceDeadline: null, initialDelay: false };
      this.groups.set(req.groupId, g);
    }
    if (g.state === 'Dead') return fail(GroupErr.COORDINATOR_NOT_AVAILABLE);
    if (!this.protocolsCompatible(g, req)) return fail(GroupErr.INCONSISTENT_GROUP_PROTOCOL);

    let memberId = req.memberId;
    if (req.groupInstanceId !== null) {
      // static membership: the instance id names the member; a new join with it fences the previous member id
      const existing = [...g.members.values()].find((m) => m.groupInstanceId === req.groupInstanceId);
      if (memberId === '') {
        memberId = this.opts.newMemberId(meta.clientId);
        if (existing) this.replaceStatic(g, existing, memberId, s);
      } else if (existing && existing.memberId !== memberId) {
        return fail(GroupErr.FENCED_INSTANCE_ID);
      } else if (!existing && !g.members.has(memberId)) {
        return fail(GroupErr.UNKNOWN_MEMBER_ID);
      }
    } else if (memberId === '') {
      memberId = this.opts.newMemberId(meta.clientId);
      if (meta.version >= 4) {
        // KIP-394: the client must come back with this id, so a lost response does not leave a ghost member
        g.pending.set(memberId, now + req.sessionTimeoutMs);
        return fail(GroupErr.MEMBER_ID_REQUIRED, memberId);
      }
    } else if (g.pending.has(memberId)) {
      g.pending.delete(memberId);
    } else if (!g.members.has(memberId)) {
      return fail(GroupErr.UNKNOWN_MEMBER_ID);
    }

    let m = g.members.get(memberId);
    if (m?.pendingJoin) {
      // a duplicate join (client retried): the earlier one is superseded
      s.replies.push({ id: m.pendingJoin.id, body: this.joinError(GroupErr.UNKNOWN_MEMBER_ID, memberId, m.pendingJoin.version) });
    }
    if (!m) {
      m = {
        memberId, groupInstanceId: req.groupInstanceId, clientId: meta.clientId, clientHost: meta.clientHost, sessionTimeoutMs: 0, rebalanceTimeoutMs: 0,
        protocolType: req.protocolType, protocols: [], assignment: EMPTY, heartbeatDeadline: 0, pendingJoin: null, pendingSync: null,
      };
      g.members.set(memberId, m);
    }
    m.sessionTimeoutMs = req.sessionTimeoutMs;
    m.rebalanceTimeoutMs = req.rebalanceTimeoutMs > 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs;
    m.protocolType = req.protocolType;
    m.protocols = req.protocols.map((p) => ({ name: p.name, metadata: p.metadata }));
    m.pendingJoin = { id: meta.id, version: meta.version };
    m.heartbeatDeadline = now + m.sessionTimeoutMs;
    if (g.protocolType === null) g.protocolType = req.protocolType;

    if (g.state !== 'PreparingRebalance') this.prepareRebalance(g, now, s);
    this.tryCompleteJoin(g, now, s);
    return s;
  }

  private replaceStatic(g: Group, old: Member, newId: string, s: Step): void {
    if (old.pendingJoin) s.replies.push({ id: old.pendingJoin.id, body: this.joinError(GroupErr.FENCED_INSTANCE_ID, old.memberId, old.pendingJoin.version) });
    if (old.pendingSync) s.replies.push({ id: old.pendingSync.id, body: syncError(GroupErr.FENCED_INSTANCE_ID) });
    g.members.delete(old.memberId);
    const renamed: Member = { ...old, memberId: newId, pendingJoin: null, pendingSync: null };
    g.members.set(newId, renamed);
    if (g.leader === old.memberId) g.leader = newId;
  }

  private protocolsCompatible(g: Group, req: JoinGroupRequest): boolean {
    if (g.members.size === 0) return true;
    if (g.protocolType !== null && g.protocolType !== req.protocolType) return false;
    const names = new Set(req.protocols.map((p) => p.name));
    return this.candidates(g, req.memberId).some((c) => names.has(c)) || g.members.size === 1 && g.members.has(req.memberId);
  }

  /** protocols every member (except `excluding`) supports */
  private candidates(g: Group, excluding: string): string[] {
    let c: string[] | null = null;
    for (const m of g.members.values()) {
      if (m.memberId === excluding) continue;
      const names = m.protocols.map((p) => p.name);
      c = c === null ? names : c.filter((x) => names.includes(x));
    }
    return c ?? [];
  }

  /** protocolName is nullable only from v7: older versions get "" (Kafka's UNKNOWN_PROTOCOL_NAME) */
  private joinError(errorCode: number, memberId: string, version: number): JoinGroupResponse {
    return { throttleTimeMs: 0, errorCode, generationId: -1, protocolType: null, protocolName: version >= 7 ? null : '', leader: '', skipAssignment: false, memberId, members: [] };
  }

  private prepareRebalance(g: Group, now: number, s: Step): void {
    // members waiting for their SyncGroup answer must rejoin
    for (const m of g.members.values()) {
      if (m.pendingSync) {
        s.replies.push({ id: m.pendingSync.id, body: syncError(GroupErr.REBALANCE_IN_PROGRESS) });
        m.pendingSync = null;
      }
    }
    const wasEmpty = g.state === 'Empty';
    g.state = 'PreparingRebalance';
    let timeout = 0;
    for (const m of g.members.values()) timeout = Math.max(timeout, m.rebalanceTimeoutMs);
    // a new (Empty) group waits initialRebalanceDelayMs so members starting together land in one generation
    g.initialDelay = wasEmpty && this.opts.initialRebalanceDelayMs > 0;
    g.rebalanceDeadline = now + (g.initialDelay ? this.opts.initialRebalanceDelayMs : timeout);
  }

  /** Completes the join phase when every member has rejoined (or, with `force`, drops the ones that did not). */
  private tryCompleteJoin(g: Group, now: number, s: Step, force = false): void {
    if (g.state !== 'PreparingRebalance') return;
    const waitingForDelay = g.initialDelay && g.rebalanceDeadline !== null && now < g.rebalanceDeadline;
    const allJoined = [...g.members.values()].every((m) => m.pendingJoin !== null);
    if (!force && (!allJoined || waitingForDelay)) return;
    for (const m of [...g.members.values()]) if (!m.pendingJoin) this.removeMember(g, m, s);
    g.rebalanceDeadline = null;
    g.initialDelay = false;
    g.generation += 1;
    s.rebalances += 1;
    if (g.members.size === 0) {
      g.state = 'Empty';
      g.protocol = null;
      g.leader = null;
      this.persistGroup(g, s);
      return;
    }
    g.protocol = this.selectProtocol(g);
    if (g.leader === null || !g.members.has(g.leader)) g.leader = g.members.keys().next().value ?? null;
    g.state = 'CompletingRebalance';
    for (const m of g.members.values()) m.assignment = EMPTY;
    const all = [...g.members.values()].map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata: m.protocols.find((p) => p.name === g.protocol)?.metadata ?? EMPTY }));
    for (const m of g.members.values()) {
      const pj = m.pendingJoin!;
      const body: JoinGroupResponse = {
        throttleTimeMs: 0, errorCode: 0, generationId: g.generation, protocolType: g.protocolType, protocolName: g.protocol ?? (pj.version >= 7 ? null : ''),
        leader: g.leader ?? '', skipAssignment: false, memberId: m.memberId, members: m.memberId === g.leader ? all : [],
      };
      s.replies.push({ id: pj.id, body });
      m.pendingJoin = null;
      m.heartbeatDeadline = now + m.sessionTimeoutMs;
    }
    this.persistGroup(g, s);
  }

  /** the protocol all members support that most members list first (ties: the earliest listed by the leader-to-be) */
  private selectProtocol(g: Group): string {
    const cands = this.candidates(g, '');
    const votes = new Map<string, number>();
    for (const m of g.members.values()) {
      const pick = m.protocols.find((p) => cands.includes(p.name));
      if (pick) votes.set(pick.name, (votes.get(pick.name) ?? 0) + 1);
    }
    let best = cands[0] ?? '';
    for (const c of cands) if ((votes.get(c) ?? 0) > (votes.get(best) ?? 0)) best = c;
    return best;
  }

  private persistGroup(g: Group, s: Step): void {
    this.emit(s, {
      type: 'group', groupId: g.groupId, protocolType: g.protocolType ?? '', protocol: g.protocol, generation: g.generation, leader: g.leader,
      members: [...g.members.values()].map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost, assignment: m.assignment.toString('base64') })),
    });
  }

  private removeMember(g: Group, m: Member, s: Step): void {
    if (m.pendingJoin) s.replies.push({ id: m.pendingJoin.id, body: this.joinError(GroupErr.UNKNOWN_MEMBER_ID, m.memberId, m.pendingJoin.version) });
    if (m.pendingSync) s.replies.push({ id: m.pendingSync.id, body: syncError(GroupErr.UNKNOWN_MEMBER_ID) });
    g.members.delete(m.memberId);
    if (g.leader === m.memberId) g.leader = null;
  }

  /** a member is gone (left, expired): the others rebalance */
  private memberGone(g: Group, m: Member, now: number, s: Step): void {
    this.removeMember(g, m, s);
    if (g.state === 'Stable' || g.state === 'CompletingRebalance') this.prepareRebalance(g, now, s);
    if (g.state === 'PreparingRebalance') this.tryCompleteJoin(g, now, s);
  }

  // ------------------------------------------------------------------ SyncGroup

  syncGroup(req: SyncGroupRequest, meta: RequestMeta, now: number): Step {
    const s = step();
    const reply = (code: number): Step => {
      s.replies.push({ id: meta.id, body: syncError(code) });
      return s;
    };
    const g = this.groups.get(req.groupId);
    if (!g || g.state === 'Dead') return reply(GroupErr.UNKNOWN_MEMBER_ID);
    const m = g.members.get(req.memberId);
    if (!m) return reply(GroupErr.UNKNOWN_MEMBER_ID);
    if (req.groupInstanceId !== null && m.groupInstanceId !== req.groupInstanceId) return reply(GroupErr.FENCED_INSTANCE_ID);
    if (req.generationId !== g.generation) return reply(GroupErr.ILLEGAL_GENERATION);
    if ((req.protocolType !== null && req.protocolType !== g.protocolType) || (req.protocolName !== null && req.protocolName !== g.protocol)) {
      return reply(GroupErr.INCONSISTENT_GROUP_PROTOCOL);
    }
    m.heartbeatDeadline = now + m.sessionTimeoutMs;
    switch (g.state) {
      case 'Empty':
        return reply(GroupErr.UNKNOWN_MEMBER_ID);
      case 'PreparingRebalance':
        return reply(GroupErr.REBALANCE_IN_PROGRESS);
      case 'Stable':
        s.replies.push({ id: meta.id, body: this.syncOk(g, m) });
        return s;
      case 'CompletingRebalance': {
        if (m.pendingSync) s.replies.push({ id: m.pendingSync.id, body: syncError(GroupErr.REBALANCE_IN_PROGRESS) });
        m.pendingSync = { id: meta.id, version: meta.version };
        if (m.memberId !== g.leader) return s;
        const given = new Map(req.assignments.map((a) => [a.memberId, a.assignment]));
        for (const x of g.members.values()) x.assignment = given.get(x.memberId) ?? EMPTY;
        g.state = 'Stable';
        this.persistGroup(g, s);
        for (const x of g.members.values()) {
          if (x.pendingSync) {
            s.replies.push({ id: x.pendingSync.id, body: this.syncOk(g, x) });
            x.pendingSync = null;
          }
        }
        return s;
      }
    }
    return s;
  }

  private syncOk(g: Group, m: Member): object {
    return { throttleTimeMs: 0, errorCode: 0, protocolType: g.protocolType, protocolName: g.protocol, assignment: m.assignment };
  }

  // ------------------------------------------------------------------ Heartbeat / LeaveGroup / expiry

  heartbeat(req: HeartbeatRequest, meta: RequestMeta, now: number): Step {
    const s = step();
    const reply = (errorCode: number): Step => {
      s.replies.push({ id: meta.id, body: { throttleTimeMs: 0, errorCode } });
      return s;
    };
    const g = this.groups.get(req.groupId);
    if (!g) return reply(GroupErr.UNKNOWN_MEMBER_ID);
    if (g.state === 'Dead') return reply(GroupErr.COORDINATOR_NOT_AVAILABLE);
    const m = g.members.get(req.memberId);
    if (!m) return reply(GroupErr.UNKNOWN_MEMBER_ID);
    if (req.groupInstanceId !== null && m.groupInstanceId !== req.groupInstanceId) return reply(GroupErr.FENCED_INSTANCE_ID);
    if (req.generationId !== g.generation) return reply(GroupErr.ILLEGAL_GENERATION);
    m.heartbeatDeadline = now + m.sessionTimeoutMs;
    return reply(g.state === 'PreparingRebalance' ? GroupErr.REBALANCE_IN_PROGRESS : GroupErr.NONE);
  }

  leaveGroup(req: LeaveGroupRequest, meta: RequestMeta, now: number): Step {
    const s = step();
    const g = this.groups.get(req.groupId);
    const leaving = meta.version >= 3 ? req.members : [{ memberId: req.memberId, groupInstanceId: null, reason: null }];
    const results: LeaveGroupResponse['members'] = [];
    for (const l of leaving) {
      let code: number = GroupErr.NONE;
      const m = g === undefined ? undefined
        : l.groupInstanceId !== null ? [...g.members.values()].find((x) => x.groupInstanceId === l.groupInstanceId) : g.members.get(l.memberId);
      if (!g || !m) code = GroupErr.UNKNOWN_MEMBER_ID;
      else if (l.groupInstanceId !== null && l.memberId !== '' && m.memberId !== l.memberId) code = GroupErr.FENCED_INSTANCE_ID;
      else this.memberGone(g, m, now, s);
      results.push({ memberId: l.memberId, groupInstanceId: l.groupInstanceId, errorCode: code });
    }
    const top = meta.version >= 3 ? GroupErr.NONE : (results[0]?.errorCode ?? GroupErr.NONE);
    s.replies.push({ id: meta.id, body: { throttleTimeMs: 0, errorCode: top, members: results } });
    return s;
  }

  /** Session expiry, pending-member expiry and rebalance timeouts at time `now`. */
  tick(now: number): Step {
    const s = step();
    for (const g of this.groups.values()) {
      for (const [id, deadline] of g.pending) if (deadline <= now) g.pending.delete(id);
      for (const m of [...g.members.values()]) {
        if (!m.pendingJoin && m.heartbeatDeadline <= now && g.members.has(m.memberId)) this.memberGone(g, m, now, s);
      }
      if (g.state === 'PreparingRebalance' && g.rebalanceDeadline !== null && g.rebalanceDeadline <= now) this.tryCompleteJoin(g, now, s, true);
    }
    return s;
  }

  // ------------------------------------------------------------------ offsets

  offsetCommit(req: OffsetCommitRequest, meta: RequestMeta, now: number): Step {
    const s = step();
    const g = this.groups.get(req.groupId);
    let code: number = GroupErr.NONE;
    if (req.groupId === '') code = GroupErr.INVALID_GROUP_ID;
    else if (g && g.state === 'Dead') code = GroupErr.COORDINATOR_NOT_AVAILABLE;
    else if (req.generationIdOrMemberEpoch < 0 && (!g || g.state === 'Empty')) code = GroupErr.NONE; // admin/standalone commit
    else if (!g) code = GroupErr.UNKNOWN_MEMBER_ID;
    else if (g.state === 'CompletingRebalance') code = GroupErr.REBALANCE_IN_PROGRESS;
    else if (!g.members.has(req.memberId)) code = GroupErr.UNKNOWN_MEMBER_ID;
    else if (req.generationIdOrMemberEpoch !== g.generation) code = GroupErr.ILLEGAL_GENERATION;
    const offsets: Array<{ topic: string; partition: number; offset: number; leaderEpoch: number; metadata: string; commitTimestamp: number }> = [];
    const body: OffsetCommitResponse = {
      throttleTimeMs: 0,
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => {
          let c = code;
          if (c === GroupErr.NONE && (p.committedMetadata ?? '').length > this.opts.maxMetadataBytes) c = GroupErr.OFFSET_METADATA_TOO_LARGE;
          if (c === GroupErr.NONE && this.opts.partitionExists && !this.opts.partitionExists(t.name, p.partitionIndex)) c = GroupErr.UNKNOWN_TOPIC_OR_PARTITION;
          if (c === GroupErr.NONE) {
            offsets.push({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.committedMetadata ?? '', commitTimestamp: p.commitTimestamp >= 0 ? p.commitTimestamp : now });
          }
          return { partitionIndex: p.partitionIndex, errorCode: c };
        }),
      })),
    };
    if (code === GroupErr.NONE && g) {
      const m = g.members.get(req.memberId);
      if (m) m.heartbeatDeadline = now + m.sessionTimeoutMs;
    }
    if (offsets.length > 0) {
      if (!g) this.groups.set(req.groupId, { groupId: req.groupId, state: 'Empty', protocolType: null, protocol: null, generation: 0, leader: null, members: new Map(), pending: new Map(), rebalanceDeadline: null, initialDelay: false });
      this.emit(s, { type: 'offsets', groupId: req.groupId, offsets });
    }
    s.replies.push({ id: meta.id, body });
    return s;
  }

  /** committed offset of one partition, or null */
  committed(groupId: string, topic: string, partition: number): { offset: number; metadata: string; leaderEpoch: number } | null {
    return this.persistent.groups.get(groupId)?.offsets.get(offsetKey(topic, partition)) ?? null;
  }

  offsetFetch(req: OffsetFetchRequest, meta: RequestMeta): Step {
    const s = step();
    const one = (groupId: string, topics: Array<{ name: string; partitionIndexes: number[] }> | null): Array<{ name: string; partitions: OffsetFetchPartition[] }> => {
      const pg = this.persistent.groups.get(groupId);
      const part = (topic: string, partition: number): OffsetFetchPartition => {
        const o = pg?.offsets.get(offsetKey(topic, partition));
        return o
          ? { partitionIndex: partition, committedOffset: o.offset, committedLeaderEpoch: o.leaderEpoch, metadata: o.metadata, errorCode: 0 }
          : { partitionIndex: partition, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode: 0 };
      };
      if (topics !== null) return topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((p) => part(t.name, p)) }));
      const byTopic = new Map<string, OffsetFetchPartition[]>();
      for (const k of pg?.offsets.keys() ?? []) {
        const { topic, partition } = splitOffsetKey(k);
        const list = byTopic.get(topic) ?? [];
        list.push(part(topic, partition));
        byTopic.set(topic, list);
      }
      return [...byTopic].map(([name, partitions]) => ({ name, partitions: partitions.sort((a, b) => a.partitionIndex - b.partitionIndex) }));
    };
    const body: OffsetFetchResponse = meta.version >= 8
      ? { throttleTimeMs: 0, topics: [], errorCode: 0, groups: req.groups.map((gr) => ({ groupId: gr.groupId, topics: one(gr.groupId, gr.topics), errorCode: 0 })) }
      : { throttleTimeMs: 0, topics: one(req.groupId, req.topics), errorCode: 0, groups: [] };
    s.replies.push({ id: meta.id, body });
    return s;
  }

  offsetDelete(req: OffsetDeleteRequest, meta: RequestMeta): Step {
    const s = step();
    const g = this.groups.get(req.groupId);
    const reply = (errorCode: number, topics: OffsetDeleteResponse['topics'] = []): Step => {
      s.replies.push({ id: meta.id, body: { errorCode, throttleTimeMs: 0, topics } satisfies OffsetDeleteResponse });
      return s;
    };
    if (!g || g.state === 'Dead') return reply(GroupErr.GROUP_ID_NOT_FOUND);
    const subscribed = g.state === 'Empty' ? new Set<string>() : this.subscribedTopics(g);
    const removed: Array<{ topic: string; partition: number }> = [];
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        if (subscribed.has(t.name)) return { partitionIndex: p.partitionIndex, errorCode: GroupErr.GROUP_SUBSCRIBED_TO_TOPIC };
        removed.push({ topic: t.name, partition: p.partitionIndex });
        return { partitionIndex: p.partitionIndex, errorCode: 0 };
      }),
    }));
    if (removed.length > 0) this.emit(s, { type: 'offsets-delete', groupId: g.groupId, partitions: removed });
    return reply(GroupErr.NONE, topics);
  }

  /** topics named in the members' consumer-protocol subscriptions (protocol type "consumer") */
  private subscribedTopics(g: Group): Set<string> {
    const out = new Set<string>();
    if (g.protocolType !== 'consumer') return out;
    for (const m of g.members.values()) {
      const meta = m.protocols.find((p) => p.name === g.protocol)?.metadata;
      if (meta) for (const t of parseSubscriptionTopics(meta)) out.add(t);
    }
    return out;
  }

  // ------------------------------------------------------------------ ListGroups / DescribeGroups / DeleteGroups

  listGroups(req: ListGroupsRequest, meta: RequestMeta): Step {
    const s = step();
    const filter = new Set(req.statesFilter.map((x) => x.toLowerCase()));
    const groups = this.list()
      .filter((g) => filter.size === 0 || filter.has(g.state.toLowerCase()))
      .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state }));
    s.replies.push({ id: meta.id, body: { throttleTimeMs: 0, errorCode: 0, groups } satisfies ListGroupsResponse });
    return s;
  }

  describe(groupId: string): DescribedGroup {
    const g = this.groups.get(groupId);
    if (!g) return { errorCode: 0, groupId, groupState: 'Dead', protocolType: '', protocolData: '', members: [], authorizedOperations: -2147483648 };
    return {
      errorCode: 0, groupId, groupState: g.state, protocolType: g.protocolType ?? '', protocolData: g.state === 'Stable' || g.state === 'CompletingRebalance' ? (g.protocol ?? '') : '',
      members: [...g.members.values()].map((m) => ({
        memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
        memberMetadata: m.protocols.find((p) => p.name === g.protocol)?.metadata ?? EMPTY, memberAssignment: g.state === 'Stable' ? m.assignment : EMPTY,
      })),
      authorizedOperations: -2147483648,
    };
  }

  describeGroups(req: DescribeGroupsRequest, meta: RequestMeta): Step {
    const s = step();
    s.replies.push({ id: meta.id, body: { throttleTimeMs: 0, groups: req.groups.map((id) => this.describe(id)) } satisfies DescribeGroupsResponse });
    return s;
  }

  deleteGroups(req: DeleteGroupsRequest, meta: RequestMeta): Step {
    const s = step();
    const results = req.groupsNames.map((groupId) => {
      const g = this.groups.get(groupId);
      if (!g || g.state === 'Dead') return { groupId, errorCode: GroupErr.GROUP_ID_NOT_FOUND };
      if (g.state !== 'Empty') return { groupId, errorCode: GroupErr.NON_EMPTY_GROUP };
      this.groups.delete(groupId);
      this.emit(s, { type: 'group-delete', groupId });
      return { groupId, errorCode: 0 };
    });
    s.replies.push({ id: meta.id, body: { throttleTimeMs: 0, results } satisfies DeleteGroupsResponse });
    return s;
  }

  /** Admin: set committed offsets of an EMPTY group (lnc groups reset-offsets --execute). */
  resetOffsets(groupId: string, offsets: Array<{ topic: string; partition: number; offset: number }>, now: number): Step & { errorCode: number } {
    const s = step();
    const g = this.groups.get(groupId);
    if (g && g.state !== 'Empty') return { ...s, errorCode: GroupErr.NON_EMPTY_GROUP };
    if (!g) this.groups.set(groupId, { groupId, state: 'Empty', protocolType: null, protocol: null, generation: 0, leader: null, members: new Map(), pending: new Map(), rebalanceDeadline: null, initialDelay: false });
    this.emit(s, { type: 'offsets', groupId, offsets: offsets.map((o) => ({ ...o, leaderEpoch: -1, metadata: '', commitTimestamp: now })) });
    return { ...s, errorCode: 0 };
  }
}

function syncError(errorCode: number): object {
  return { throttleTimeMs: 0, errorCode, protocolType: null, protocolName: null, assignment: EMPTY };
}

/** ConsumerProtocolSubscription: int16 version, [string] topics, ... — only the topics are read; garbage → none. */
export function parseSubscriptionTopics(b: Buffer): string[] {
  try {
    let pos = 2;
    const n = b.readInt32BE(pos);
    pos += 4;
    const out: string[] = [];
    for (let i = 0; i < n && i < 100_000; i++) {
      const len = b.readInt16BE(pos);
      pos += 2;
      if (len < 0 || pos + len > b.length) return out;
      out.push(b.toString('utf8', pos, pos + len));
      pos += len;
    }
    return out;
  } catch {
    return [];
  }
}
