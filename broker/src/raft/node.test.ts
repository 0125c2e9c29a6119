import { describe, expect, it } from 'vitest';
import { isLanceError } from '../common/errors.ts';
import { MemoryRaftLog } from './memory-log.ts';
import { RaftNode } from './node.ts';
import { TestNet, lcg } from './testkit.ts';
import { EntryType, type ClusterConfig, type NodeId, type RaftEntry, type RaftMessage } from './types.ts';

const enc = new TextEncoder();
const data = (s: string): { type: EntryType; data: Uint8Array } => ({ type: EntryType.DATA, data: enc.encode(s) });

function cluster(ids: NodeId[], opts: Parameters<TestNet['add']>[1] = {}): TestNet {
  const net = new TestNet();
  for (const id of ids) net.add(id, { bootstrap: { voters: ids, learners: [] }, ...opts });
  return net;
}

/** a log whose entry i (1-based) has term terms[i-1]; membership comes from a snapshot header at index 0 */
function presetLog(terms: number[], config: ClusterConfig): MemoryRaftLog {
  const entries: RaftEntry[] = terms.map((term, i) => ({ term, index: i + 1, type: EntryType.DATA, data: enc.encode(`t${term}-i${i + 1}`) }));
  return new MemoryRaftLog({ snapshot: { meta: { index: 0, term: 0, config }, data: new Uint8Array(0) }, entries });
}

function termsOf(log: MemoryRaftLog): number[] {
  const out: number[] = [];
  for (let i = log.snapshotIndex() + 1; i <= log.lastIndex(); i++) out.push(log.term(i)!);
  return out;
}

function expectLanceError(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isLanceError(caught), `expected a LanceError ${code}, got ${String(caught)}`).toBe(true);
  expect((caught as { code: string }).code).toBe(code);
}

