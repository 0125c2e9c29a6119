/**
 * Deterministic Raft cluster simulator. One seed fixes everything: fault schedule, message delays, election
 * timeouts, crash images. Several independent Raft groups (group 0 = "metadata", the rest = partitions) share the
 * nodes and the network, so a crash or a partition hits all of them at once.
 *
 * Invariants are checked as events happen (see Checker): at most one leader per term, log matching (via a hash
 * chain over every log), leader completeness, state-machine safety, per-node commit monotonicity, acknowledged
 * entries never lost and acknowledged in log order; after the faults heal: liveness within a bound.
 *
 * Connection loss (the broker's transport reports it as RaftNode.peerDisconnected): a crash usually closes the
 * victim's connections (its kernel sends FIN/RST), so the peers on its side of any partition are told after a
 * network delay — but 30% of crashes are silent (power loss of a machine). 'conn-reset' faults break a connection
 * between two live nodes (both are told; nothing else happens), so the early-election path runs against live
 * leaders too. The final failover is measured both ways: `failoverMs` (silent: election timeout) and
 * `failoverNotifiedMs` (peers told of the crash).
 */
import { isLanceError } from '../../broker/src/common/errors.ts';
import { MemoryRaftLog } from '../../broker/src/raft/memory-log.ts';
import { RaftNode } from '../../broker/src/raft/node.ts';
import { EntryType, type HardState, type RaftEntry, type RaftMessage, type Role } from '../../broker/src/raft/types.ts';
import { Rng } from './rng.ts';

export interface SimOptions {
  seed: number;
  nodes: number;
  groups: number;
  /** length of the fault phase (simulated ms) */
  faultMs: number;
  /** after healing, everything must settle within this (simulated ms) */
  livenessMs: number;
  crashes: boolean;
  /** 'wipe' faults: a node loses ALL persistent state of every group and restarts fresh under its id */
  wipes: boolean;
  /**
   * Vote hold (broker/src/raft/README.md): a node whose storage is fresh (first start, or after a wipe) starts its
   * groups held. false = the negative control: wipes without the hold, which the checks must catch.
   */
  voteHold: boolean;
  partitions: boolean;
  membership: boolean;
  /** crash a leader on a healthy cluster at the end and time the failover */
  measureFailover: boolean;
  traceSize: number;
  /**
   * Deliberately broken driver, to prove the checks catch what they claim: 'lying-fsync' reports persistence
   * done without making anything durable (a crash then loses acknowledged state).
   */
  driverBug?: 'lying-fsync';
}

export const defaultSimOptions: Omit<SimOptions, 'seed'> = {
  nodes: 3,
  groups: 3,
  faultMs: 3000,
  livenessMs: 10_000,
  crashes: true,
  wipes: true,
  voteHold: true,
  partitions: true,
  membership: true,
  measureFailover: true,
  traceSize: 40,
};

export interface SimStats {
  simulatedMs: number;
  messages: number;
  dropped: number;
  duplicated: number;
  crashes: number;
  partitions: number;
  leadersElected: number;
  proposals: number;
  acked: number;
  duplicateAcks: number;
  /** ids committed more than once because the client retried after losing its answer */
  duplicateEntries: number;
  retries: number;
  snapshotsInstalled: number;
  configChanges: number;
  transfers: number;
  maxCommit: number;
  /** peerDisconnected reports delivered (crash notifications and connection resets) */
  peerDowns: number;
  wipes: number;
  /** vote holds released, by rule */
  holdReleasedCaughtUp: number;
  holdReleasedBootstrap: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error: string | null;
  replay: string;
  traceTail: string[];
  stats: SimStats;
  /** silent leader crash (no connection-loss report) → first commit by the new leader, per measured group (simulated ms) */
  failoverMs: number[];
  /** the same when the survivors are told the leader's connection closed (a killed process) */
  failoverNotifiedMs: number[];
  /** network parameters this seed drew for the fault phase */
  network: { maxDelayMs: number; dropRate: number; dupRate: number; compactEvery: number; maxEntriesPerAppend: number; maxInflight: number };
}

class Violation extends Error {}

// --------------------------------------------------------------------------- hashing (hash chain over logs)

function mix(h: number, x: number): number {
  h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) >>> 0;
}

function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193) >>> 0;
  return h;
}

/** 52-bit chain hash of (previous chain, entry): equal chains at an index mean equal logs up to it */
function chainOf(prev: number, e: RaftEntry): number {
  const lo = prev % 0x100000000;
  const hi = Math.floor(prev / 0x100000000);
  const d = hashBytes(e.data);
  const a = mix(mix(mix(mix(mix(0x9747b28c, lo), hi), e.term), e.type), d);
  const b = mix(mix(mix(mix(mix(0x5bd1e995, hi), lo), d), e.index), e.term);
  return a * 0x100000 + (b & 0xfffff);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function encodeSnap(index: number, chain: number): Uint8Array {
  return enc.encode(JSON.stringify({ index, chain }));
}

function decodeSnap(data: Uint8Array): { index: number; chain: number } {
  return JSON.parse(dec.decode(data)) as { index: number; chain: number };
}

// --------------------------------------------------------------------------- event queue

type Ev =
  | { k: 'tick'; node: number; inc: number }
  | { k: 'deliver'; g: number; msg: RaftMessage; sentAt: number }
  | { k: 'persisted'; node: number; inc: number; g: number; seq: number }
  | { k: 'fault' }
  | { k: 'restart'; node: number; inc: number }
  | { k: 'heal-partition'; id: number }
  | { k: 'peer-down'; node: number; inc: number; peer: number }
  | { k: 'client'; g: number; at: number }
  | { k: 'membership' }
  | { k: 'heal' }
  | { k: 'check' };

class Heap {
  private t: number[] = [];
  private s: number[] = [];
  private e: Ev[] = [];
  private seq = 0;

  get size(): number {
    return this.e.length;
  }

  push(time: number, ev: Ev): void {
    const seq = this.seq++;
    let i = this.e.length;
    this.t.push(time);
    this.s.push(seq);
    this.e.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(i, p)) { this.swap(i, p); i = p; } else break;
    }
  }

  peekTime(): number {
    return this.t[0]!;
  }

  pop(): { time: number; ev: Ev } {
    const time = this.t[0]!;
    const ev = this.e[0]!;
    const last = this.e.length - 1;
    this.swap(0, last);
    this.t.pop();
    this.s.pop();
    this.e.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.e.length && this.less(l, m)) m = l;
      if (r < this.e.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return { time, ev };
  }

  private less(a: number, b: number): boolean {
    return this.t[a]! < this.t[b]! || (this.t[a] === this.t[b] && this.s[a]! < this.s[b]!);
  }

  private swap(a: number, b: number): void {
    [this.t[a], this.t[b]] = [this.t[b]!, this.t[a]!];
    [this.s[a], this.s[b]] = [this.s[b]!, this.s[a]!];
    [this.e[a], this.e[b]] = [this.e[b]!, this.e[a]!];
  }
}

