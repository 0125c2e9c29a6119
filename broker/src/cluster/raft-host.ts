/**
 * Multi-Raft host: many RaftNode instances (the "__meta" group and one per local partition replica) on ONE timer.
 * After every input into a node it drains `ready()`: messages go to the transport (which coalesces everything for a
 * peer produced in one event-loop turn into one write), persistence requests go to the group's ordered queue,
 * committed entries and state events go to the group's handler.
 *
 * Persistence per group: requests run strictly in seq order. All requests queued while the previous one ran are
 * merged into one (one storage flush covers them all: group commit), then `persisted(lastSeq)` completes them
 * together. Different groups persist concurrently (their fsyncs overlap in the kernel).
 */
import type { Logger } from '../common/log.ts';
import { LanceError } from '../common/errors.ts';
import { RaftNode, type RaftOptions } from '../raft/node.ts';
import type { ClusterConfig, NodeId, PersistRequest, RaftEntry, RaftMessage, RaftStateEvent, RaftStatus, SnapshotMeta } from '../raft/types.ts';
import type { PartitionRaftLog } from './partition-raft-log.ts';
import type { VoteHoldPolicy } from './fresh-node.ts';

export interface GroupHandler {
  /** committed entries in index order; commitIndex = the group's commit index after them */
  onCommitted(entries: RaftEntry[], commitIndex: number): void;
  onState(ev: RaftStateEvent): void;
  /** the group's own log writes up to `durableIndex` are fsynced (acks=1) */
  onDurable?(durableIndex: number): void;
  /** a leader's snapshot was installed (partition groups: segment transfer): reset state from it before `onCommitted` */
  onRestore?(snapshot: { meta: SnapshotMeta; data: Uint8Array }): void;
}

interface Group {
  id: string;
  node: RaftNode;
  log: PartitionRaftLog;
  handler: GroupHandler;
  queue: PersistRequest[];
  persisting: boolean;
  closed: boolean;
  failed: boolean;
  /** set when this node became leader, cleared once an entry of that term committed (logged once per term) */
  leaderSince: { term: number; at: number } | null;
}

export interface RaftHostOptions {
  nodeId: NodeId;
  logger: Logger;
  send: (group: string, m: RaftMessage) => void;
  tickMs?: number;
  raft?: Omit<RaftOptions, 'id' | 'random' | 'bootstrap'>;
}

/**
 * Merges queued persistence requests into one: the last seq, the newest hard state, sync if any needed it, the
 * newest snapshot (the log executes snapshot installs in its own storage queue, in order; persist() waits for it).
 */
export function mergePersist(reqs: readonly PersistRequest[]): PersistRequest {
  let hardState: PersistRequest['hardState'] = null;
  let sync = false;
  let snapshot: PersistRequest['snapshot'] = null;
  for (const r of reqs) {
    if (r.hardState) hardState = r.hardState;
    if (r.sync) sync = true;
    if (r.snapshot) snapshot = r.snapshot;
  }
  return { seq: reqs[reqs.length - 1]!.seq, hardState, sync, snapshot };
}

export class RaftHost {
  private readonly opts: RaftHostOptions;
  private readonly groups = new Map<string, Group>();
  private timer: NodeJS.Timeout | null = null;
  private last = performance.now();
  private fenced = false;
  private voteHold: VoteHoldPolicy | null = null;

  constructor(opts: RaftHostOptions) {
    this.opts = opts;
  }

  start(): void {
    this.last = performance.now();
    this.timer = setInterval(() => this.tickAll(), this.opts.tickMs ?? 10);
  }

  private tickAll(): void {
    const now = performance.now();
    const ms = now - this.last;
    this.last = now;
    for (const g of this.groups.values()) {
      if (g.closed || g.failed) continue;
      g.node.tick(ms);
      this.drain(g);
    }
  }

  has(id: string): boolean {
    return this.groups.has(id);
  }

  ids(): string[] {
    return [...this.groups.keys()];
  }

  /** fresh storage (fresh-node.ts): which groups start in vote hold, and who hears about releases */
  setVoteHold(policy: VoteHoldPolicy | null): void {
    this.voteHold = policy;
  }

  /** groups in vote hold right now (the lance_raft_vote_hold gauge) */
  heldGroups(): string[] {
    return [...this.groups.values()].filter((g) => g.node.isVoteHeld).map((g) => g.id);
  }

  /** the group follows (or is) a leader and has committed an entry of that leader's term */
  caughtUpWithLeader(id: string): boolean {
    const g = this.groups.get(id);
    if (!g || g.node.isVoteHeld || g.node.currentLeader === null) return false;
    const c = g.node.commitIndex;
    return c > 0 && g.log.term(c) === g.node.currentTerm;
  }