describe('RaftNode: elections', () => {
  it('elects exactly one leader, which commits its no-op on every node', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex === 2));
    for (const id of [1, 2, 3]) {
      const r = net.get(id).raft;
      expect(r.currentTerm).toBe(term);
      expect(r.currentLeader).toBe(l);
      // entry 1 = bootstrap config (term 0), entry 2 = the leader's no-op
      expect(net.get(id).applied.map((e) => [e.index, e.type, e.term])).toEqual([[1, EntryType.CONFIG, 0], [2, EntryType.NOOP, term]]);
    }
    // stable: a long quiet period keeps the same leader and term (heartbeats hold followers back)
    net.run(3000);
    expect(net.leader()).toBe(l);
    expect(net.get(l).raft.currentTerm).toBe(term);
  });

  it('replicates proposals in order and acknowledges them only through the commit index', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.get(net.leader()).raft;
    const r = l.propose([data('a'), data('b'), data('c')]);
    expect(r.lastIndex - r.firstIndex).toBe(2);
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex >= r.lastIndex));
    for (const id of [1, 2, 3]) {
      const got = net.get(id).applied.filter((e) => e.type === EntryType.DATA).map((e) => new TextDecoder().decode(e.data));
      expect(got).toEqual(['a', 'b', 'c']);
    }
    expectLanceError(() => net.get(net.leader() === 1 ? 2 : 1).raft.propose([data('x')]), 'NOT_LEADER');
  });

  it('pre-vote: a partitioned node does not raise its term, and rejoining does not depose the leader', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    const victim = [1, 2, 3].find((id) => id !== l)!;
    net.isolate(victim);
    net.run(3000);
    expect(net.get(victim).raft.currentTerm).toBe(term);
    expect(net.get(victim).raft.currentRole).toBe('precandidate');
    net.isolate(victim, false);
    net.run(1000);
    expect(net.leader()).toBe(l);
    expect(net.get(l).raft.currentTerm).toBe(term);
    expect(net.get(victim).raft.currentLeader).toBe(l);
  });

  it('without pre-vote the same partition does disrupt the cluster (the test above can fail)', () => {
    const net = cluster([1, 2, 3], { preVote: false });
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    const victim = [1, 2, 3].find((id) => id !== l)!;
    net.isolate(victim);
    net.run(3000);
    expect(net.get(victim).raft.currentTerm).toBeGreaterThan(term);
    net.isolate(victim, false);
    net.run(1000);
    expect(net.get(net.leader()).raft.currentTerm).toBeGreaterThan(term);
  });

  it('check-quorum: an isolated leader steps down within an election timeout and refuses writes', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    net.isolate(l);
    const took = net.runUntil(() => net.get(l).raft.currentRole !== 'leader', 1000);
    expect(took).toBeLessThanOrEqual(300 + 5);
    expectLanceError(() => net.get(l).raft.propose([data('lost')]), 'NOT_LEADER');
    // the majority side elects a new leader meanwhile
    net.runUntil(() => net.leaders().some((id) => id !== l));
  });

  it('peerDisconnected(leader): the survivors elect a new leader well within the minimum election timeout', () => {
    // crash = the node stops; its peers' connections close, the driver reports peerDisconnected(leader)
    const elect = (notify: boolean): { took: number; term: number; newLeader: NodeId; oldTerm: number; survivors: NodeId[] } => {
      const net = cluster([1, 2, 3]);
      net.runUntil(() => net.leaders().length === 1);
      const l = net.leader();
      const oldTerm = net.get(l).raft.currentTerm;
      // a fresh heartbeat first, so both followers' timers were just reset (worst case for the timeout path)
      net.run(60);
      net.get(l).up = false;
      const survivors = [1, 2, 3].filter((id) => id !== l);
      if (notify) for (const id of survivors) { net.get(id).raft.peerDisconnected(l); net.collect(id); }
      const took = net.runUntil(() => survivors.some((id) => net.get(id).raft.currentRole === 'leader'), 2000, 1);
      const newLeader = survivors.find((id) => net.get(id).raft.currentRole === 'leader')!;
      return { took, term: net.get(newLeader).raft.currentTerm, newLeader, oldTerm, survivors };
    };
    const fast = elect(true);
    // stagger 25 ms per rank: the first survivor campaigns within 25 ms and wins in one round (term + 1)
    expect(fast.took).toBeLessThan(50);
    expect(fast.term).toBe(fast.oldTerm + 1);
    expect(fast.newLeader).toBe(Math.min(...fast.survivors)); // rank 0 = the lowest surviving id goes first
    const slow = elect(false);
    expect(slow.took).toBeGreaterThanOrEqual(100); // the timeout path: >= 150 ms minus up to a heartbeat interval
  });

  it('pre-candidates that start together do not split the vote: the lower id wins the tie in one round', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    net.run(60);
    net.get(l).up = false;
    const [a, b] = [1, 2, 3].filter((id) => id !== l) as [number, number];
    // both timers expire in the same step (a loaded machine wakes both processes at once)
    net.tick(a, 400);
    net.tick(b, 400);
    expect([net.get(a).raft.currentRole, net.get(b).raft.currentRole]).toEqual(['precandidate', 'precandidate']);
    net.deliverAll();
    expect(net.get(a).raft.currentRole).toBe('leader');
    expect(net.get(a).raft.currentTerm).toBe(term + 1);
    expect(net.get(b).raft.currentLeader).toBe(a);
  });

  it('tie-break does not deadlock: a pre-candidate refused by a peer (still in the lease) grants that peer\'s later pre-vote', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    net.run(60);
    net.get(l).up = false;
    const [a, b] = [1, 2, 3].filter((id) => id !== l) as [number, number];
    // a learns of the crash first and pre-votes at once; b has not noticed yet and refuses (lease)
    net.get(a).raft.peerDisconnected(l);
    net.tick(a, 30);
    expect(net.get(a).raft.currentRole).toBe('precandidate');
    net.deliverAll();
    expect(net.get(a).raft.currentRole).toBe('precandidate');
    // then b notices and campaigns: a (lower id, equal log) must grant it, since b already refused a this round
    net.get(b).raft.peerDisconnected(l);
    net.tick(b, 60);
    net.deliverAll();
    expect(net.get(b).raft.currentRole).toBe('leader');
    expect(net.get(b).raft.currentTerm).toBe(term + 1);
  });

  it('peerDisconnected with a live leader (only one connection broke): no disruption, same leader and term', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    for (const f of [1, 2, 3].filter((x) => x !== l)) {
      // this follower pre-votes early, but the leader and the other follower (both within their lease) refuse
      net.get(f).raft.peerDisconnected(l);
      net.collect(f);
      net.run(1000);
      expect(net.leader()).toBe(l);
      expect(net.get(l).raft.currentTerm).toBe(term);
      for (const id of [1, 2, 3]) expect(net.get(id).raft.currentLeader).toBe(l);
    }
    // a report about a peer that is not the leader changes nothing
    const f = [1, 2, 3].find((x) => x !== l)!;
    const other = [1, 2, 3].find((x) => x !== l && x !== f)!;
    const before = net.sent.length;
    net.get(f).raft.peerDisconnected(other);
    net.collect(f);
    net.run(1000);
    expect(net.sent.slice(before).filter((m) => m.type === 'PreVote' || m.type === 'Vote')).toEqual([]);
    expect(net.leader()).toBe(l);
    expect(net.get(l).raft.currentTerm).toBe(term);
  });

  it('terms fence messages: a stale leader gets a higher term back and steps down', () => {
    const net = cluster([1, 2, 3], { checkQuorum: false });
    net.runUntil(() => net.leaders().length === 1);
    const old = net.leader();
    const oldTerm = net.get(old).raft.currentTerm;
    net.isolate(old);
    net.runUntil(() => net.leaders().some((id) => id !== old));
    // without check-quorum the old leader still believes it leads
    expect(net.get(old).raft.currentRole).toBe('leader');
    const stale = net.get(old).raft.propose([data('stale')]);
    net.isolate(old, false);
    net.runUntil(() => net.leaders().length === 1 && net.get(old).raft.currentRole === 'follower');
    expect(net.get(old).raft.currentTerm).toBeGreaterThan(oldTerm);
    // the stale entry was never committed and is gone from every log
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex === net.get(net.leader()).raft.lastIndex));
    for (const id of [1, 2, 3]) expect(net.get(id).log.term(stale.firstIndex)).not.toBe(oldTerm);
  });
});