// --------------------------------------------------------------------------- cluster model

interface Member {
  raft: RaftNode | null;
  log: MemoryRaftLog;
  durableHs: HardState;
  pendingHs: Array<{ seq: number; hs: HardState }>;
  /** persistence completes in order: the next completion is scheduled no earlier than this */
  lastPersistAt: number;
  /** state machine: applied index and the chain hash there */
  sm: { index: number; chain: number };
  lastCommit: number;
  role: Role;
  term: number;
}

interface SimNodeState {
  id: number;
  up: boolean;
  inc: number;
  side: number;
  members: Member[];
  /** storage fresh (first start or wiped) and some group not released yet: the broker's node.json voteHold marker */
  freshPending: boolean;
  /** start time of the process that came up on wiped storage: messages sent to it before that are lost (TCP) */
  freshSince: number;
  /** wiped while down: the next start is a fresh process on empty storage */
  wiped: boolean;
}

interface Proposal {
  id: string;
  node: number;
  inc: number;
  index: number;
  term: number;
  at: number;
}

interface GroupState {
  /** committed[index] = chain hash and client id of the entry applied at index (first applier defines it) */
  committed: Array<{ chain: number; id: string | null } | undefined>;
  maxCommitted: number;
  leaders: Map<number, number>;
  /** (index, term) -> chain: an index/term pair names one entry only */
  created: Map<string, number>;
  acks: Array<{ id: string; index: number }>;
  acked: Map<string, number>;
  pending: Map<string, Proposal>;
  queue: string[];
  nextId: number;
  target: number;
  issued: number;
  /** when the client loop runs next (one wake-up at a time) */
  clientAt: number | null;
}

const TICK_MS = 10;

export function replayCommand(o: SimOptions): string {
  const flags = [`--seed ${o.seed}`, `--nodes ${o.nodes}`, `--groups ${o.groups}`, `--fault-ms ${o.faultMs}`, `--liveness-ms ${o.livenessMs}`];
  if (!o.crashes) flags.push('--no-crashes');
  if (!o.wipes) flags.push('--no-wipes');
  if (!o.voteHold) flags.push('--no-vote-hold');
  if (!o.partitions) flags.push('--no-partitions');
  if (!o.membership) flags.push('--no-membership');
  if (!o.measureFailover) flags.push('--no-failover');
  if (o.driverBug === 'lying-fsync') flags.push('--lying-fsync');
  return `npm run sim -- ${flags.join(' ')}`;
}

export function runSim(o: SimOptions): SimResult {
  return new Sim(o).run();
}

class Sim {
  private readonly rng: Rng;
  private readonly heap = new Heap();
  private now = 0;
  private readonly nodes: SimNodeState[] = [];
  private readonly groups: GroupState[] = [];
  private readonly chains = new WeakMap<RaftEntry, { chain: number; prev: number }>();
  private readonly snapChains = new WeakMap<Uint8Array, number>();
  private readonly trace: string[] = [];
  private traceAt = 0;
  private readonly maxDelay: number;
  private readonly network: SimResult['network'];
  private dropRate: number;
  private dupRate: number;
  private readonly compactEvery: number;
  private events = 0;
  private phase: 'faults' | 'healing' | 'failover' | 'done' = 'faults';
  private healedAt = 0;
  private partitionId = 0;
  /** one-way link failures "a>b": a's messages to b are lost, b's to a get through */
  private readonly oneWay = new Set<string>();
  private readonly raftTuning: { maxEntriesPerAppend: number; maxInflight: number };
  private failover: { t0: number; groups: Map<number, number>; deadline: number; notified: boolean } | null = null;
  private readonly failoverMs: number[] = [];
  private readonly failoverNotifiedMs: number[] = [];
  private readonly stats: SimStats = {
    simulatedMs: 0, messages: 0, dropped: 0, duplicated: 0, crashes: 0, partitions: 0, leadersElected: 0,
    proposals: 0, acked: 0, duplicateAcks: 0, duplicateEntries: 0, retries: 0, snapshotsInstalled: 0, configChanges: 0, transfers: 0, maxCommit: 0, peerDowns: 0,
    wipes: 0, holdReleasedCaughtUp: 0, holdReleasedBootstrap: 0,
  };

