import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { isLanceError } from '../common/errors.ts';
import { silentLogger } from '../common/log.ts';
import type { BrokerEndpoint } from '../kafka/backend.ts';
import { GROUP_API_VERSIONS, GROUP_SPECS, GroupApiKey, type InitProducerIdResponse, type JoinGroupResponse, type OffsetCommitResponse, type OffsetFetchResponse } from '../kafka/protocol/groups.ts';
import { decodeMessage, encodeMessage } from '../kafka/protocol/schema.ts';
import { Reader, Writer } from '../kafka/protocol/wire.ts';
import type { FindCoordinatorResponse } from '../kafka/protocol/messages.ts';
import { groupErrorResponse, NOT_COORDINATOR } from '../groups/responses.ts';
import { ClusterGroups, PRODUCER_ID_BLOCK, ReadBarrier, type GroupsClusterHost } from './cluster-groups.ts';
import { applyCommand, decodeCommand, emptyMetadata, encodeCommand, restoreMetadata, snapshotMetadata, type MetaCommand } from './metadata.ts';

/** The metadata state machine of one node with the controller role set by the test; proposals apply at once. */
class MemHost implements GroupsClusterHost {
  readonly nodeId = 1;
  meta = emptyMetadata();
  ctl = 2;
  readyTerm: number | null = null;
  lastIndex = 0;
  failProposals = 0;
  private readonly listeners = new Set<() => void>();
  readonly ops = new Map<string, (body: unknown) => Promise<unknown>>();
  metadataState() { return this.meta; }
  controllerId() { return this.ctl; }
  controllerReadyTerm() { return this.ctl === this.nodeId ? this.readyTerm : null; }
  metadataLastIndex() { return this.lastIndex; }
  onStateChange(l: () => void) { this.listeners.add(l); return () => { this.listeners.delete(l); }; }
  change(): void { for (const l of [...this.listeners]) l(); }
  async proposeMetadata(c: MetaCommand) {
    if (this.failProposals > 0) {
      this.failProposals--;
      throw new Error('lost leadership');
    }
    // through the real wire form and schema, as a committed entry would be
    return applyCommand(this.meta, ++this.lastIndex, decodeCommand(encodeCommand(c), 'test entry'));
  }
  callController(method: string, body: unknown) { return this.ops.get(method)!(JSON.parse(JSON.stringify(body))); }
  registerControllerOp(method: string, fn: (body: unknown) => Promise<unknown>) { this.ops.set(method, fn); }
  kafkaEndpointOf(id: number): BrokerEndpoint { return { nodeId: id, host: `h${id}`, port: 9000 + id, rack: null }; }
  highWatermarkOf() { return 10; }
  async listOffsets() { return { offset: 0 }; }
}

const ctx = { clientId: 'c', clientHost: '127.0.0.1' };
const logger = silentLogger;

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

function commit(groups: ClusterGroups, offset: number): Promise<OffsetCommitResponse> {
  return Promise.resolve(groups.handle(GroupApiKey.OffsetCommit, 8, {
    groupId: 'g', generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1,
    topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: 'm' }] }],
  }, ctx)) as Promise<OffsetCommitResponse>;
}

async function fetched(groups: ClusterGroups): Promise<OffsetFetchResponse> {
  return groups.handle(GroupApiKey.OffsetFetch, 7, { groupId: 'g', topics: [{ name: 't', partitionIndexes: [0] }], groups: [], requireStable: false }, ctx) as Promise<OffsetFetchResponse>;
}

function setup(): { host: MemHost; groups: ClusterGroups } {
  const host = new MemHost();
  applyCommand(host.meta, ++host.lastIndex, { op: 'createTopic', name: 't', topicId: 'u', partitions: 1, rf: 1, config: {}, assignment: [[1]] });
  return { host, groups: new ClusterGroups({ host, logger, registry: new Registry() }) };
}

