/**
 * A small synchronous in-process network of RaftNodes for unit tests (the simulator in test/sim/ is the
 * randomized version). Messages are delivered FIFO, links can be cut, persistence completes at once unless a node
 * is set to hold its requests.
 */
import { MemoryRaftLog } from './memory-log.ts';
import { RaftNode, type RaftOptions } from './node.ts';
import type { HardState, NodeId, PersistRequest, RaftEntry, RaftMessage, SnapshotMeta, VoteHoldRelease } from './types.ts';

export interface TestMember {
  raft: RaftNode;
  log: MemoryRaftLog;
  hs: HardState;
  applied: RaftEntry[];
  restored: SnapshotMeta[];
  /** persist requests held back (holdPersist) */
  held: PersistRequest[];
  holdPersist: boolean;
  up: boolean;
  /** vote hold releases reported by ready() */
  releases: VoteHoldRelease[];
}

/** deterministic uniform [0,1) */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export class TestNet {
  readonly members = new Map<NodeId, TestMember>();
  readonly queue: RaftMessage[] = [];
  readonly sent: RaftMessage[] = [];
  private readonly cut = new Set<string>();
  private seed = 1;

  add(id: NodeId, opts: Partial<RaftOptions> = {}, init?: { log?: MemoryRaftLog; hs?: HardState }): TestMember {
    const log = init?.log ?? new MemoryRaftLog();
    const hs = init?.hs ?? { term: 0, vote: null, commit: 0 };
    const raft = new RaftNode({ id, random: lcg(id * 7919 + this.seed++), ...opts }, log, hs);
    const m: TestMember = { raft, log, hs, applied: [], restored: [], held: [], holdPersist: false, up: true, releases: [] };
    this.members.set(id, m);
    this.collect(id);
    return m;
  }

  get(id: NodeId): TestMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** cut (or heal) both directions between a and b */
  setLink(a: NodeId, b: NodeId, up: boolean): void {
    for (const k of [`${a}>${b}`, `${b}>${a}`]) {
      if (up) this.cut.delete(k);
      else this.cut.add(k);
    }
  }

  isolate(id: NodeId, isolated = true): void {
    for (const other of this.members.keys()) if (other !== id) this.setLink(id, other, !isolated);
  }

  /** take the node's outputs: queue messages, execute persistence, record applied entries */
  collect(id: NodeId): void {
    const m = this.get(id);
    const r = m.raft.ready();
    if (r.restore) m.restored.push(r.restore.meta);
    if (r.holdReleased) m.releases.push(r.holdReleased);
    m.applied.push(...r.committed);
    for (const msg of r.messages) {
      this.sent.push(msg);
      this.queue.push(msg);
    }
    if (r.persist) {
      m.log.mark(r.persist.seq);
      if (m.holdPersist) m.held.push(r.persist);
      else this.complete(id, r.persist);
    }
  }

  /** finish a persist request (in order) */
  complete(id: NodeId, p: PersistRequest): void {
    const m = this.get(id);
    m.log.sync(p.seq);
    if (p.hardState) m.hs = { ...p.hardState };
    m.raft.persisted(p.seq);
    this.collect(id);
  }

  releaseHeld(id: NodeId): void {
    const m = this.get(id);
    const held = m.held.splice(0);
    for (const p of held) this.complete(id, p);
  }

  deliverOne(): RaftMessage | undefined {
    const msg = this.queue.shift();
    if (!msg) return undefined;
    const to = this.members.get(msg.to);
    if (!to || !to.up || this.cut.has(`${msg.from}>${msg.to}`)) return msg;
    to.raft.receive(msg);
    this.collect(msg.to);
    return msg;
  }

  deliverAll(limit = 100_000): void {
    for (let i = 0; i < limit && this.queue.length > 0; i++) this.deliverOne();
  }

  tick(id: NodeId, ms: number): void {
    const m = this.get(id);
    if (!m.up) return;
    m.raft.tick(ms);
    this.collect(id);
  }

  /** advance every live node by `ms` in steps of `step`, delivering messages after each step */
  run(ms: number, step = 5, only?: NodeId[]): void {
    for (let t = 0; t < ms; t += step) {
      for (const id of only ?? this.members.keys()) this.tick(id, step);
      this.deliverAll();
    }
  }

  /** run until pred holds; returns the simulated ms it took; throws after maxMs */
  runUntil(pred: () => boolean, maxMs = 5000, step = 5): number {
    for (let t = 0; t <= maxMs; t += step) {
      if (pred()) return t;
      this.run(step, step);
    }
    throw new Error(`condition not reached within ${maxMs} simulated ms`);
  }

  leaders(): NodeId[] {
    return [...this.members.entries()].filter(([, m]) => m.up && m.raft.currentRole === 'leader').map(([id]) => id);
  }

  leader(): NodeId {
    const l = this.leaders();
    if (l.length !== 1) throw new Error(`expected one leader, found [${l.join(',')}]`);
    return l[0]!;
  }

  /**
   * The node's disk is wiped: it restarts with an empty log and no hard state (pass `voteHold: true` in opts for a
   * driver that knows its storage is fresh). Messages queued to the old process are dropped (its connections died).
   */
  wipeAndRestart(id: NodeId, opts: Partial<RaftOptions> = {}): TestMember {
    this.get(id);
    this.members.delete(id);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.to === id) this.queue.splice(i, 1);
    return this.add(id, opts, { log: new MemoryRaftLog(), hs: { term: 0, vote: null, commit: 0 } });
  }

  /** crash: volatile state is gone, only synced writes survive; restart with the same options */
  crashAndRestart(id: NodeId, opts: Partial<RaftOptions> = {}): TestMember {
    const m = this.get(id);
    const log = m.log.crashImage(0);
    this.members.delete(id);
    return this.add(id, opts, { log, hs: m.hs });
  }
}