  constructor(private readonly o: SimOptions) {
    this.rng = new Rng(o.seed);
    this.maxDelay = this.rng.pick([2, 5, 10, 30]);
    this.dropRate = this.rng.pick([0, 0.01, 0.05, 0.15]);
    this.dupRate = this.rng.pick([0, 0.01, 0.05]);
    this.compactEvery = this.rng.pick([8, 32, 128, Infinity]);
    this.raftTuning = { maxEntriesPerAppend: this.rng.pick([1, 4, 32, 256]), maxInflight: this.rng.pick([1, 4, 16]) };
    this.network = { maxDelayMs: this.maxDelay, dropRate: this.dropRate, dupRate: this.dupRate, compactEvery: this.compactEvery, ...this.raftTuning };
  }

  run(): SimResult {
    let error: string | null = null;
    try {
      this.setup();
      while (this.phase !== 'done') {
        if (this.heap.size === 0) throw new Violation('event queue ran dry');
        const { time, ev } = this.heap.pop();
        this.now = time;
        // a runaway (message storm, retry loop) is a bug too, and must not hang the test run
        if (++this.events > 2_000_000) throw new Violation(`event budget exceeded: 2000000 events by t=${time} (heap ${this.heap.size})`);
        this.handle(ev);
      }
      this.finalChecks();
    } catch (e) {
      if (e instanceof Violation) error = e.message;
      else if (e instanceof Error) error = `exception: ${e.message}\n${e.stack ?? ''}`;
      else error = `exception: ${String(e)}`;
    }
    this.stats.simulatedMs = this.now;
    const traceTail = this.trace.length < this.o.traceSize ? [...this.trace] : [...this.trace.slice(this.traceAt), ...this.trace.slice(0, this.traceAt)];
    return {
      seed: this.o.seed, ok: error === null, error, replay: replayCommand(this.o), traceTail, stats: this.stats,
      failoverMs: this.failoverMs,
      failoverNotifiedMs: this.failoverNotifiedMs,
      network: this.network,
    };
  }

  private log(s: string): void {
    const line = `t=${this.now} ${s}`;
    if (this.trace.length < this.o.traceSize) this.trace.push(line);
    else {
      this.trace[this.traceAt] = line;
      this.traceAt = (this.traceAt + 1) % this.o.traceSize;
    }
  }

  // ------------------------------------------------------------------------- setup

  private setup(): void {
    const voters = Array.from({ length: this.o.nodes }, (_, i) => i + 1);
    for (let g = 0; g < this.o.groups; g++) {
      this.groups.push({
        committed: [], maxCommitted: 0, leaders: new Map(), created: new Map(), acks: [], acked: new Map(),
        pending: new Map(), queue: [], nextId: 0, target: 1, issued: 0, clientAt: null,
      });
    }
    for (const id of voters) {
      const members: Member[] = [];
      for (let g = 0; g < this.o.groups; g++) {
        members.push({
          raft: null, log: this.newLog(g), durableHs: { term: 0, vote: null, commit: 0 }, pendingHs: [],
          lastPersistAt: 0, sm: { index: 0, chain: 0 }, lastCommit: 0, role: 'follower', term: 0,
        });
      }
      // first start: the storage is fresh (no node.json yet), like a wiped node
      this.nodes.push({ id, up: false, inc: 0, side: 0, members, freshPending: this.o.voteHold, freshSince: 0, wiped: false });
      this.start(id);
    }
    this.heap.push(this.rng.int(50, 300), { k: 'fault' });
    this.heap.push(this.o.faultMs, { k: 'heal' });
    for (let g = 0; g < this.o.groups; g++) this.wakeClient(g, this.rng.int(0, 50));
    if (this.o.membership) this.heap.push(this.rng.int(300, 800), { k: 'membership' });
  }

  private newLog(g: number): MemoryRaftLog {
    return new MemoryRaftLog({ beforeAppend: (log, entries) => this.checkAppend(g, log, entries) });
  }

  private node(id: number): SimNodeState {
    return this.nodes[id - 1]!;
  }

  private start(id: number): void {
    const bootstrap = Array.from({ length: this.o.nodes }, (_, i) => i + 1);
    const n = this.node(id);
    n.up = true;
    n.inc++;
    if (n.wiped) {
      n.wiped = false;
      n.freshSince = this.now;
    }
    for (let g = 0; g < this.o.groups; g++) {
      const m = n.members[g]!;
      // held: fresh storage and no persisted term/vote for this group (a persisted VOTE_HOLD holds it by itself)
      const voteHold = n.freshPending && m.durableHs.term === 0 && m.durableHs.vote === null;
      m.raft = new RaftNode({ id, random: () => this.rng.next(), bootstrap: { voters: bootstrap, learners: [] }, ...this.raftTuning, voteHold }, m.log, { ...m.durableHs });
      const snap = m.log.snapshot();
      if (snap) {
        const s = decodeSnap(snap.data);
        this.checkSnapshotChain(g, id, snap.meta.index, s.chain, 'restart');
        m.sm = { index: snap.meta.index, chain: s.chain };
      } else {
        m.sm = { index: 0, chain: 0 };
      }
      m.lastCommit = m.raft.commitIndex;
      m.role = 'follower';
      m.term = m.raft.currentTerm;
      this.processReady(id, g);
    }
    this.heap.push(this.now + this.rng.int(1, TICK_MS), { k: 'tick', node: id, inc: n.inc });
  }

  // ------------------------------------------------------------------------- events