describe('ClusterGroups (coordinator on the controller, replicated through metadata commands)', () => {
  it('a non-controller points FindCoordinator at the controller and answers group requests NOT_COORDINATOR; a loading controller LOAD_IN_PROGRESS', async () => {
    const { host, groups } = setup();
    const fc = groups.handle(10, 3, { key: 'g', keyType: 0, coordinatorKeys: [] }, ctx) as FindCoordinatorResponse;
    expect([fc.errorCode, fc.nodeId, fc.host, fc.port]).toEqual([0, 2, 'h2', 9002]);
    const join = { groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, memberId: '', groupInstanceId: null, protocolType: 'consumer', protocols: [], reason: null };
    expect((groups.handle(GroupApiKey.JoinGroup, 5, join, ctx) as JoinGroupResponse).errorCode).toBe(16);
    expect(groups.handle(GroupApiKey.ListGroups, 4, { statesFilter: [] }, ctx)).toEqual({ throttleTimeMs: 0, errorCode: 0, groups: [] });
    host.ctl = 1; // elected, its no-op not applied yet
    host.change();
    expect((groups.handle(GroupApiKey.JoinGroup, 5, join, ctx) as JoinGroupResponse).errorCode).toBe(14);
    host.ctl = -1;
    const none = groups.handle(10, 3, { key: 'g', keyType: 0, coordinatorKeys: [] }, ctx) as FindCoordinatorResponse;
    expect(none.errorCode).toBe(15);
    await groups.close();
  });

  it('commits are metadata commands; the coordinator stops when the node stops being the controller and a new term restores the offsets', async () => {
    const { host, groups } = setup();
    host.ctl = 1;
    host.readyTerm = 5;
    host.change();
    await until(() => groups.coordinator !== null);
    expect((await commit(groups, 42)).topics[0]!.partitions[0]!.errorCode).toBe(0);
    expect(host.meta.groups.groups.get('g')!.offsets.get('t\u00000')).toMatchObject({ offset: 42, metadata: 'm' });
    expect((await commit(groups, 43).then((r) => r.topics[0]!.partitions[0]!.errorCode))).toBe(0);

    host.ctl = 3; // another node won an election
    host.change();
    expect(groups.coordinator).toBeNull();
    expect((await fetched(groups)).errorCode).toBe(NOT_COORDINATOR);

    host.ctl = 1;
    host.readyTerm = 7;
    host.change();
    await until(() => groups.coordinator !== null);
    expect((await fetched(groups)).topics[0]!.partitions[0]).toMatchObject({ committedOffset: 43, metadata: 'm', errorCode: 0 });
    // commits to a partition the metadata does not have are refused
    const bad = await Promise.resolve(groups.handle(GroupApiKey.OffsetCommit, 8, {
      groupId: 'g', generationIdOrMemberEpoch: -1, memberId: '', groupInstanceId: null, retentionTimeMs: -1,
      topics: [{ name: 't', partitions: [{ partitionIndex: 5, committedOffset: 1, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: null }] }],
    }, ctx)) as OffsetCommitResponse;
    expect(bad.topics[0]!.partitions[0]!.errorCode).toBe(3);
    await groups.close();
  });

  it('a commit that fails to become a metadata entry is answered COORDINATOR_NOT_AVAILABLE and the coordinator is rebuilt from the replicated state', async () => {
    const { host, groups } = setup();
    host.ctl = 1;
    host.readyTerm = 2;
    host.change();
    await until(() => groups.coordinator !== null);
    await commit(groups, 10);
    const first = groups.coordinator;
    host.failProposals = 1;
    expect((await commit(groups, 11)).topics[0]!.partitions[0]!.errorCode).toBe(15);
    await until(() => groups.coordinator !== null && groups.coordinator !== first);
    // the optimistic 11 is gone: the rebuilt coordinator has what was committed
    expect((await fetched(groups)).topics[0]!.partitions[0]!.committedOffset).toBe(10);
    await groups.close();
  });

  it('a read (OffsetFetch) is answered only after a barrier committed in its term; a deposed controller that does not know it answers NOT_COORDINATOR, never stale offsets', async () => {
    const { host, groups } = setup();
    host.ctl = 1;
    host.readyTerm = 3;
    host.change();
    await until(() => groups.coordinator !== null);
    expect((await commit(groups, 7)).topics[0]!.partitions[0]!.errorCode).toBe(0);
    const before = host.lastIndex;
    expect((await fetched(groups)).topics[0]!.partitions[0]).toMatchObject({ committedOffset: 7, errorCode: 0 });
    // the barrier is an empty groups entry in the metadata log
    expect(host.lastIndex).toBe(before + 1);
    // another controller took over but this node has not heard of it: its barrier cannot commit
    host.failProposals = 1;
    const r = await fetched(groups);
    expect(r.topics[0]!.partitions[0]!.errorCode).toBe(NOT_COORDINATOR);
    expect(r.topics[0]!.partitions[0]!.committedOffset).toBe(-1);
    await groups.close();
  });

  it('ReadBarrier: reads share barriers, but never one proposed before they arrived', async () => {
    const proposals: Array<() => void> = [];
    let term: number | null = 4;
    const barrier = new ReadBarrier({
      controllerReadyTerm: () => term,
      proposeMetadata: () => new Promise((resolve) => proposals.push(() => resolve({ ok: true }))),
    });
    const done: string[] = [];
    const a = barrier.confirm(4).then(() => done.push('a'));
    expect(proposals.length).toBe(1);
    // b and c arrive while a's barrier is in flight: they wait for the next one, proposed after a's commits
    const b = barrier.confirm(4).then(() => done.push('b'));
    const c = barrier.confirm(4).then(() => done.push('c'));
    expect(proposals.length).toBe(1);
    proposals[0]!();
    await a;
    await until(() => proposals.length === 2);
    expect(done).toEqual(['a']);
    proposals[1]!();
    await Promise.all([b, c]);
    expect(done).toEqual(['a', 'b', 'c']);
    // no longer the controller of that term: refused without a proposal
    term = 5;
    await expect(barrier.confirm(4)).rejects.toThrow(/term 4/);
    expect(proposals.length).toBe(2);
  });

  it('producer ids come from disjoint blocks reserved in the metadata log, on any node', async () => {
    const { host, groups } = setup();
    const init = async (g: ClusterGroups) => (await g.handle(GroupApiKey.InitProducerId, 4, { transactionalId: null, transactionTimeoutMs: 1, producerId: -1, producerEpoch: -1 }, ctx)) as InitProducerIdResponse;
    expect((await init(groups)).producerId).toBe(0);
    expect((await init(groups)).producerId).toBe(1);
    expect(host.meta.nextProducerId).toBe(PRODUCER_ID_BLOCK);
    // a second node's allocator (same metadata) reserves the next block
    const groups2 = new ClusterGroups({ host, logger, registry: new Registry() });
    expect((await init(groups2)).producerId).toBe(PRODUCER_ID_BLOCK);
    expect(host.meta.nextProducerId).toBe(2 * PRODUCER_ID_BLOCK);
    // a stale block proposal (not at the high-water mark) is refused by the state machine
    expect(applyCommand(host.meta, ++host.lastIndex, { op: 'producerIdBlock', from: 0, next: 5 }).ok).toBe(false);
    expect((await init(groups)).producerId).toBe(2);
    expect((await groups.handle(GroupApiKey.InitProducerId, 4, { transactionalId: 'tx', transactionTimeoutMs: 1, producerId: -1, producerEpoch: -1 }, ctx) as InitProducerIdResponse).errorCode).toBe(53);
    await groups.close();
    await groups2.close();
  });
});