describe('RaftNode: persistence contract', () => {
  it('does not send a vote before term and vote are persisted', () => {
    const net = new TestNet();
    const cfg = { voters: [1, 2, 3], learners: [] };
    net.add(1, { bootstrap: cfg });
    const b = net.add(2, { bootstrap: cfg });
    net.add(3, { bootstrap: cfg });
    b.holdPersist = true;
    // only node 1 runs its clock and it cannot reach node 3: it needs node 2's vote
    net.setLink(1, 3, false);
    for (let i = 0; i < 200 && !b.held.some((p) => p.hardState?.vote === 1); i++) {
      net.tick(1, 5);
      net.deliverAll();
    }
    const held = b.held.find((p) => p.hardState?.vote === 1);
    expect(held, 'node 2 persists its vote').toBeDefined();
    expect(net.sent.some((m) => m.type === 'VoteResp' && m.from === 2 && m.granted)).toBe(false);
    expect(net.get(1).raft.currentRole).toBe('candidate');
    net.releaseHeld(2);
    expect(net.sent.some((m) => m.type === 'VoteResp' && m.from === 2 && m.granted)).toBe(true);
    net.deliverAll();
    expect(net.get(1).raft.currentRole).toBe('leader');
  });

  it('does not acknowledge an Append before the entries are persisted; the leader counts itself only once persisted', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex === 2));
    const l = net.leader();
    const [f1, f2] = [1, 2, 3].filter((id) => id !== l) as [NodeId, NodeId];
    net.get(f1).holdPersist = true;
    net.get(f2).holdPersist = true;
    net.get(l).holdPersist = true;
    const before = net.sent.length;
    const p = net.get(l).raft.propose([data('x')]);
    net.collect(l);
    net.deliverAll();
    const acks = net.sent.slice(before).filter((m): m is Extract<RaftMessage, { type: 'AppendResp' }> => m.type === 'AppendResp' && m.success && m.matchIndex >= p.lastIndex);
    expect(acks).toEqual([]);
    net.releaseHeld(f1);
    net.deliverAll();
    // one follower acked, but the leader's own copy is not durable: 1 of 3 is no majority
    expect(net.get(l).raft.commitIndex).toBeLessThan(p.lastIndex);
    net.releaseHeld(l);
    net.deliverAll();
    expect(net.get(l).raft.commitIndex).toBe(p.lastIndex);
  });

  it('single node: commits only after its own persistence completes', () => {
    const net = new TestNet();
    const m = net.add(1, { bootstrap: { voters: [1], learners: [] } });
    net.runUntil(() => m.raft.currentRole === 'leader' && m.raft.commitIndex === 2);
    m.holdPersist = true;
    const p = m.raft.propose([data('solo')]);
    net.collect(1);
    expect(m.raft.commitIndex).toBe(2);
    net.releaseHeld(1);
    expect(m.raft.commitIndex).toBe(p.lastIndex);
  });

  it('restarts from what was synced: term, vote and log survive, unsynced entries do not', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const term = net.get(l).raft.currentTerm;
    const f = [1, 2, 3].find((id) => id !== l)!;
    net.get(f).holdPersist = true;
    net.get(l).raft.propose([data('unsynced-on-f')]);
    net.collect(l);
    net.deliverAll();
    const fLast = net.get(f).raft.lastIndex;
    const restarted = net.crashAndRestart(f, { bootstrap: { voters: [1, 2, 3], learners: [] } });
    expect(restarted.raft.currentTerm).toBe(term);
    expect(restarted.raft.lastIndex).toBe(fLast - 1);
    net.runUntil(() => net.get(f).raft.lastIndex === net.get(l).raft.lastIndex && net.get(f).raft.commitIndex === net.get(l).raft.commitIndex);
  });
});