  private handle(ev: Ev): void {
    switch (ev.k) {
      case 'tick': {
        const n = this.node(ev.node);
        if (!n.up || n.inc !== ev.inc) return;
        for (let g = 0; g < this.o.groups; g++) {
          n.members[g]!.raft!.tick(TICK_MS);
          this.processReady(ev.node, g);
        }
        this.heap.push(this.now + TICK_MS, { k: 'tick', node: ev.node, inc: ev.inc });
        return;
      }
      case 'deliver': {
        const msg = ev.msg;
        const to = this.node(msg.to);
        if (!to.up || to.side !== this.node(msg.from).side || this.oneWay.has(`${msg.from}>${msg.to}`) || ev.sentAt < to.freshSince) {
          this.stats.dropped++;
          return;
        }
        to.members[ev.g]!.raft!.receive(msg);
        this.processReady(msg.to, ev.g);
        return;
      }
      case 'persisted': {
        const n = this.node(ev.node);
        if (!n.up || n.inc !== ev.inc) return;
        const m = n.members[ev.g]!;
        if (this.o.driverBug !== 'lying-fsync') {
          m.log.sync(ev.seq);
          while (m.pendingHs.length > 0 && m.pendingHs[0]!.seq <= ev.seq) m.durableHs = m.pendingHs.shift()!.hs;
        }
        m.raft!.persisted(ev.seq);
        this.processReady(ev.node, ev.g);
        return;
      }
      case 'fault':
        if (this.phase !== 'faults') return;
        this.injectFault();
        this.heap.push(this.now + this.rng.int(50, 400), { k: 'fault' });
        return;
      case 'restart': {
        const n = this.node(ev.node);
        if (n.up || n.inc !== ev.inc) return;
        this.log(`restart node ${ev.node}`);
        this.start(ev.node);
        return;
      }
      case 'peer-down': {
        const n = this.node(ev.node);
        if (!n.up || n.inc !== ev.inc) return;
        this.stats.peerDowns++;
        for (let g = 0; g < this.o.groups; g++) {
          n.members[g]!.raft!.peerDisconnected(ev.peer);
          this.processReady(ev.node, g);
        }
        return;
      }
      case 'heal-partition':
        if (ev.id !== this.partitionId) return;
        this.log('partition healed');
        for (const n of this.nodes) n.side = 0;
        this.oneWay.clear();
        return;
      case 'client':
        if (this.groups[ev.g]!.clientAt !== ev.at) return; // superseded by an earlier wake-up
        this.groups[ev.g]!.clientAt = null;
        this.clientStep(ev.g);
        return;
      case 'membership':
        if (this.phase !== 'faults' && this.phase !== 'healing') return;
        this.membershipStep();
        this.heap.push(this.now + this.rng.int(100, 600), { k: 'membership' });
        return;
      case 'heal':
        this.heal();
        return;
      case 'check':
        this.checkSettled();
        return;
    }
  }

  private send(g: number, msg: RaftMessage): void {
    this.stats.messages++;
    if (this.rng.chance(this.dropRate)) {
      this.stats.dropped++;
      return;
    }
    this.heap.push(this.now + this.rng.int(1, this.maxDelay), { k: 'deliver', g, msg, sentAt: this.now });
    if (this.rng.chance(this.dupRate)) {
      this.stats.duplicated++;
      this.heap.push(this.now + this.rng.int(1, this.maxDelay * 3), { k: 'deliver', g, msg, sentAt: this.now });
    }
  }

  /** Carry out the outputs of one call into a node, checking invariants on the way. */
  private processReady(id: number, g: number): void {
    const n = this.node(id);
    const m = n.members[g]!;
    const raft = m.raft!;
    const r = raft.ready();
    const G = this.groups[g]!;
    if (r.restore) {
      const s = decodeSnap(r.restore.data);
      if (s.index !== r.restore.meta.index) throw new Violation(`g${g} n${id}: snapshot data index ${s.index} != meta ${r.restore.meta.index}`);
      this.checkSnapshotChain(g, id, s.index, s.chain, 'install');
      m.sm = { index: s.index, chain: s.chain };
      this.stats.snapshotsInstalled++;
      this.log(`g${g} n${id} installed snapshot @${s.index}`);
    }
    for (const e of r.committed) this.apply(g, id, m, e);
    if (r.commitIndex < m.lastCommit) throw new Violation(`g${g} n${id}: commit index went back from ${m.lastCommit} to ${r.commitIndex}`);
    m.lastCommit = r.commitIndex;
    if (r.persist) {
      m.log.mark(r.persist.seq);
      if (r.persist.hardState) m.pendingHs.push({ seq: r.persist.seq, hs: { ...r.persist.hardState } });
      const at = Math.max(this.now + this.rng.int(1, 8), m.lastPersistAt);
      m.lastPersistAt = at;
      this.heap.push(at, { k: 'persisted', node: id, inc: n.inc, g, seq: r.persist.seq });
    }
    for (const msg of r.messages) this.send(g, msg);
    if (r.holdReleased) {
      const h = r.holdReleased;
      if (h.reason === 'caught-up') this.stats.holdReleasedCaughtUp++;
      else this.stats.holdReleasedBootstrap++;
      this.log(`g${g} n${id} vote hold released (${h.reason}) term ${h.term} vote ${h.vote ?? '-'} heard ${JSON.stringify(h.heard)} after ${h.heldMs} ms`);
      // node.json's marker: cleared once every group of the node is released
      if (n.freshPending && n.members.every((x) => x.raft !== null && !x.raft.isVoteHeld)) n.freshPending = false;
    }
    for (const ev of r.events) {
      const was = m.role;
      m.role = ev.role;
      m.term = ev.term;
      this.log(`g${g} n${id} ${ev.role} term ${ev.term} leader ${ev.leader ?? '-'}`);
      if (ev.role === 'leader') this.onLeader(g, id, ev.term);
      if (was === 'leader' && ev.role !== 'leader') this.failPending(g, id, 'lost leadership');
    }
    if (this.failover && this.failover.groups.has(g) && m.role === 'leader') {
      const oldTerm = this.failover.groups.get(g)!;
      if (m.term > oldTerm && raft.commitIndex > 0 && r.committed.some((e) => e.term === m.term)) {
        (this.failover.notified ? this.failoverNotifiedMs : this.failoverMs).push(this.now - this.failover.t0);
        this.failover.groups.delete(g);
        if (this.failover.groups.size === 0) this.phase = 'done';
      }
    }
    if (m.sm.index - m.log.snapshotIndex() >= this.compactEvery) {
      raft.compact(m.sm.index, this.snapData(m.sm.index, m.sm.chain));
      this.processReady(id, g);
    }
    void G;
  }

