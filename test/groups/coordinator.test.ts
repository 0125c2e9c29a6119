import { describe, expect, it } from 'vitest';
import { applyGroupCommand, emptyGroupsState, type GroupsState } from '../../broker/src/groups/commands.ts';
import { GroupCoordinator, GroupErr, type Step } from '../../broker/src/groups/coordinator.ts';
import type { JoinGroupRequest, JoinGroupResponse, SyncGroupRequest } from '../../broker/src/kafka/protocol/groups.ts';

const SESSION = 10_000;
function coordinator(state?: GroupsState): GroupCoordinator {
  let n = 0;
  return new GroupCoordinator({ newMemberId: (c) => `${c}-${++n}` }, state);
}
let ids = 1;
const meta = (version = 5, clientId = 'c') => ({ id: ids++, version, clientId, clientHost: '127.0.0.1' });
const joinReq = (memberId = '', protocols = ['range'], groupInstanceId: string | null = null): JoinGroupRequest => ({
  groupId: 'g', sessionTimeoutMs: SESSION, rebalanceTimeoutMs: 20_000, memberId, groupInstanceId, protocolType: 'consumer',
  protocols: protocols.map((name) => ({ name, metadata: Buffer.from(name) })), reason: null,
});
const syncReq = (memberId: string, generationId: number, assignments: SyncGroupRequest['assignments'] = []): SyncGroupRequest => ({
  groupId: 'g', generationId, memberId, groupInstanceId: null, protocolType: null, protocolName: null, assignments,
});
const reply = (s: Step, id: number) => s.replies.find((r) => r.id === id)?.body as Record<string, unknown> | undefined;

/** v4+ join: MEMBER_ID_REQUIRED first, then the real join */
function joinNew(c: GroupCoordinator, now: number, protocols?: string[]): { id: number; memberId: string; step: Step } {
  const m1 = meta();
  const first = reply(c.joinGroup(joinReq('', protocols), m1, now), m1.id) as unknown as JoinGroupResponse;
  expect(first.errorCode).toBe(GroupErr.MEMBER_ID_REQUIRED);
  const m2 = meta();
  const step = c.joinGroup(joinReq(first.memberId, protocols), m2, now);
  return { id: m2.id, memberId: first.memberId, step };
}