describe('RaftNode: log replication', () => {
  it('resolves conflicting logs (Raft figure 7) with fast backtracking', () => {
    const ids = [1, 2, 3, 4, 5, 6, 7];
    const cfg = { voters: ids, learners: [] };
    // leader-to-be and the six follower logs of the Raft paper's figure 7
    const logs: Record<number, number[]> = {
      1: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
      2: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      3: [1, 1, 1, 4],
      4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      5: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      6: [1, 1, 1, 4, 4, 4, 4],
      7: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    const net = new TestNet();
    for (const id of ids) net.add(id, {}, { log: presetLog(logs[id]!, cfg), hs: { term: 7, vote: null, commit: 0 } });
    // only node 1 runs its clock: it campaigns; 2, 3, 6, 7 grant (their logs are not more up to date)
    net.runUntil(() => net.get(1).raft.currentRole === 'leader', 2000, 5);
    // wait only on node 1's clock so no follower times out in between
    for (let i = 0; i < 100; i++) { net.tick(1, 5); net.deliverAll(); }
    const leaderTerms = termsOf(net.get(1).log);
    expect(leaderTerms).toEqual([...logs[1]!, 8]);
    for (const id of ids) expect(termsOf(net.get(id).log), `node ${id}`).toEqual(leaderTerms);
    expect(net.get(1).raft.commitIndex).toBe(11);
    // fast backtracking: node 7 diverges from index 4 on; per-term hints need far fewer than 7 probes
    const appendsTo7 = net.sent.filter((m) => m.type === 'Append' && m.to === 7).length;
    expect(appendsTo7).toBeLessThanOrEqual(5);
  });

  it('commits an earlier-term entry only through an entry of its own term (Raft §5.4.2, figure 8)', () => {
    const ids = [1, 2, 3, 4, 5];
    const cfg = { voters: ids, learners: [] };
    const net = new TestNet();
    // S1 led term 2 and wrote index 2 (term 2) only locally; S5 led term 3 and wrote a different index 2
    const logs: Record<number, number[]> = { 1: [1, 2], 2: [1], 3: [1], 4: [1], 5: [1, 3] };
    for (const id of ids) net.add(id, { maxEntriesPerAppend: 1 }, { log: presetLog(logs[id]!, cfg), hs: { term: 3, vote: null, commit: 1 } });
    net.isolate(4);
    net.isolate(5);
    // only S1's clock runs; messages go one at a time. After each: index 2 (term 2) may count as committed only
    // once the term-4 entry after it is on a majority.
    let sawMajorityOnIndex2WithoutCommit = false;
    for (let i = 0; i < 10_000 && net.get(1).raft.commitIndex < 3; i++) {
      if (!net.deliverOne()) { net.tick(1, 5); continue; }
      const onIdx2 = [1, 2, 3].filter((id) => net.get(id).log.term(2) === 2).length;
      const onIdx3 = [1, 2, 3].filter((id) => net.get(id).log.term(3) === 4).length;
      if (onIdx2 >= 3 && net.get(1).raft.commitIndex === 1) sawMajorityOnIndex2WithoutCommit = true;
      if (net.get(1).raft.commitIndex >= 2) expect(onIdx3).toBeGreaterThanOrEqual(3);
    }
    expect(net.get(1).raft.currentTerm).toBe(4);
    expect(sawMajorityOnIndex2WithoutCommit).toBe(true);
    expect(net.get(1).raft.commitIndex).toBe(3);
    // now S5 (last term 3) can never win: a majority holds a term-4 entry
    net.isolate(1);
    net.isolate(5, false);
    net.isolate(4, false);
    net.run(2000, 5, [2, 3, 4, 5]);
    for (const id of [2, 3, 4]) expect(net.get(id).log.term(2)).toBe(2);
    expect(net.leaders().filter((id) => id !== 1)).not.toContain(5);
  });

  it('pipelines Appends and batches entries by count and bytes', () => {
    const net = cluster([1, 2, 3], { maxEntriesPerAppend: 10, maxBytesPerAppend: 1000, maxInflight: 4 });
    net.runUntil(() => net.leaders().length === 1);
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex === 2));
    const l = net.leader();
    const before = net.sent.length;
    net.get(l).raft.propose(Array.from({ length: 100 }, (_, i) => data(`e${i}`.padEnd(200, '.'))));
    net.collect(l);
    const appends = net.sent.slice(before).filter((m): m is Extract<RaftMessage, { type: 'Append' }> => m.type === 'Append');
    // before any answer: up to maxInflight Appends per follower are out, each within the byte budget
    const perFollower = new Map<number, number>();
    for (const a of appends) perFollower.set(a.to, (perFollower.get(a.to) ?? 0) + 1);
    expect([...perFollower.values()]).toEqual([4, 4]);
    for (const a of appends) {
      expect(a.entries.length).toBeGreaterThan(0);
      expect(a.entries.reduce((s, e) => s + e.data.byteLength + 32, 0)).toBeLessThanOrEqual(1000);
    }
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex === net.get(l).raft.lastIndex));
  });
});

