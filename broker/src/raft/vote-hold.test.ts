/**
 * Vote hold (README "Vote hold"): a member whose storage was wiped and that restarts under its old id must neither
 * lose an acknowledged entry (a) nor vote twice in a term (b). Each scenario is built step by step twice: without
 * the hold the bad outcome happens (so the test can see it), with the hold it cannot.
 */
import { describe, expect, it } from 'vitest';
import { TestNet } from './testkit.ts';
import type { RaftOptions } from './node.ts';
import { EntryType, VOTE_HOLD, type NodeId } from './types.ts';

const enc = new TextEncoder();
const IDS = [1, 2, 3];
const BOOT: Partial<RaftOptions> = { bootstrap: { voters: IDS, learners: [] } };

function cluster(opts: Partial<RaftOptions> = {}): TestNet {
  const net = new TestNet();
  for (const id of IDS) net.add(id, { ...BOOT, ...opts });
  return net;
}

/** node 1 times out first (only its clock runs), so it is the first leader; everyone commits its no-op */
function electOne(net: TestNet): void {
  net.runUntil(() => net.leaders().length === 1, 2000, 5);
  if (net.leader() !== 1) {
    net.get(net.leader()).raft.transferLeadership(1);
    net.collect(net.leader());
    net.deliverAll();
  }
  net.runUntil(() => net.leaders().length === 1 && net.leader() === 1 && IDS.every((id) => net.get(id).raft.commitIndex === net.get(1).raft.lastIndex));
}

function entryAt(net: TestNet, id: NodeId, index: number): string | undefined {
  const e = net.get(id).log.entry(index);
  return e && e.type === EntryType.DATA ? new TextDecoder().decode(e.data) : undefined;
}

/**
 * (a) lost acknowledgement: e committed by {1, 3} (2 cut off); 3 wiped; 1 down. Returns e's index.
 */
function scenarioA(hold: boolean): { net: TestNet; eIndex: number } {
  const net = cluster();
  electOne(net);
  net.setLink(1, 2, false);
  const { lastIndex: eIndex } = net.get(1).raft.propose([{ type: EntryType.DATA, data: enc.encode('e') }]);
  net.collect(1);
  net.deliverAll();
  expect(net.get(1).raft.commitIndex).toBe(eIndex); // acknowledged to the client: committed by {1, 3}
  expect(net.get(2).raft.lastIndex).toBeLessThan(eIndex);
  net.get(1).up = false;
  net.deliverAll();
  net.wipeAndRestart(3, { ...BOOT, ...(hold ? { voteHold: true } : {}) });
  return { net, eIndex };
}

describe('vote hold: (a) an acknowledged entry is not lost when a voter that helped commit it is wiped', () => {
  it('WITHOUT hold: node 2 (lacking e) is elected with the wiped node\'s vote and leads without e', () => {
    const { net, eIndex } = scenarioA(false);
    net.runUntil(() => net.leaders().length === 1, 5000);
    expect(net.leader()).toBe(2);
    expect(entryAt(net, 2, eIndex)).not.toBe('e'); // the committed, acknowledged entry is gone from the leader
  });

  it('WITH hold: no leader without node 1; once it is back, the leader has e and node 3 is released by rule 1 holding e', () => {
    const { net, eIndex } = scenarioA(true);
    expect(net.get(3).raft.status().voteHold).toBe(true);
    net.run(3000);
    expect(net.leaders()).toEqual([]);
    expect(net.get(3).raft.isVoteHeld).toBe(true);
    // the hold is persisted: a restart before the release is held again
    expect(net.get(3).hs.vote).toBe(VOTE_HOLD);
    net.crashAndRestart(1, BOOT);
    net.setLink(1, 2, true);
    net.runUntil(() => net.leaders().length === 1 && !net.get(3).raft.isVoteHeld, 5000);
    const l = net.leader();
    expect(entryAt(net, l, eIndex)).toBe('e');
    net.runUntil(() => net.get(3).raft.commitIndex >= eIndex);
    expect(entryAt(net, 3, eIndex)).toBe('e');
    const rel = net.get(3).releases;
    expect(rel).toHaveLength(1);
    expect(rel[0]!.reason).toBe('caught-up');
    expect(rel[0]!.leader).toBe(l);
    expect(rel[0]!.vote).toBe(l);
    expect(Object.keys(rel[0]!.heard).sort()).toEqual(['1', '2']);
    // persisted through the normal request: term and the followed leader as vote
    expect(net.get(3).hs.vote).toBe(l);
    expect(net.get(3).hs.term).toBe(net.get(l).raft.currentTerm);
  });
});