  private snapData(index: number, chain: number): Uint8Array {
    const d = encodeSnap(index, chain);
    this.snapChains.set(d, chain);
    return d;
  }

  // ------------------------------------------------------------------------- invariants

  /** Log matching, incrementally: every entry appended must continue the chain of the entry before it. */
  private checkAppend(g: number, log: MemoryRaftLog, entries: readonly RaftEntry[]): void {
    const first = entries[0]!;
    let prev: number;
    const pi = first.index - 1;
    if (pi === log.snapshotIndex()) {
      const snap = log.snapshot();
      prev = snap ? decodeSnap(snap.data).chain : 0;
    } else {
      const pe = log.entry(pi);
      if (!pe) throw new Violation(`g${g}: append at ${first.index} without entry ${pi}`);
      prev = this.chains.get(pe)!.chain;
    }
    const G = this.groups[g]!;
    for (const e of entries) {
      const known = this.chains.get(e);
      if (known) {
        if (known.prev !== prev) {
          throw new Violation(`g${g}: log matching: entry ${e.index} term ${e.term} appended after a different prefix (chain ${prev} vs leader's ${known.prev})`);
        }
        prev = known.chain;
        continue;
      }
      const chain = chainOf(prev, e);
      const key = `${e.index}/${e.term}`;
      const other = G.created.get(key);
      if (other !== undefined && other !== chain) throw new Violation(`g${g}: two different entries created at index ${e.index} term ${e.term}`);
      G.created.set(key, chain);
      this.chains.set(e, { chain, prev });
      prev = chain;
    }
  }

  private checkSnapshotChain(g: number, id: number, index: number, chain: number, what: string): void {
    const c = this.groups[g]!.committed[index];
    if (index > 0 && c === undefined) throw new Violation(`g${g} n${id}: ${what} snapshot at ${index} which no node applied`);
    if (c && c.chain !== chain) throw new Violation(`g${g} n${id}: ${what} snapshot at ${index} differs from the committed log`);
  }

  private apply(g: number, id: number, m: Member, e: RaftEntry): void {
    if (e.index !== m.sm.index + 1) throw new Violation(`g${g} n${id}: applied index ${e.index} after ${m.sm.index}`);
    const info = this.chains.get(e);
    if (!info) throw new Violation(`g${g} n${id}: applied an entry that no log append saw (index ${e.index})`);
    if (info.prev !== m.sm.chain) throw new Violation(`g${g} n${id}: state machine safety: entry ${e.index} does not follow the applied state`);
    const G = this.groups[g]!;
    const c = G.committed[e.index];
    const clientId = e.type === EntryType.DATA ? dec.decode(e.data) : null;
    if (c === undefined) {
      G.committed[e.index] = { chain: info.chain, id: clientId };
      if (e.index > G.maxCommitted) G.maxCommitted = e.index;
      if (e.index > this.stats.maxCommit) this.stats.maxCommit = e.index;
    } else if (c.chain !== info.chain) {
      throw new Violation(`g${g} n${id}: state machine safety: index ${e.index} applied as ${clientId ?? 'type ' + e.type} term ${e.term}, another node applied ${c.id ?? 'a non-data entry'}`);
    }
    m.sm = { index: e.index, chain: info.chain };
    // acks=all: the leader that took the proposal answers the client once the entry is committed and applied
    const key = `${id}/${e.index}`;
    const p = G.pending.get(key);
    if (p) {
      G.pending.delete(key);
      const n = this.node(id);
      if (p.inc === n.inc && p.term === e.term && clientId === p.id && m.role === 'leader' && m.term === p.term) this.ack(g, p);
      else this.retry(g, p.id);
    }
  }

  private ack(g: number, p: Proposal): void {
    const G = this.groups[g]!;
    const last = G.acks[G.acks.length - 1];
    if (last && p.index <= last.index) throw new Violation(`g${g}: ack order: ${p.id} acked at index ${p.index} after ${last.id} at ${last.index}`);
    G.acks.push({ id: p.id, index: p.index });
    if (G.acked.has(p.id)) this.stats.duplicateAcks++;
    else {
      G.acked.set(p.id, p.index);
      this.stats.acked++;
    }
  }

  private onLeader(g: number, id: number, term: number): void {
    const G = this.groups[g]!;
    const other = G.leaders.get(term);
    if (other !== undefined && other !== id) throw new Violation(`g${g}: two leaders in term ${term}: n${other} and n${id}`);
    G.leaders.set(term, id);
    this.stats.leadersElected++;
    // leader completeness: the new leader holds every entry any node has seen committed
    const m = this.node(id).members[g]!;
    const c = G.maxCommitted;
    if (c === 0 || c <= m.log.snapshotIndex()) return;
    const e = m.log.entry(c);
    if (!e) throw new Violation(`g${g}: leader completeness: n${id} leads term ${term} without committed entry ${c} (last ${m.log.lastIndex()})`);
    if (this.chains.get(e)!.chain !== G.committed[c]!.chain) throw new Violation(`g${g}: leader completeness: n${id} (term ${term}) has a different entry at committed index ${c}`);
  }