describe('metadata snapshots carry groups and the producer-id high-water mark', () => {
  it('round-trips, and refuses a corrupt groups section naming the field', () => {
    const s = emptyMetadata();
    applyCommand(s, 1, { op: 'groups', cmds: [
      { type: 'group', groupId: 'g', protocolType: 'consumer', protocol: 'range', generation: 3, leader: null, members: [] },
      { type: 'offsets', groupId: 'g', offsets: [{ topic: 't', partition: 2, offset: 9, leaderEpoch: 1, metadata: '', commitTimestamp: 5 }] },
    ] });
    applyCommand(s, 2, { op: 'producerIdBlock', from: 0, next: 1000 });
    const back = restoreMetadata(snapshotMetadata(s));
    expect(back).toEqual(s);
    expect(back.groups.groups.get('g')!.offsets.get('t\u00002')!.offset).toBe(9);
    expect(back.nextProducerId).toBe(1000);
    let err: unknown;
    try {
      restoreMetadata(JSON.stringify({ ...JSON.parse(snapshotMetadata(s)), groups: { groups: [{ groupId: 7 }] } }));
    } catch (e) { err = e; }
    expect(isLanceError(err, 'CORRUPT') && err.message).toMatch(/metadata snapshot: groups: groups\.0\.groupId/);
    // a snapshot from before groups were replicated
    const old = restoreMetadata(JSON.stringify({ applied: 1, nextTopicId: 1, topics: {}, brokers: {} }));
    expect([old.groups.groups.size, old.nextProducerId]).toEqual([0, 0]);
  });
});