/**
 * (b) lost vote: node 1 leads term 1; node 3 becomes leader of term 2 with node 1's vote (node 2 cut off); node 1 is
 * wiped; node 2 (term 1) campaigns for term 2 and asks node 1.
 */
function scenarioB(hold: boolean): TestNet {
  const net = cluster();
  electOne(net);
  expect(net.get(1).raft.currentTerm).toBe(1);
  net.setLink(1, 2, false);
  net.setLink(2, 3, false);
  net.get(1).raft.transferLeadership(3);
  net.collect(1);
  net.deliverAll();
  expect(net.leaders()).toEqual([3]);
  expect(net.get(3).raft.currentTerm).toBe(2);
  expect(net.get(1).hs).toMatchObject({ term: 2, vote: 3 });
  // node 1 loses its disk; node 3 (leader of term 2) is cut off from both others
  net.setLink(1, 3, false);
  net.setLink(1, 2, true);
  net.wipeAndRestart(1, { ...BOOT, ...(hold ? { voteHold: true } : {}) });
  return net;
}

describe('vote hold: (b) a wiped voter does not vote twice in a term', () => {
  it('WITHOUT hold: node 2 wins term 2 with the wiped node\'s second vote: two leaders in term 2', () => {
    const net = scenarioB(false);
    net.runUntil(() => net.get(2).raft.currentRole === 'leader', 5000, 5);
    expect(net.get(2).raft.currentTerm).toBe(2);
    expect(net.get(3).raft.currentRole).toBe('leader');
    expect(net.get(3).raft.currentTerm).toBe(2);
  });

  it('WITH hold: node 2 is never elected while node 3 is unheard; after healing node 1 follows node 3 and is released', () => {
    const net = scenarioB(true);
    for (let t = 0; t < 4000; t += 10) {
      net.run(10, 5, [1, 2]);
      expect(net.get(2).raft.currentRole).not.toBe('leader');
    }
    expect(net.get(1).raft.isVoteHeld).toBe(true);
    expect(net.get(1).releases).toEqual([]);
    net.setLink(1, 3, true);
    net.setLink(2, 3, true);
    net.runUntil(() => !net.get(1).raft.isVoteHeld, 5000);
    const rel = net.get(1).releases[0]!;
    expect(rel.reason).toBe('caught-up');
    // it may have voted for 3 in term 2: its vote now is the leader it follows, in that leader's term (or later)
    expect(rel.term).toBeGreaterThanOrEqual(2);
    const terms = new Map<number, NodeId>();
    for (const m of net.sent) {
      // every Append comes from the leader of its term: two senders of Appends in one term = two leaders
      if (m.type !== 'Append') continue;
      const other = terms.get(m.term);
      expect(other === undefined || other === m.from, `two leaders in term ${m.term}: ${other} and ${m.from}`).toBe(true);
      terms.set(m.term, m.from);
    }
  });
});