describe('RaftNode: snapshots, membership, transfer', () => {
  it('sends a snapshot to a follower that fell behind the compacted log', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const f = [1, 2, 3].find((id) => id !== l)!;
    net.isolate(f);
    const lr = net.get(l).raft;
    for (let i = 0; i < 20; i++) lr.propose([data(`p${i}`)]);
    net.collect(l);
    net.runUntil(() => lr.commitIndex === lr.lastIndex);
    net.run(20);
    lr.compact(lr.status().appliedIndex, enc.encode('state-machine-image'));
    net.collect(l);
    expect(net.get(l).log.snapshotIndex()).toBe(lr.commitIndex);
    net.isolate(f, false);
    net.runUntil(() => net.get(f).raft.commitIndex === lr.commitIndex);
    expect(net.get(f).restored.map((m) => m.index)).toEqual([net.get(l).log.snapshotIndex()]);
    expect(net.get(f).log.snapshotIndex()).toBe(net.get(l).log.snapshotIndex());
    // and replication continues after the snapshot
    const p = lr.propose([data('after')]);
    net.runUntil(() => net.get(f).raft.commitIndex >= p.lastIndex);
  });

  it('adds a learner, lets it catch up, promotes it, and changes one server at a time', () => {
    const net = cluster([1, 2, 3], { promoteMaxLag: 5 });
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const lr = net.get(l).raft;
    for (let i = 0; i < 30; i++) lr.propose([data(`p${i}`)]);
    net.runUntil(() => lr.commitIndex === lr.lastIndex);
    const learner = net.add(4); // joins with an empty log and no config
    net.isolate(4);
    lr.addLearner(4);
    net.collect(l);
    expectLanceError(() => lr.promote(4), 'CONFLICT'); // the learner change is not committed yet... and 4 lags
    net.runUntil(() => lr.commitIndex === lr.lastIndex);
    expect(lr.config.learners).toEqual([4]);
    expectLanceError(() => lr.promote(4), 'CONFLICT'); // too far behind
    // a learner never campaigns, however long it hears nothing
    net.run(1000, 10, [4]);
    expect(learner.raft.currentTerm).toBe(0);
    net.isolate(4, false);
    net.runUntil(() => learner.raft.commitIndex === lr.commitIndex);
    expect(learner.raft.config).toEqual({ voters: [1, 2, 3], learners: [4] });
    lr.promote(4);
    net.collect(l);
    expectLanceError(() => lr.removeServer(2), 'CONFLICT'); // one change at a time
    net.runUntil(() => [1, 2, 3, 4].every((id) => net.get(id).raft.config.voters.length === 4 && net.get(id).raft.commitIndex === lr.lastIndex));
    // the new voter counts: with 2 of 4 down there is no quorum, with 1 down there is
    const others = [1, 2, 3].filter((id) => id !== l);
    net.isolate(others[0]!);
    const p = lr.propose([data('needs-3-of-4')]);
    net.runUntil(() => lr.commitIndex >= p.lastIndex);
    net.isolate(others[0]!, false);
    // remove a voter
    lr.removeServer(others[1]!);
    net.runUntil(() => lr.commitIndex === lr.lastIndex && !lr.config.voters.includes(others[1]!));
    expect(lr.status().progress.map((p) => p.id).sort()).toEqual([others[0]!, 4].sort());
  });

  it('a leader that removes itself steps down once the change commits', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    net.runUntil(() => net.get(l).raft.commitIndex === 2);
    net.get(l).raft.removeServer(l);
    net.runUntil(() => net.get(l).raft.currentRole === 'follower');
    net.runUntil(() => net.leaders().length === 1 && net.leader() !== l);
    expect(net.get(net.leader()).raft.config.voters).not.toContain(l);
    // the removed node stays quiet
    const t = net.get(net.leader()).raft.currentTerm;
    net.run(2000);
    expect(net.get(net.leader()).raft.currentTerm).toBe(t);
  });

  it('transfers leadership to a caught-up follower without waiting for an election timeout', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const target = [1, 2, 3].find((id) => id !== l)!;
    net.runUntil(() => net.get(target).raft.commitIndex === 2);
    const term = net.get(l).raft.currentTerm;
    net.get(l).raft.transferLeadership(target);
    net.collect(l);
    expectLanceError(() => net.get(l).raft.propose([data('during-transfer')]), 'NOT_LEADER');
    // messages only, no clock: the transfer must not depend on a timeout
    net.deliverAll();
    expect(net.leaders()).toEqual([target]);
    expect(net.get(target).raft.currentTerm).toBe(term + 1);
    net.runUntil(() => net.get(l).raft.currentLeader === target);
  });

  it('refills a follower whose data dir was wiped (restarted with the same id and an empty log)', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    const lr = net.get(l).raft;
    for (let i = 0; i < 20; i++) lr.propose([data(`p${i}`)]);
    net.runUntil(() => [1, 2, 3].every((id) => net.get(id).raft.commitIndex === lr.lastIndex));
    const f = [1, 2, 3].find((id) => id !== l)!;
    net.members.delete(f);
    const wiped = net.add(f, { bootstrap: { voters: [1, 2, 3], learners: [] } }, { log: new MemoryRaftLog(), hs: { term: 0, vote: null, commit: 0 } });
    expect(wiped.raft.lastIndex).toBe(1);
    net.runUntil(() => wiped.raft.lastIndex === lr.lastIndex && wiped.raft.commitIndex === lr.commitIndex);
    expect(wiped.applied.filter((e) => e.type === EntryType.DATA)).toHaveLength(20);
  });

  it('fencing: a fenced node neither campaigns nor votes; a fenced leader steps down', () => {
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const l = net.leader();
    net.get(l).raft.setFenced(true);
    net.collect(l);
    expect(net.get(l).raft.currentRole).toBe('follower');
    net.runUntil(() => net.leaders().length === 1 && net.leader() !== l);
    // fence a second node: the only unfenced node cannot get a majority of votes, so no leader after a crash of it
    const l2 = net.leader();
    const third = [1, 2, 3].find((id) => id !== l && id !== l2)!;
    net.get(third).raft.setFenced(true);
    net.get(l2).up = false;
    net.run(2000);
    expect(net.leaders().filter((id) => id !== l2)).toEqual([]);
    expect(net.get(third).raft.status().fenced).toBe(true);
    // unfence: the cluster recovers
    net.get(third).raft.setFenced(false);
    net.get(l).raft.setFenced(false);
    net.runUntil(() => net.leaders().filter((id) => id !== l2).length === 1);
  });

  it('works with a log that serves reads lazily (entries() returns nothing until loaded)', () => {
    class LazyLog extends MemoryRaftLog {
      cold = false;
      override entries(lo: number, hi: number, maxBytes: number): RaftEntry[] {
        return this.cold ? [] : super.entries(lo, hi, maxBytes);
      }
    }
    const net = new TestNet();
    const cfg = { voters: [1, 2, 3], learners: [] };
    const logs = new Map<NodeId, LazyLog>();
    for (const id of [1, 2, 3]) {
      const log = new LazyLog();
      logs.set(id, log);
      net.add(id, { bootstrap: cfg }, { log });
    }
    net.runUntil(() => net.leaders().length === 1 && [1, 2, 3].every((id) => net.get(id).raft.commitIndex === 2));
    const l = net.leader();
    const f = [1, 2, 3].find((id) => id !== l)!;
    logs.get(l)!.cold = true;
    logs.get(f)!.cold = true;
    const p = net.get(l).raft.propose([data('lazy')]);
    net.run(200);
    // the other follower cannot receive it either: the leader could not read it
    expect(net.get(l).raft.commitIndex).toBeLessThan(p.lastIndex);
    logs.get(l)!.cold = false;
    net.get(l).raft.logReadable();
    net.collect(l);
    net.runUntil(() => net.get(l).raft.commitIndex === p.lastIndex && net.get(f).raft.commitIndex === p.lastIndex);
    // the cold follower knows the commit index but has not applied yet; it does once its log is readable
    expect(net.get(f).applied.some((e) => e.index === p.lastIndex)).toBe(false);
    logs.get(f)!.cold = false;
    net.run(100);
    expect(net.get(f).applied.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('validates options and rejects admin commands on followers', () => {
    expectLanceError(() => new RaftNode({ id: 1, random: lcg(1), heartbeatMs: 200 }, new MemoryRaftLog()), 'INVALID_CONFIG');
    const net = cluster([1, 2, 3]);
    net.runUntil(() => net.leaders().length === 1);
    const f = [1, 2, 3].find((id) => id !== net.leader())!;
    expectLanceError(() => net.get(f).raft.addLearner(9), 'NOT_LEADER');
    expectLanceError(() => net.get(f).raft.transferLeadership(1), 'NOT_LEADER');
    expectLanceError(() => net.get(net.leader()).raft.propose([{ type: EntryType.CONFIG, data: new Uint8Array(0) }]), 'INVALID_ARGUMENT');
  });
});

describe('MemoryRaftLog durability model', () => {
  it('loses unsynced writes on a crash and keeps synced ones', () => {
    const log = new MemoryRaftLog();
    const e = (index: number, term: number): RaftEntry => ({ index, term, type: EntryType.DATA, data: new Uint8Array([index]) });
    log.append([e(1, 1), e(2, 1)]);
    log.mark(1);
    log.sync(1);
    log.append([e(3, 1)]);
    log.mark(2);
    log.truncateAfter(1);
    log.append([e(2, 2)]);
    log.mark(3);
    expect(log.crashImage(0).lastIndex()).toBe(2);
    expect(log.crashImage(0).term(2)).toBe(1);
    expect(log.crashImage(1).lastIndex()).toBe(3); // the append of 3 reached the disk, the truncate did not
    expect(log.crashImage(1, 0).lastIndex()).toBe(2); // torn: none of its entries
    expect(log.seqsCoveredBy(1)).toEqual([2]);
    log.sync(3);
    const img = log.crashImage(0);
    expect([img.lastIndex(), img.term(2)]).toEqual([2, 2]);
  });
});