describe('groupErrorResponse', () => {
  const samples: Record<number, unknown> = {
    [GroupApiKey.JoinGroup]: { groupId: 'g', sessionTimeoutMs: 1, rebalanceTimeoutMs: 1, memberId: 'm', groupInstanceId: null, protocolType: 'consumer', protocols: [], reason: null },
    [GroupApiKey.SyncGroup]: { groupId: 'g', generationId: 1, memberId: 'm', groupInstanceId: null, protocolType: null, protocolName: null, assignments: [] },
    [GroupApiKey.Heartbeat]: { groupId: 'g', generationId: 1, memberId: 'm', groupInstanceId: null },
    [GroupApiKey.LeaveGroup]: { groupId: 'g', memberId: 'm', members: [{ memberId: 'm', groupInstanceId: null, reason: null }] },
    [GroupApiKey.OffsetCommit]: { groupId: 'g', generationIdOrMemberEpoch: 1, memberId: 'm', groupInstanceId: null, retentionTimeMs: -1, topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1, committedLeaderEpoch: -1, commitTimestamp: -1, committedMetadata: null }] }] },
    [GroupApiKey.OffsetFetch]: { groupId: 'g', topics: [{ name: 't', partitionIndexes: [0, 1] }], groups: [{ groupId: 'g', topics: null }], requireStable: false },
    [GroupApiKey.DescribeGroups]: { groups: ['g', 'h'], includeAuthorizedOperations: false },
    [GroupApiKey.ListGroups]: { statesFilter: [] },
    [GroupApiKey.DeleteGroups]: { groupsNames: ['g'] },
    [GroupApiKey.OffsetDelete]: { groupId: 'g', topics: [] },
  };
  const codes = (v: unknown, out: number[] = []): number[] => {
    if (Array.isArray(v)) for (const x of v) codes(x, out);
    else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) for (const [k, x] of Object.entries(v)) (k === 'errorCode' ? out.push(x as number) : codes(x, out));
    return out;
  };

  it('encodes for every version of every group API, every error code carrying the code', () => {
    for (const [apiKey, spec] of GROUP_SPECS) {
      if (apiKey === GroupApiKey.InitProducerId) continue;
      const [lo, hi] = GROUP_API_VERSIONS.find(([k]) => k === apiKey)![1];
      for (let v = lo; v <= hi; v++) {
        const w = new Writer();
        encodeMessage(spec.response, w, groupErrorResponse(apiKey, v, samples[apiKey], 16), v);
        const back = decodeMessage<Record<string, unknown>>(spec.response, new Reader(w.toBuffer()), v);
        if (apiKey === GroupApiKey.OffsetFetch && (v < 2 || v >= 8)) delete back.errorCode; // top-level code only in v2-7 (else decoded as its default)
        const cs = codes(back);
        expect(cs.length, `api ${apiKey} v${v}`).toBeGreaterThan(0);
        expect(new Set(cs), `api ${apiKey} v${v}`).toEqual(new Set([16]));
      }
    }
  });
});