describe('vote hold: release rules and refusals', () => {
  it('rule 2 (first start): founders that all start held release once a majority is heard at term 0, then elect at once', () => {
    const net = cluster({ voteHold: true });
    for (const id of IDS) expect(net.get(id).raft.isVoteHeld).toBe(true);
    const ms = net.runUntil(() => net.leaders().length === 1, 5000);
    // simulated time, deterministic: the hold costs one probe round trip, not an election timeout
    expect(ms).toBeLessThan(700);
    for (const id of IDS) {
      expect(net.get(id).releases).toHaveLength(1);
      expect(net.get(id).releases[0]!.reason).toBe('bootstrap');
      expect(net.get(id).releases[0]!.term).toBe(0);
    }
    net.runUntil(() => IDS.every((id) => net.get(id).raft.commitIndex === 2));
  });

  it('rule 2 does not fire when a heard voter has left term 0 (a wiped founder of an established group)', () => {
    const net = cluster();
    electOne(net);
    net.isolate(1);
    net.wipeAndRestart(3, { ...BOOT, voteHold: true });
    net.run(1000, 5, [2, 3]);
    expect(net.get(3).raft.isVoteHeld).toBe(true);
  });

  it('a held node that restarts before its release is still held (VOTE_HOLD persisted), with or without the option', () => {
    const net = cluster();
    electOne(net);
    net.isolate(1); // no leader to catch up with: stays held
    const c = net.wipeAndRestart(3, { ...BOOT, voteHold: true });
    net.run(500, 5, [2, 3]);
    expect(c.raft.isVoteHeld).toBe(true);
    expect(c.hs.vote).toBe(VOTE_HOLD);
    const again = net.crashAndRestart(3, BOOT); // no voteHold option: the persisted hard state carries it
    expect(again.raft.isVoteHeld).toBe(true);
    const from = net.sent.length;
    // node 2 asks for a vote (its pre-vote and vote): refused while held
    net.run(2000, 5, [2, 3]);
    expect(net.get(2).raft.currentRole).not.toBe('leader');
    expect(net.sent.slice(from).some((m) => m.from === 3 && (m.type === 'VoteResp' || m.type === 'PreVoteResp') && m.granted)).toBe(false);
  });

  it('refuses TimeoutNow (leadership transfer) while held', () => {
    const net = cluster();
    electOne(net);
    const c = net.wipeAndRestart(3, { ...BOOT, voteHold: true });
    const term = c.raft.currentTerm;
    c.raft.receive({ type: 'TimeoutNow', from: 1, to: 3, term: net.get(1).raft.currentTerm });
    net.collect(3);
    expect(c.raft.currentRole).toBe('follower');
    expect(net.queue.some((m) => m.from === 3 && m.type === 'Vote')).toBe(false);
    expect(c.raft.currentTerm).toBeGreaterThanOrEqual(term);
    // a held node never campaigns by itself either
    net.isolate(3);
    net.run(3000, 5, [3]);
    expect(c.raft.currentRole).toBe('follower');
  });

  it('a held node that has not heard every voter stores Appends without acknowledging them: the leader counts nothing for it', () => {
    const net = cluster();
    electOne(net);
    net.setLink(2, 3, false); // node 3 will never hear node 2
    const c = net.wipeAndRestart(3, { ...BOOT, voteHold: true });
    net.get(2).up = false; // and node 2 is down: only {1, 3} could commit
    const r = net.get(1).raft.propose([{ type: EntryType.DATA, data: enc.encode('x') }]);
    net.collect(1);
    net.run(1000, 5, [1, 3]);
    expect(c.raft.lastIndex).toBeGreaterThanOrEqual(r.lastIndex); // it pulled the log...
    expect(net.get(1).raft.commitIndex).toBeLessThan(r.lastIndex); // ...but did not help commit it
    expect(net.get(1).raft.status().progress.find((p) => p.id === 3)!.match).toBe(0);
    // node 2 is back and heard: node 3 acknowledges, x commits, node 3 is released
    net.get(2).up = true;
    net.setLink(2, 3, true);
    net.runUntil(() => net.get(1).raft.commitIndex >= r.lastIndex && !c.raft.isVoteHeld, 5000);
    expect(c.releases[0]!.reason).toBe('caught-up');
  });
});

describe('leader side: a follower that lost what it acknowledged', () => {
  it('a rejection at or below the recorded match lowers the match even in replicate state', () => {
    const net = cluster();
    electOne(net);
    const l = net.get(1).raft;
    for (let i = 0; i < 5; i++) l.propose([{ type: EntryType.DATA, data: enc.encode(`p${i}`) }]);
    net.collect(1);
    net.runUntil(() => IDS.every((id) => net.get(id).raft.commitIndex === l.lastIndex));
    const before = l.status().progress.find((p) => p.id === 3)!;
    expect(before.state).toBe('replicate');
    expect(before.match).toBe(l.lastIndex);
    net.wipeAndRestart(3, BOOT); // no hold: the leader-side logic alone
    l.propose([{ type: EntryType.DATA, data: enc.encode('next') }]);
    net.collect(1);
    // deliver the Append and node 3's rejection (log too short), nothing else: no clock, no heartbeat
    while (net.queue.length > 0 && !(net.queue[0]!.from === 3 && net.queue[0]!.type === 'AppendResp')) net.deliverOne();
    const rej = net.deliverOne();
    expect(rej).toMatchObject({ type: 'AppendResp', from: 3, success: false });
    expect(l.status().progress.find((p) => p.id === 3)!.match).toBeLessThanOrEqual(1);
  });
});