describe('group coordinator (pure state machine)', () => {
  it('one member: join → CompletingRebalance (leader gets the members) → sync → Stable; generation persisted', () => {
    const c = coordinator();
    const a = joinNew(c, 0);
    const jr = reply(a.step, a.id) as unknown as JoinGroupResponse;
    expect(jr).toMatchObject({ errorCode: 0, generationId: 1, leader: a.memberId, protocolName: 'range' });
    expect(jr.members.map((m) => m.memberId)).toEqual([a.memberId]);
    expect(c.groupState('g')).toBe('CompletingRebalance');
    expect(a.step.commands).toEqual([expect.objectContaining({ type: 'group', generation: 1 })]);
    const sm = meta();
    const s = c.syncGroup(syncReq(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }]), sm, 1);
    expect((reply(s, sm.id) as { assignment: Buffer }).assignment.toString()).toBe('A');
    expect(c.groupState('g')).toBe('Stable');
  });

  it('a second member triggers a rebalance; the first is held until it rejoins; followers wait for the leader\'s sync', () => {
    const c = coordinator();
    const a = joinNew(c, 0);
    c.syncGroup(syncReq(a.memberId, 1, [{ memberId: a.memberId, assignment: Buffer.from('A') }]), meta(), 0);
    const b = joinNew(c, 100);
    expect(reply(b.step, b.id)).toBeUndefined(); // held: A has not rejoined
    expect(c.groupState('g')).toBe('PreparingRebalance');
    const hb = meta();
    expect(reply(c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, hb, 200), hb.id)).toMatchObject({ errorCode: GroupErr.REBALANCE_IN_PROGRESS });
    const ra = meta();
    const done = c.joinGroup(joinReq(a.memberId), ra, 300);
    const ja = reply(done, ra.id) as unknown as JoinGroupResponse;
    const jb = reply(done, b.id) as unknown as JoinGroupResponse;
    expect(ja.generationId).toBe(2);
    expect(jb.generationId).toBe(2);
    expect(ja.leader).toBe(a.memberId); // the leader stays the leader
    expect(ja.members).toHaveLength(2);
    expect(jb.members).toHaveLength(0);
    const sb = meta();
    expect(reply(c.syncGroup(syncReq(b.memberId, 2), sb, 310), sb.id)).toBeUndefined(); // waits for the leader
    const sa = meta();
    const st = c.syncGroup(syncReq(a.memberId, 2, [{ memberId: a.memberId, assignment: Buffer.from('A') }, { memberId: b.memberId, assignment: Buffer.from('B') }]), sa, 320);
    expect((reply(st, sb.id) as { assignment: Buffer }).assignment.toString()).toBe('B');
    expect((reply(st, sa.id) as { assignment: Buffer }).assignment.toString()).toBe('A');
    expect(c.groupState('g')).toBe('Stable');
  });

  it('session timeout (injected clock) removes a silent member and rebalances; stale generation is ILLEGAL_GENERATION', () => {
    const c = coordinator();
    const a = joinNew(c, 0);
    c.syncGroup(syncReq(a.memberId, 1, []), meta(), 0);
    expect(c.tick(SESSION - 1).replies).toHaveLength(0);
    expect(c.groupState('g')).toBe('Stable');
    const t = c.tick(SESSION);
    expect(c.groupState('g')).toBe('Empty');
    expect(c.generation('g')).toBe(2);
    expect(t.commands).toEqual([expect.objectContaining({ type: 'group', generation: 2, members: [] })]);
    const hb = meta();
    expect(reply(c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, hb, SESSION + 1), hb.id)).toMatchObject({ errorCode: GroupErr.UNKNOWN_MEMBER_ID });
  });

  it('rebalance timeout drops members that do not rejoin', () => {
    const c = coordinator();
    const a = joinNew(c, 0);
    c.syncGroup(syncReq(a.memberId, 1, []), meta(), 0);
    const b = joinNew(c, 1000);
    // A keeps heartbeating but never rejoins; the rebalance timeout (20 s) completes the join without it
    for (let t = 2000; t < 21_000; t += 2000) c.heartbeat({ groupId: 'g', generationId: 1, memberId: a.memberId, groupInstanceId: null }, meta(), t);
    const s = c.tick(21_000);
    const jb = reply(s, b.id) as unknown as JoinGroupResponse;
    expect(jb).toMatchObject({ errorCode: 0, generationId: 2, leader: b.memberId });
    expect(c.describe('g').members.map((m) => m.memberId)).toEqual([b.memberId]);
  });

  it('LeaveGroup v3+ batch: members leave, the rest rebalance, an unknown member gets UNKNOWN_MEMBER_ID', () => {
    const c = coordinator();
    const a = joinNew(c, 0);
    c.syncGroup(syncReq(a.memberId, 1, []), meta(), 0);
    const lm = meta(3);
    const s = c.leaveGroup({ groupId: 'g', memberId: '', members: [{ memberId: a.memberId, groupInstanceId: null, reason: null }, { memberId: 'ghost', groupInstanceId: null, reason: null }] }, lm, 5);
    expect(reply(s, lm.id)).toMatchObject({ errorCode: 0, members: [{ memberId: a.memberId, errorCode: 0 }, { memberId: 'ghost', errorCode: GroupErr.UNKNOWN_MEMBER_ID }] });
    expect(c.groupState('g')).toBe('Empty');
  });

  it('inconsistent protocols are rejected; the protocol all members support is chosen', () => {
    const c = coordinator();
    const a = joinNew(c, 0, ['roundrobin', 'range']);
    c.syncGroup(syncReq(a.memberId, 1, []), meta(), 0);
    const m = meta();
    expect(reply(c.joinGroup(joinReq('', ['sticky']), m, 1), m.id)).toMatchObject({ errorCode: GroupErr.INCONSISTENT_GROUP_PROTOCOL });
    const b = joinNew(c, 2, ['range']);
    const ra = meta();
    const s = c.joinGroup(joinReq(a.memberId, ['roundrobin', 'range']), ra, 3);
    expect(reply(s, b.id)).toMatchObject({ protocolName: 'range' });
  });

  it('static membership: a rejoin with the same group.instance.id replaces the old member id (fenced afterwards)', () => {
    const c = coordinator();
    const m1 = meta();
    const j1 = reply(c.joinGroup(joinReq('', ['range'], 'inst-1'), m1, 0), m1.id) as unknown as JoinGroupResponse;
    expect(j1.errorCode).toBe(0); // static members skip MEMBER_ID_REQUIRED
    c.syncGroup(syncReq(j1.memberId, 1, []), meta(), 0);
    const m2 = meta();
    const j2 = reply(c.joinGroup(joinReq('', ['range'], 'inst-1'), m2, 10), m2.id) as unknown as JoinGroupResponse;
    expect(j2.memberId).not.toBe(j1.memberId);
    const hb = meta();
    expect(reply(c.heartbeat({ groupId: 'g', generationId: j2.generationId, memberId: j1.memberId, groupInstanceId: 'inst-1' }, hb, 11), hb.id)).toMatchObject({ errorCode: GroupErr.UNKNOWN_MEMBER_ID });
  });

  it('offsets: commit rules by state/generation; the commands rebuild the same offsets; delete only when Empty', () => {
    const c = coordinator();
    const commit = (memberId: string, gen: number, offset: number, now: number) => {
      const m = meta(8);
      const s = c.offsetCommit({ groupId: 'g', generationIdOrMemberEpoch: gen, memberId, groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: 'meta' }] }] }, m, now);
      return { s, code: (reply(s, m.id) as { topics: Array<{ partitions: Array<{ errorCode: number }> }> }).topics[0]!.partitions[0]!.errorCode };
    };
    expect(commit('', -1, 5, 0).code).toBe(0); // admin commit into a new (Empty) group
    const a = joinNew(c, 1);
    expect(commit(a.memberId, 1, 6, 2).code).toBe(GroupErr.REBALANCE_IN_PROGRESS); // CompletingRebalance
    c.syncGroup(syncReq(a.memberId, 1, []), meta(), 3);
    expect(commit(a.memberId, 0, 6, 4).code).toBe(GroupErr.ILLEGAL_GENERATION);
    expect(commit('stranger', 1, 6, 4).code).toBe(GroupErr.UNKNOWN_MEMBER_ID);
    const ok = commit(a.memberId, 1, 7, 5);
    expect(ok.code).toBe(0);
    expect(c.committed('g', 't', 0)).toMatchObject({ offset: 7, metadata: 'meta' });
    // replaying every command from the start gives the same persistent state
    const replay = emptyGroupsState();
    for (const cmd of ok.s.commands) applyGroupCommand(replay, cmd);
    expect(replay.groups.get('g')!.offsets.get('t\u00000')).toMatchObject({ offset: 7 });
    const dm = meta(2);
    expect(reply(c.deleteGroups({ groupsNames: ['g', 'nope'] }, dm), dm.id)).toMatchObject({ results: [{ groupId: 'g', errorCode: GroupErr.NON_EMPTY_GROUP }, { groupId: 'nope', errorCode: GroupErr.GROUP_ID_NOT_FOUND }] });
    // a coordinator restarted from the persistent state has the offsets and generation, with the group Empty
    const c2 = coordinator(c.persistent);
    expect(c2.groupState('g')).toBe('Empty');
    expect(c2.generation('g')).toBe(1);
    expect(c2.committed('g', 't', 0)?.offset).toBe(7);
    const fm = meta(8);
    expect(reply(c2.offsetFetch({ groupId: '', topics: null, groups: [{ groupId: 'g', topics: null }], requireStable: false }, fm), fm.id)).toMatchObject({
      groups: [{ groupId: 'g', topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 7, metadata: 'meta' }] }] }],
    });
    const dm2 = meta(2);
    const del = c2.deleteGroups({ groupsNames: ['g'] }, dm2);
    expect(reply(del, dm2.id)).toMatchObject({ results: [{ groupId: 'g', errorCode: 0 }] });
    expect(del.commands).toEqual([{ type: 'group-delete', groupId: 'g' }]);
    expect(c2.persistent.groups.has('g')).toBe(false);
  });

  it('a commit to a partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION and is not stored', () => {
    const c = new GroupCoordinator({ newMemberId: () => 'x', partitionExists: (t, p) => t === 't' && p < 2 });
    const m = meta(8);
    const s = c.offsetCommit({ groupId: 'g', generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: 't', partitions: [1, 2].map((partitionIndex) => ({ partitionIndex, committedOffset: 3, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: null })) }] }, m, 0);
    expect(reply(s, m.id)).toMatchObject({ topics: [{ partitions: [{ partitionIndex: 1, errorCode: 0 }, { partitionIndex: 2, errorCode: GroupErr.UNKNOWN_TOPIC_OR_PARTITION }] }] });
    expect(c.committed('g', 't', 2)).toBeNull();
    expect(c.committed('g', 't', 1)?.offset).toBe(3);
  });

  it('JoinGroup v0-v3 gets a member id at once; invalid session timeout and empty group id are rejected', () => {
    const c = coordinator();
    const m = meta(3);
    expect(reply(c.joinGroup(joinReq(), m, 0), m.id)).toMatchObject({ errorCode: 0, generationId: 1 });
    const bad = meta();
    expect(reply(c.joinGroup({ ...joinReq(), sessionTimeoutMs: 10 }, bad, 0), bad.id)).toMatchObject({ errorCode: GroupErr.INVALID_SESSION_TIMEOUT });
    const empty = meta();
    expect(reply(c.joinGroup({ ...joinReq(), groupId: '' }, empty, 0), empty.id)).toMatchObject({ errorCode: GroupErr.INVALID_GROUP_ID });
  });
});