  // ------------------------------------------------------------------------- clients

  private clientStep(g: number): void {
    const G = this.groups[g]!;
    if (this.phase === 'faults' && G.queue.length + G.pending.size < 6) {
      G.queue.push(`g${g}-${G.nextId++}`);
      G.issued++;
    }
    const id = G.queue[0];
    if (id !== undefined) {
      const n = this.node(G.target);
      const raft = n.up ? n.members[g]!.raft! : null;
      let sent = false;
      try {
        // like a Kafka client with stale metadata: ask the node, follow its leader hint (cheap check first)
        if (!raft || raft.currentRole !== 'leader') throw new Error('not leader');
        const r = raft.propose([{ type: EntryType.DATA, data: enc.encode(id) }]);
        G.queue.shift();
        G.pending.set(`${G.target}/${r.firstIndex}`, { id, node: G.target, inc: n.inc, index: r.firstIndex, term: r.term, at: this.now });
        this.stats.proposals++;
        sent = true;
        this.processReady(G.target, g);
      } catch (e) {
        if (isLanceError(e) && !isLanceError(e, 'NOT_LEADER')) throw e;
        const hint = raft?.currentLeader ?? null;
        G.target = hint !== null && hint !== G.target ? hint : this.rng.int(1, this.o.nodes);
      }
      if (!sent) {
        // back off while there is no leader to talk to
        this.wakeClient(g, this.now + this.rng.int(5, 20));
      }
    }
    this.expireClient(g);
  }

  private expireClient(g: number): void {
    const G = this.groups[g]!;
    // proposals that got no answer for a while are retried (possibly duplicating the entry)
    for (const [key, p] of G.pending) {
      if (this.now - p.at > 1500) {
        G.pending.delete(key);
        this.retry(g, p.id);
      }
    }
    if (this.phase === 'faults' || G.queue.length > 0 || G.pending.size > 0) {
      this.wakeClient(g, this.now + (G.queue.length > 0 ? this.rng.int(1, 10) : this.rng.int(5, 40)));
    }
  }

  private retry(g: number, id: string): void {
    const G = this.groups[g]!;
    if (G.acked.has(id)) return;
    this.stats.retries++;
    G.queue.push(id);
    this.wakeClient(g, this.now + 1);
  }

  private wakeClient(g: number, at: number): void {
    const G = this.groups[g]!;
    if (G.clientAt !== null && G.clientAt <= at) return;
    G.clientAt = at;
    this.heap.push(at, { k: 'client', g, at });
  }

  private failPending(g: number, node: number, why: string): void {
    const G = this.groups[g]!;
    for (const [key, p] of G.pending) {
      if (p.node === node) {
        G.pending.delete(key);
        this.log(`g${g} client: ${p.id} on n${node} failed (${why}), retrying`);
        this.retry(g, p.id);
      }
    }
  }

  // ------------------------------------------------------------------------- faults

  private leaderOf(g: number): number | null {
    let best: { id: number; term: number } | null = null;
    for (const n of this.nodes) {
      if (!n.up) continue;
      const r = n.members[g]!.raft!;
      if (r.currentRole === 'leader' && (!best || r.currentTerm > best.term)) best = { id: n.id, term: r.currentTerm };
    }
    return best?.id ?? null;
  }

  private injectFault(): void {
    const choices: string[] = [];
    if (this.o.crashes) choices.push('crash', 'crash-leader');
    if (this.o.wipes) choices.push('wipe');
    if (this.o.partitions) choices.push('partition', 'isolate-leader', 'one-way', 'conn-reset');
    if (choices.length === 0) return;
    const what = this.rng.pick(choices);
    if (what === 'wipe') {
      // One node on fresh storage at a time (a wiped node counts until every group of it left the hold): losing the
      // storage of a majority loses committed data whatever the protocol, and with membership changes a group may
      // have 3 or 4 voters, where two held members would leave it without a majority (a liveness, not a safety, limit).
      if (this.nodes.some((n) => n.freshPending || n.wiped)) return;
      // Rule 2's documented window is outside this fault model: a voter that never left term 0 (down or cut off since
      // the group started) plus a wiped voter would look like a first start to each other.
      if (this.nodes.some((n) => n.members.some((m) => m.durableHs.term === 0))) return;
      // No membership change in flight (all nodes up and agreeing on every group's membership), and none starts
      // while a node is held (membershipChange): a leader that appended its own removal and crashed leaves the most
      // up-to-date node unable to campaign (it is not a voter in its own log), and with the held node unable to vote
      // for a less up-to-date candidate the group waits (a liveness limit of config-on-append + the hold).
      if (!this.configsSettled()) return;
      const up = this.nodes.filter((n) => n.up);
      if (up.length === 0) return;
      const victim = this.rng.pick(up).id;
      this.crash(victim, this.rng.chance(0.7));
      this.wipe(victim);
      this.heap.push(this.now + this.rng.int(20, 1200), { k: 'restart', node: victim, inc: this.node(victim).inc });
    } else if (what === 'crash' || what === 'crash-leader') {
      const up = this.nodes.filter((n) => n.up);
      if (up.length === 0) return;
      let victim = this.rng.pick(up).id;
      if (what === 'crash-leader') victim = this.leaderOf(this.rng.int(0, this.o.groups - 1)) ?? victim;
      this.crash(victim, this.rng.chance(0.7));
      this.heap.push(this.now + this.rng.int(20, 1200), { k: 'restart', node: victim, inc: this.node(victim).inc });
    } else if (what === 'conn-reset') {
      // a connection between two live nodes breaks (and is re-established): both ends are told, messages still flow
      const up = this.nodes.filter((n) => n.up);
      if (up.length < 2) return;
      const a = this.rng.pick(up);
      const b = this.rng.pick(up.filter((n) => n !== a));
      this.log(`connection reset n${a.id} <-> n${b.id}`);
      this.heap.push(this.now + this.rng.int(0, this.maxDelay), { k: 'peer-down', node: a.id, inc: a.inc, peer: b.id });
      this.heap.push(this.now + this.rng.int(0, this.maxDelay), { k: 'peer-down', node: b.id, inc: b.inc, peer: a.id });
    } else {
      const id = ++this.partitionId;
      this.stats.partitions++;
      if (what === 'one-way') {
        const a = this.rng.int(1, this.o.nodes);
        const b = (a % this.o.nodes) + 1;
        const [from, to] = this.rng.chance(0.5) ? [a, b] : [b, a];
        this.oneWay.add(`${from}>${to}`);
        this.log(`one-way link failure n${from} -> n${to}`);
      } else if (what === 'isolate-leader') {
        const l = this.leaderOf(this.rng.int(0, this.o.groups - 1));
        for (const n of this.nodes) n.side = n.id === l ? 1 : 0;
      } else {
        for (const n of this.nodes) n.side = this.rng.int(0, 1);
      }
      this.log(`partition ${this.nodes.map((n) => `n${n.id}:${n.side}`).join(' ')}`);
      this.heap.push(this.now + this.rng.int(100, 1500), { k: 'heal-partition', id });
    }
  }