  addGroup(id: string, log: PartitionRaftLog, bootstrap: ClusterConfig | undefined, handler: GroupHandler): RaftNode {
    if (this.groups.has(id)) throw new LanceError('CONFLICT', `raft group ${id} is already running`);
    const voteHold = this.voteHold?.shouldHold(id, log.hardState) ?? false;
    const node = new RaftNode({ ...this.opts.raft, id: this.opts.nodeId, random: Math.random, ...(bootstrap ? { bootstrap } : {}), voteHold }, log, { ...log.hardState });
    if (node.isVoteHeld) {
      this.voteHold?.onHeld(id);
      this.opts.logger.warn({ group: id, term: node.currentTerm }, 'raft: vote hold (fresh storage): no vote and no campaign until caught up with a leader');
    }
    if (this.fenced) node.setFenced(true);
    const g: Group = { id, node, log, handler, queue: [], persisting: false, closed: false, failed: false, leaderSince: null };
    log.onReadable = () => this.step(id, (n) => n.logReadable());
    this.groups.set(id, g);
    this.drain(g);
    return node;
  }

  async removeGroup(id: string): Promise<void> {
    const g = this.groups.get(id);
    if (!g) return;
    g.closed = true;
    this.groups.delete(id);
    this.voteHold?.onRemoved(id);
    await g.log.close();
  }

  /** a message from a peer; messages for groups not running here (yet) are dropped: the sender retries */
  receive(group: string, m: RaftMessage): void {
    const g = this.groups.get(group);
    if (!g || g.closed || g.failed) return;
    g.node.receive(m);
    this.drain(g);
  }

  /** runs `fn` on the group's node (propose, transfer, membership...) and drains its output */
  step<T>(id: string, fn: (node: RaftNode) => T): T {
    const g = this.groups.get(id);
    if (!g || g.closed) throw new LanceError('NOT_FOUND', `raft group ${id} is not running on this node`, { group: id });
    try {
      return fn(g.node);
    } finally {
      this.drain(g);
    }
  }

  node(id: string): RaftNode | undefined {
    return this.groups.get(id)?.node;
  }

  /**
   * The transport lost its connection to `peer`: every group it leads here campaigns early (see
   * RaftNode.peerDisconnected; pre-vote keeps it harmless when the peer is in fact alive).
   */
  peerDisconnected(peer: NodeId): void {
    for (const g of this.groups.values()) {
      if (g.closed || g.failed) continue;
      g.node.peerDisconnected(peer);
      this.drain(g);
    }
  }

  setFenced(fenced: boolean): void {
    this.fenced = fenced;
    for (const g of this.groups.values()) {
      g.node.setFenced(fenced);
      this.drain(g);
    }
  }

  isFenced(): boolean {
    return this.fenced;
  }

  status(): Array<{ group: string; status: RaftStatus }> {
    return [...this.groups.values()].map((g) => ({ group: g.id, status: g.node.status() }));
  }

  private drain(g: Group): void {
    if (g.closed) return;
    const r = g.node.ready();
    for (const m of r.messages) this.opts.send(g.id, m);
    if (r.persist) {
      g.queue.push(r.persist);
      if (!g.persisting) void this.persistLoop(g);
    }
    if (r.holdReleased) {
      const h = r.holdReleased;
      this.opts.logger.info({ group: g.id, reason: h.reason, term: h.term, vote: h.vote, leader: h.leader, heard: h.heard, heldMs: Math.round(h.heldMs), commitIndex: h.commitIndex }, 'raft: vote hold released');
      this.voteHold?.onReleased(g.id, h);
    }
    if (r.restore) {
      if (g.handler.onRestore) g.handler.onRestore(r.restore);
      else this.opts.logger.error({ group: g.id }, 'raft: snapshot restore requested but this group has no restore handler');
    }
    for (const ev of r.events) {
      // elections are rare and operator-relevant: log each role change (the failover profile reads these lines)
      this.opts.logger.info({ group: g.id, role: ev.role, term: ev.term, leader: ev.leader }, 'raft: role change');
      if (ev.role === 'leader') g.leaderSince = { term: ev.term, at: performance.now() };
      g.handler.onState(ev);
    }
    if (r.committed.length > 0) {
      const ls = g.leaderSince;
      if (ls !== null && r.committed.some((e) => e.term === ls.term)) {
        // the new leader's no-op (or a later entry of its term) committed: it can now acknowledge writes
        this.opts.logger.info({ group: g.id, term: ls.term, msSinceElected: Math.round(performance.now() - ls.at) }, 'raft: leader committed its first entry');
        g.leaderSince = null;
      }
      g.handler.onCommitted(r.committed, r.commitIndex);
    }
  }

  private async persistLoop(g: Group): Promise<void> {
    g.persisting = true;
    try {
      while (g.queue.length > 0 && !g.closed) {
        const batch = g.queue.splice(0);
        const req = mergePersist(batch);
        try {
          await g.log.persist(req);
        } catch (e) {
          // A storage failure: this replica can no longer promise durability; stop the group (it stops acking).
          g.failed = true;
          this.opts.logger.error({ err: e, group: g.id }, 'raft: persistence failed; group stopped on this node');
          return;
        }
        if (g.closed) return;
        g.node.persisted(req.seq);
        g.handler.onDurable?.(g.log.pl.durableIndex);
        this.drain(g);
      }
    } finally {
      g.persisting = false;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const all = [...this.groups.values()];
    this.groups.clear();
    for (const g of all) g.closed = true;
    await Promise.all(all.map((g) => g.log.close().catch(() => undefined)));
  }
}