  /** Power loss: unsynced writes may be lost or partly kept; the hard state keeps a prefix of its writes. */
  private crash(id: number, notifyPeers: boolean): void {
    const n = this.node(id);
    this.stats.crashes++;
    n.up = false;
    n.inc++;
    if (notifyPeers) {
      // the victim's kernel closes its connections: peers reachable from it learn it after a network delay
      for (const o of this.nodes) {
        if (!o.up || o.side !== n.side || this.oneWay.has(`${id}>${o.id}`)) continue;
        this.heap.push(this.now + this.rng.int(1, this.maxDelay), { k: 'peer-down', node: o.id, inc: o.inc, peer: id });
      }
    }
    for (let g = 0; g < this.o.groups; g++) {
      const m = n.members[g]!;
      const pend = m.log.unsyncedWrites();
      const survive = this.rng.int(0, pend);
      let tear: number | undefined;
      const len = survive > 0 ? m.log.pendingAppendLength(survive - 1) : undefined;
      if (len !== undefined && this.rng.chance(0.5)) tear = this.rng.int(0, len - 1);
      // the driver writes a request's hard state only after that request's log writes are durable
      const covered = new Set(m.log.seqsCoveredBy(tear !== undefined ? survive - 1 : survive));
      const eligible = m.pendingHs.filter((p) => covered.has(p.seq));
      const k = this.rng.int(0, eligible.length);
      if (k > 0) m.durableHs = eligible[k - 1]!.hs;
      m.pendingHs = [];
      m.log = m.log.crashImage(survive, tear);
      m.raft = null;
      m.lastPersistAt = 0;
      this.failPending(g, id, 'crash');
      m.role = 'follower';
    }
    this.log(`crash node ${id}`);
  }

  /** The crashed node's disk is replaced: every group's log and hard state are gone; it restarts fresh. */
  private wipe(id: number): void {
    const n = this.node(id);
    this.stats.wipes++;
    for (let g = 0; g < this.o.groups; g++) {
      const m = n.members[g]!;
      m.log = this.newLog(g);
      m.durableHs = { term: 0, vote: null, commit: 0 };
      m.pendingHs = [];
    }
    n.freshPending = this.o.voteHold;
    n.wiped = true;
    this.log(`wipe node ${id} (all groups' logs and term/vote lost)`);
  }

  private membershipStep(): void {
    if (this.phase === 'faults') this.membershipChange(this.rng.int(0, this.o.groups - 1));
    // after healing, every group restores full membership (a random pick could starve one group)
    else for (let g = 0; g < this.o.groups; g++) this.membershipChange(g);
  }

  private configsSettled(): boolean {
    if (this.nodes.some((n) => !n.up)) return false;
    // ... and equal to the founding membership, which is what a wiped node's log starts from (its bootstrap entry)
    const founding = JSON.stringify({ voters: this.nodes.map((n) => n.id), learners: [] });
    for (let g = 0; g < this.o.groups; g++) {
      if (this.nodes.some((n) => JSON.stringify(n.members[g]!.raft!.config) !== founding)) return false;
    }
    return true;
  }

  private membershipChange(g: number): void {
    if (this.phase === 'faults' && this.nodes.some((n) => n.freshPending || n.wiped)) return; // see the 'wipe' fault
    const l = this.leaderOf(g);
    if (l === null) return;
    const raft = this.node(l).members[g]!.raft!;
    const c = raft.config;
    const all = this.nodes.map((n) => n.id);
    const missing = all.filter((id) => !c.voters.includes(id) && !c.learners.includes(id));
    try {
      let what: string;
      if (c.learners.length > 0) {
        raft.promote(c.learners[0]!);
        what = `promote n${c.learners[0]}`;
      } else if (missing.length > 0) {
        raft.addLearner(missing[0]!);
        what = `add learner n${missing[0]}`;
      } else if (this.phase === 'faults' && this.rng.chance(0.3)) {
        const to = this.rng.pick(c.voters);
        raft.transferLeadership(to);
        this.stats.transfers++;
        what = `transfer leadership to n${to}`;
        this.log(`g${g} leader n${l}: ${what}`);
        this.processReady(l, g);
        return;
      } else if (this.phase === 'faults' && this.rng.chance(0.5)) {
        const victim = this.rng.pick(c.voters);
        raft.removeServer(victim);
        what = `remove n${victim}`;
      } else {
        return;
      }
      this.stats.configChanges++;
      this.log(`g${g} leader n${l}: ${what}`);
      this.processReady(l, g);
    } catch (e) {
      if (!isLanceError(e)) throw e;
      this.log(`g${g} leader n${l}: membership change refused: ${e.code} ${e.message}`);
    }
  }

  // ------------------------------------------------------------------------- heal, liveness, failover

  private heal(): void {
    this.phase = 'healing';
    this.healedAt = this.now;
    this.partitionId++;
    for (const n of this.nodes) n.side = 0;
    this.oneWay.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    for (const n of this.nodes) if (!n.up) this.start(n.id);
    this.log('healed: all nodes up, no partition, no drops');
    this.heap.push(this.now + TICK_MS, { k: 'check' });
  }

  private settledReason(): string | null {
    for (let g = 0; g < this.o.groups; g++) {
      const G = this.groups[g]!;
      const l = this.leaderOf(g);
      if (l === null) return `g${g}: no leader`;
      const lr = this.node(l).members[g]!.raft!;
      if (lr.commitIndex !== lr.lastIndex) return `g${g}: leader n${l} commit ${lr.commitIndex} < last ${lr.lastIndex}`;
      const c = lr.config;
      if (this.o.membership && (c.voters.length !== this.o.nodes || c.learners.length > 0)) return `g${g}: membership not restored (${JSON.stringify(c)})`;
      for (const id of [...c.voters, ...c.learners]) {
        const r = this.node(id).members[g]!.raft!;
        if (r.commitIndex !== lr.commitIndex || r.lastIndex !== lr.lastIndex) return `g${g}: n${id} at commit ${r.commitIndex}/last ${r.lastIndex}, leader at ${lr.commitIndex}`;
      }
      if (G.queue.length > 0 || G.pending.size > 0) return `g${g}: ${G.queue.length + G.pending.size} client proposals not acknowledged`;
    }
    return null;
  }

  private checkSettled(): void {
    if (this.phase === 'healing') {
      const why = this.settledReason();
      if (why === null) {
        this.log(`settled ${this.now - this.healedAt} ms after healing`);
        if (this.o.measureFailover) this.startFailover();
        else this.phase = 'done';
      } else if (this.now - this.healedAt > this.o.livenessMs) {
        throw new Violation(`liveness: not settled ${this.o.livenessMs} ms after the faults healed: ${why}\n${this.describe()}`);
      }
    } else if (this.phase === 'failover' && this.failover && this.now > this.failover.deadline) {
      throw new Violation(`failover: no new leader committed within ${this.failover.deadline - this.failover.t0} ms for groups ${[...this.failover.groups.keys()].join(',')}`);
    }
    if (this.phase !== 'done') this.heap.push(this.now + TICK_MS, { k: 'check' });
  }

  /** every node's view of every group (for failure reports) */
  private describe(): string {
    const lines: string[] = [];
    for (let g = 0; g < this.o.groups; g++) {
      for (const n of this.nodes) {
        if (!n.up) { lines.push(`  g${g} n${n.id}: down`); continue; }
        const st = n.members[g]!.raft!.status();
        const prog = st.progress.map((p) => `n${p.id}:${p.state} m${p.match} nx${p.next}`).join(' ');
        lines.push(`  g${g} n${n.id}: ${st.role} t${st.term} leader ${st.leader ?? '-'} commit ${st.commitIndex} last ${st.lastIndex} snap ${st.snapshotIndex} cfg ${JSON.stringify(st.config)}${prog ? ' | ' + prog : ''}`);
      }
    }
    return lines.join('\n');
  }

  private startFailover(): void {
    // let followers hear a heartbeat first so the measurement starts from a steady state
    const l = this.leaderOf(0)!;
    const groups = new Map<number, number>();
    for (let g = 0; g < this.o.groups; g++) {
      const r = this.node(l).members[g]!.raft!;
      if (r.currentRole === 'leader') groups.set(g, r.currentTerm);
    }
    this.phase = 'failover';
    const notified = this.rng.chance(0.5);
    this.failover = { t0: this.now, groups, deadline: this.now + 5000, notified };
    this.log(`failover: crash leader n${l} (leads groups ${[...groups.keys()].join(',')}; ${notified ? 'peers notified' : 'silent'})`);
    this.crash(l, notified);
  }

  private finalChecks(): void {
    for (let g = 0; g < this.o.groups; g++) {
      const G = this.groups[g]!;
      for (const [id, index] of G.acked) {
        const c = G.committed[index];
        if (!c || c.id !== id) throw new Violation(`g${g}: acknowledged ${id} at index ${index} is not in the committed log (found ${c?.id ?? 'nothing'})`);
      }
      // acknowledged entries sit at increasing indexes in ack order (checked at each ack); the log has no holes
      const seen = new Set<string>();
      for (let i = 1; i <= G.maxCommitted; i++) {
        const c = G.committed[i];
        if (c === undefined) throw new Violation(`g${g}: committed log has a hole at ${i}`);
        // client retries may commit an id twice (no deduplication in this state machine): counted, not an error
        if (c.id !== null) {
          if (seen.has(c.id)) this.stats.duplicateEntries++;
          seen.add(c.id);
        }
      }
      if (G.issued !== G.acked.size) throw new Violation(`g${g}: ${G.issued} ids issued but ${G.acked.size} acknowledged`);
    }
  }
}
