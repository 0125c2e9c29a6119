/**
 * RaftNode: one member of one Raft group, as a pure state machine.
 *
 * Inputs are method calls (tick, receive, propose, persisted, compact, admin commands); after each call the driver
 * takes the outputs with ready(). Time and randomness come from the caller (tick(ms), options.random).
 * See ./README.md for the persistence contract.
 */
import { LanceError } from '../common/errors.ts';
import { decodeConfig, encodeConfig, normalizeConfig, quorum } from './config.ts';
import {
  EntryType,
  type ClusterConfig,
  type HardState,
  type NodeId,
  type PersistRequest,
  type ProgressStatus,
  type RaftEntry,
  type RaftLog,
  type RaftMessage,
  type RaftStateEvent,
  type RaftStatus,
  type Ready,
  type Role,
  type SnapshotMeta,
  type VoteHoldRelease,
  VOTE_HOLD,
  VOTE_UNKNOWN,
} from './types.ts';

export interface RaftOptions {
  id: NodeId;
  /** election timeout is drawn uniformly from [min, max) on every reset */
  electionTimeoutMinMs?: number;
  electionTimeoutMaxMs?: number;
  heartbeatMs?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** replication batching: max entries / bytes per Append */
  maxEntriesPerAppend?: number;
  maxBytesPerAppend?: number;
  /** pipelining: max unacknowledged Appends per follower */
  maxInflight?: number;
  /** a learner may be promoted once its match index is within this many entries of the leader's last index */
  promoteMaxLag?: number;
  /**
   * peerDisconnected(leader): the surviving voters campaign after rank * stagger + random(0, stagger) ms (rank = the
   * voter's position among the other voters), so they do not split the vote by campaigning at the same moment.
   */
  disconnectStaggerMs?: number;
  /** uniform [0, 1): injected so runs are reproducible */
  random: () => number;
  /**
   * Founding members: the initial membership, used only when the log is empty and there is no snapshot (pass it
   * on every start; it is written as entry 1). Nodes that join later get none and learn it from the leader.
   */
  bootstrap?: ClusterConfig;
  /**
   * Start in vote hold (README "Vote hold"): the driver sets it when this node's storage is fresh (first start or a
   * wiped data dir) and this group has no persisted term/vote. A hard state whose vote is VOTE_HOLD is held too.
   */
  voteHold?: boolean;
}

type ProgressState = 'probe' | 'replicate' | 'snapshot';

interface Progress {
  match: number;
  next: number;
  state: ProgressState;
  /** probe: one Append outstanding, wait for its answer or the next heartbeat */
  paused: boolean;
  /** replicate: last index of every unacknowledged Append, oldest first */
  inflight: number[];
  lastAckAt: number;
  lastHeardAt: number;
  snapshotIndex: number;
  snapshotSentAt: number;
}

interface Outstanding {
  seq: number;
  /** the log's last index when the request was issued */
  lastIndex: number;
  /** lowest index truncated away by the writes of this request (Infinity if none): caps what is durable */
  truncatedTo: number;
  sync: boolean;
}

const EMPTY = new Uint8Array(0);

export class RaftNode {
  readonly id: NodeId;
  private readonly log: RaftLog;
  private readonly random: () => number;
  private readonly eMin: number;
  private readonly eMax: number;
  private readonly hbMs: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxInflight: number;
  private readonly promoteMaxLag: number;
  private readonly disconnectStagger: number;

  private term = 0;
  private vote: NodeId | null = null;
  private commit = 0;
  private applied = 0;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  /** fenced (operator split-brain isolation): no campaigning, no votes; still follows and replicates */
  private fenced = false;

  private now = 0;
  private electionDeadline = 0;
  private heartbeatDue = 0;
  private lastLeaderContact = -Infinity;
  private votes = new Map<NodeId, boolean>();
  /** voters that refused this node's current pre-vote round (any term): the tie-break in onPreVote yields to them */
  private preRefused = new Set<NodeId>();

  /** config history: the last one is in force; entries above commit may be reverted by truncation */
  private configs: Array<{ index: number; config: ClusterConfig }> = [];
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId | null = null;
  private transferDeadline = 0;
  /** index of the no-op this leader appended: config changes wait until it commits */
  private leaderStartIndex = 0;

  // persistence bookkeeping
  private logDirty = false;
  private truncatedThisStep = Infinity;
  private snapshotToPersist: { meta: SnapshotMeta; data: Uint8Array } | null = null;
  private lastIssuedSeq = 0;
  private lastSyncSeq = 0;
  private persistedSeq = 0;
  private outstanding: Outstanding[] = [];
  /** highest index known durable in the current log (the leader counts only this for itself) */
  private durableIndex: number;
  private lastHard: HardState;
  private deferred: Array<{ seq: number; msg: RaftMessage }> = [];

  // vote hold (README "Vote hold")
  private held = false;
  private heldSince = 0;
  /** highest term heard from each peer while held (requests and answers carry the sender's term) */
  private heard = new Map<NodeId, number>();
  /** the end of each peer's log as it showed it while we were held (ProbeResp, Vote, PreVote) */
  private heardLog = new Map<NodeId, { lastIndex: number; lastTerm: number }>();
  /** the commit index the current leader sent in its first Append/Snapshot of this term that we saw while held */
  private holdLeaderCommit: { leader: NodeId; term: number; commit: number } | null = null;
  /** how far our log is known to match the current leader's (from Appends/Snapshots it sent while we were held) */
  private holdMatch: { leader: NodeId; term: number; index: number } | null = null;
  private nextProbeAt = 0;
  /** the (pre)vote request being handled passes rule 3 */
  private holdVoteOk = false;
  private outHoldReleased: VoteHoldRelease | null = null;

  // outputs of the current call
  private outMessages: RaftMessage[] = [];
  private outRestore: { meta: SnapshotMeta; data: Uint8Array } | null = null;
  private lastEvent: { role: Role; term: number; leader: NodeId | null };

  constructor(opts: RaftOptions, log: RaftLog, hardState: HardState = { term: 0, vote: null, commit: 0 }) {
    this.id = opts.id;
    this.log = log;
    this.random = opts.random;
    this.eMin = opts.electionTimeoutMinMs ?? 150;
    this.eMax = opts.electionTimeoutMaxMs ?? 300;
    this.hbMs = opts.heartbeatMs ?? 50;
    this.preVote = opts.preVote ?? true;
    this.checkQuorum = opts.checkQuorum ?? true;
    this.maxEntries = opts.maxEntriesPerAppend ?? 256;
    this.maxBytes = opts.maxBytesPerAppend ?? 1 << 20;
    this.maxInflight = opts.maxInflight ?? 16;
    this.promoteMaxLag = opts.promoteMaxLag ?? 64;
    this.disconnectStagger = opts.disconnectStaggerMs ?? Math.max(1, Math.floor(this.eMin / 6));
    if (!(this.eMin > 0 && this.eMax > this.eMin && this.hbMs > 0 && this.hbMs < this.eMin)) {
      throw new LanceError('INVALID_CONFIG', `raft timeouts: need 0 < heartbeatMs (${this.hbMs}) < electionTimeoutMinMs (${this.eMin}) < electionTimeoutMaxMs (${this.eMax})`);
    }

    this.term = hardState.term;
    this.held = opts.voteHold === true || hardState.vote === VOTE_HOLD;
    this.vote = hardState.vote === VOTE_HOLD ? null : hardState.vote;
    const snap = log.snapshot();
    const snapIndex = log.snapshotIndex();
    // the commit hint may be ahead of what survived of the log: clamp (committed entries live on a majority)
    this.commit = Math.max(snapIndex, Math.min(hardState.commit, log.lastIndex()));
    this.applied = snapIndex;
    this.durableIndex = log.lastIndex();
    // as on disk: a hold that came from the options (not yet persisted) is written by the first ready()
    this.lastHard = { term: this.term, vote: hardState.vote, commit: this.commit };

    if (snap) this.configs.push({ index: snap.meta.index, config: normalizeConfig(snap.meta.config) });
    else this.configs.push({ index: 0, config: { voters: [], learners: [] } });
    // rebuild membership from CONFIG entries in the log (config takes effect when appended, committed or not)
    const last = log.lastIndex();
    for (let lo = snapIndex + 1; lo <= last;) {
      const batch = log.entries(lo, Math.min(last + 1, lo + 1024), 8 << 20);
      if (batch.length === 0) throw new LanceError('INTERNAL', `raft node ${opts.id}: the log could not serve entry ${lo} at startup (the membership scan needs the whole tail after the snapshot)`);
      for (const e of batch) if (e.type === EntryType.CONFIG) this.configs.push({ index: e.index, config: decodeConfig(e.data, `entry ${e.index}`) });
      lo += batch.length;
    }
    if (last === 0 && snapIndex === 0 && opts.bootstrap) {
      // Founding member, first start (or a crash lost even that): the bootstrap config becomes entry 1 (term 0),
      // byte-identical on every founder, so it is committed by construction and survives restarts in the log.
      this.appendLocal([{ term: 0, index: 1, type: EntryType.CONFIG, data: encodeConfig(opts.bootstrap) }]);
      this.commit = 1;
    }
    this.pruneConfigs();
    this.resetElectionTimer();
    this.lastEvent = { role: this.role, term: this.term, leader: this.leader };
    if (this.held) this.probeUnheard();
  }

  // ---------------------------------------------------------------- queries

  get config(): ClusterConfig {
    return this.configs[this.configs.length - 1]!.config;
  }

  status(): RaftStatus {
    const progress: ProgressStatus[] = [];
    if (this.role === 'leader') {
      const last = this.log.lastIndex();
      for (const [id, pr] of this.progress) {
        progress.push({ id, voter: this.config.voters.includes(id), match: pr.match, next: pr.next, state: pr.state, lag: last - pr.match, lastHeardMsAgo: this.now - pr.lastHeardAt });
      }
    }
    return {
      id: this.id, role: this.role, term: this.term, vote: this.vote, leader: this.leader, commitIndex: this.commit,
      appliedIndex: this.applied, lastIndex: this.log.lastIndex(), snapshotIndex: this.log.snapshotIndex(),
      config: this.config, progress, transferTarget: this.transferee, fenced: this.fenced, voteHold: this.held,
    };
  }

  get currentRole(): Role { return this.role; }
  get currentTerm(): number { return this.term; }
  get currentLeader(): NodeId | null { return this.leader; }
  get commitIndex(): number { return this.commit; }
  get lastIndex(): number { return this.log.lastIndex(); }
  get isVoteHeld(): boolean { return this.held; }

  // ---------------------------------------------------------------- inputs

  /** Advance time by `ms`. */
  tick(ms: number): void {
    this.now += ms;
    if (this.role === 'leader') {
      if (this.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.transferee !== null && this.now >= this.transferDeadline) this.transferee = null;
      if (this.now >= this.heartbeatDue) {
        this.heartbeatDue = this.now + this.hbMs;
        this.heartbeatAll();
      }
      return;
    }
    if (this.held) {
      // never campaign while held: ask the voters not heard yet for their terms instead
      if (this.now >= this.electionDeadline) this.resetElectionTimer();
      if (this.now >= this.nextProbeAt) this.probeUnheard();
      this.maybeReleaseHold();
      return;
    }
    if (this.now >= this.electionDeadline) {
      if (this.isVoter(this.id) && !this.fenced) this.campaign(this.preVote ? 'pre' : 'real');
      else this.resetElectionTimer();
    }
  }

  /** A message from a peer (any term, possibly stale, duplicated or reordered). */
  receive(m: RaftMessage): void {
    if (m.to !== this.id) return;
    // rule 3 is judged on what we knew before this request (its own term must exceed every term heard)
    this.holdVoteOk = this.held && (m.type === 'Vote' || m.type === 'PreVote') && this.holdMayVote(m.term, m.lastIndex, m.lastTerm);
    if (this.held) this.noteHeard(m);
    this.dispatch(m);
    if (this.held) this.maybeReleaseHold();
  }

  private dispatch(m: RaftMessage): void {
    switch (m.type) {
      case 'Probe':
        // answered by every member, held or not; changes nothing here (not even the term)
        this.send({ type: 'ProbeResp', from: this.id, to: m.from, term: this.term, lastIndex: this.log.lastIndex(), lastTerm: this.lastTerm() });
        return;
      case 'ProbeResp':
        if (m.term > this.term) this.becomeFollower(m.term, null);
        return;
      case 'PreVote': return this.onPreVote(m);
      case 'PreVoteResp':
        if (m.term > this.term && !m.granted) { this.becomeFollower(m.term, null); return; }
        if (this.role === 'precandidate' && !m.granted) this.preRefused.add(m.from);
        if (this.role === 'precandidate' && m.term === this.term + 1) this.tally(m.from, m.granted, 'pre');
        return;
      case 'Vote': return this.onVote(m);
      default:
        break;
    }
    if (m.term > this.term) {
      const fromLeader = m.type === 'Append' || m.type === 'Heartbeat' || m.type === 'Snapshot' || m.type === 'TimeoutNow';
      this.becomeFollower(m.term, fromLeader ? m.from : null);
    } else if (m.term < this.term) {
      // A stale leader: answer with our term so it steps down (it may not hear it otherwise when voters ignore
      // its elections because of the lease).
      if (m.type === 'Append' || m.type === 'Snapshot') {
        this.send({ type: 'AppendResp', from: this.id, to: m.from, term: this.term, success: false, matchIndex: 0, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'Heartbeat') {
        this.send({ type: 'HeartbeatResp', from: this.id, to: m.from, term: this.term, lastIndex: this.log.lastIndex() });
      }
      return;
    }
    switch (m.type) {
      case 'VoteResp':
        if (this.role === 'candidate') this.tally(m.from, m.granted, 'real');
        return;
      case 'Append': return this.onAppend(m);
      case 'Heartbeat': return this.onHeartbeat(m);
      case 'Snapshot': return this.onSnapshot(m);
      case 'TimeoutNow':
        // refused while held: a leadership transfer must not make a member that may have forgotten votes campaign
        if (this.role === 'follower' && this.isVoter(this.id) && !this.fenced && !this.held) this.campaign('transfer');
        return;
      case 'AppendResp': return this.onAppendResp(m);
      case 'HeartbeatResp': return this.onHeartbeatResp(m);
      case 'SnapshotResp': return this.onSnapshotResp(m);
    }
  }

  /**
   * Leader only: append client entries. Returns their index range and term; they are committed when the commit
   * index reaches lastIndex and the entry at that index still has this term.
   */
  propose(items: ReadonlyArray<{ type: EntryType; data: Uint8Array }>): { firstIndex: number; lastIndex: number; term: number } {
    this.assertLeader('propose');
    if (this.transferee !== null) throw new LanceError('NOT_LEADER', `raft node ${this.id}: leadership transfer to ${this.transferee} in progress`, { leader: this.id, transferTo: this.transferee });
    if (items.length === 0) throw new LanceError('INVALID_ARGUMENT', 'propose: no entries');
    for (const [i, it] of items.entries()) {
      if (it.type === EntryType.CONFIG) throw new LanceError('INVALID_ARGUMENT', `propose: entries[${i}].type CONFIG: use the membership commands`);
    }
    const first = this.log.lastIndex() + 1;
    const entries = items.map((it, i): RaftEntry => ({ term: this.term, index: first + i, type: it.type, data: it.data }));
    this.appendLocal(entries);
    this.broadcastAppend();
    return { firstIndex: first, lastIndex: first + entries.length - 1, term: this.term };
  }

  /** The driver finished PersistRequest `seq` (and every earlier one). */
  persisted(seq: number): void {
    if (seq <= this.persistedSeq) return;
    if (seq > this.lastIssuedSeq) throw new LanceError('INTERNAL', `raft node ${this.id}: persisted(${seq}) but only ${this.lastIssuedSeq} issued`);
    this.persistedSeq = seq;
    while (this.outstanding.length > 0 && this.outstanding[0]!.seq <= seq) {
      this.durableIndex = this.outstanding.shift()!.lastIndex;
    }
    for (const o of this.outstanding) this.durableIndex = Math.min(this.durableIndex, o.truncatedTo);
    this.durableIndex = Math.min(this.durableIndex, this.truncatedThisStep, this.log.lastIndex());
    let keep = 0;
    for (const d of this.deferred) {
      if (d.seq <= seq) this.outMessages.push(d.msg);
      else this.deferred[keep++] = d;
    }
    this.deferred.length = keep;
    if (this.role === 'leader') this.maybeCommit();
  }

  /** The application saved a snapshot of its state machine at `index` (<= applied): compact the log. */
  compact(index: number, data: Uint8Array): void {
    if (index <= this.log.snapshotIndex()) return;
    if (index > this.applied) throw new LanceError('INVALID_ARGUMENT', `compact: index ${index} is beyond the applied index ${this.applied}`, { index, applied: this.applied });
    const term = this.log.term(index);
    if (term === undefined) throw new LanceError('INTERNAL', `compact: no term for index ${index}`);
    this.log.compact({ index, term, config: this.configAt(index) }, data);
    this.logDirty = true;
    this.pruneConfigs();
  }

  /**
   * A RaftLog whose entries() returned fewer entries than asked (range not in memory yet) calls this once it can
   * serve them: the leader resumes replication at once instead of at the next heartbeat answer.
   */
  logReadable(): void {
    if (this.role === 'leader') this.broadcastAppend();
  }

  /**
   * The driver's connection to peer `id` was closed or reset by the other side (a crashed process: the kernel
   * closes its sockets at once). If `id` is our leader, stop honouring its lease and campaign soon — after a short
   * delay staggered by rank — instead of after a whole election timeout. Safe whatever the truth is: an election
   * still needs a majority, and pre-vote + the other voters' leases keep a leader that is in fact alive (only the
   * connection broke) in office; this node then follows it again at its next heartbeat.
   */
  peerDisconnected(id: NodeId): void {
    if (this.role !== 'follower' || this.leader !== id || id === this.id) return;
    if (!this.isVoter(this.id) || this.fenced) return;
    this.lastLeaderContact = -Infinity;
    const others = this.config.voters.filter((v) => v !== id);
    const rank = Math.max(0, others.indexOf(this.id));
    const deadline = this.now + rank * this.disconnectStagger + Math.floor(this.random() * this.disconnectStagger);
    if (deadline < this.electionDeadline) this.electionDeadline = deadline;
  }

  /** Fence (or unfence) this member: it stops campaigning and voting, and a leader steps down at once. */
  setFenced(fenced: boolean): void {
    this.fenced = fenced;
    if (fenced && this.role !== 'follower') this.becomeFollower(this.term, null);
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  transferLeadership(to: NodeId): void {
    this.assertLeader('transferLeadership');
    if (to === this.id) return;
    if (!this.isVoter(to)) throw new LanceError('INVALID_ARGUMENT', `transferLeadership: node ${to} is not a voter of this group`, { to });
    this.transferee = to;
    this.transferDeadline = this.now + this.eMax;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'TimeoutNow', from: this.id, to, term: this.term });
    else this.sendAppend(to, pr);
  }

  addLearner(id: NodeId): { index: number } {
    const c = this.config;
    if (c.voters.includes(id) || c.learners.includes(id)) throw new LanceError('CONFLICT', `addLearner: node ${id} is already a member`, { id });
    return this.proposeConfig({ voters: c.voters, learners: [...c.learners, id] }, 'addLearner');
  }

  promote(id: NodeId): { index: number } {
    const c = this.config;
    if (!c.learners.includes(id)) throw new LanceError('CONFLICT', `promote: node ${id} is not a learner`, { id });
    const pr = this.progress.get(id);
    const lag = this.log.lastIndex() - (pr?.match ?? 0);
    if (lag > this.promoteMaxLag) throw new LanceError('CONFLICT', `promote: node ${id} is ${lag} entries behind (max ${this.promoteMaxLag}); wait for catch-up`, { id, lag });
    return this.proposeConfig({ voters: [...c.voters, id], learners: c.learners.filter((x) => x !== id) }, 'promote');
  }

  removeServer(id: NodeId): { index: number } {
    const c = this.config;
    if (!c.voters.includes(id) && !c.learners.includes(id)) throw new LanceError('NOT_FOUND', `removeServer: node ${id} is not a member`, { id });
    if (c.voters.length === 1 && c.voters[0] === id) throw new LanceError('CONFLICT', `removeServer: node ${id} is the last voter`, { id });
    return this.proposeConfig({ voters: c.voters.filter((x) => x !== id), learners: c.learners.filter((x) => x !== id) }, 'removeServer');
  }

  /** Take the outputs accumulated since the last call. */
  ready(): Ready {
    // apply: restore first (if a snapshot was installed), then committed entries
    const restore = this.outRestore;
    this.outRestore = null;
    let committed: RaftEntry[] = [];
    if (this.commit > this.applied) {
      // a lazily loading log may return fewer entries than asked: apply what we got, the rest next time
      committed = this.log.entries(this.applied + 1, this.commit + 1, Infinity);
      if (committed.length > 0) this.applied = committed[committed.length - 1]!.index;
    }

    let persist: PersistRequest | null = null;
    const hs: HardState = { term: this.term, vote: this.hardVote(), commit: this.commit };
    const hsSync = hs.term !== this.lastHard.term || hs.vote !== this.lastHard.vote;
    const hsChanged = hsSync || hs.commit !== this.lastHard.commit;
    if (this.logDirty || hsChanged || this.snapshotToPersist) {
      const sync = this.logDirty || hsSync || this.snapshotToPersist !== null;
      const seq = ++this.lastIssuedSeq;
      if (sync) this.lastSyncSeq = seq;
      persist = { seq, hardState: hsChanged ? hs : null, sync, snapshot: this.snapshotToPersist };
      this.outstanding.push({ seq, lastIndex: this.log.lastIndex(), truncatedTo: this.truncatedThisStep, sync });
      this.lastHard = hs;
      this.logDirty = false;
      this.snapshotToPersist = null;
      this.truncatedThisStep = Infinity;
    }

    const events: RaftStateEvent[] = [];
    if (this.lastEvent.role !== this.role || this.lastEvent.term !== this.term || this.lastEvent.leader !== this.leader) {
      this.lastEvent = { role: this.role, term: this.term, leader: this.leader };
      events.push({ type: 'state', ...this.lastEvent });
    }
    const messages = this.outMessages;
    this.outMessages = [];
    const holdReleased = this.outHoldReleased;
    this.outHoldReleased = null;
    return { messages, persist, restore, committed, commitIndex: this.commit, events, holdReleased };
  }

  // ---------------------------------------------------------------- elections

  private resetElectionTimer(): void {
    this.electionDeadline = this.now + this.eMin + Math.floor(this.random() * (this.eMax - this.eMin));
  }

  private isVoter(id: NodeId): boolean {
    return this.config.voters.includes(id);
  }

  private lastTerm(): number {
    return this.log.term(this.log.lastIndex()) ?? 0;
  }

  private upToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.log.lastIndex());
  }

  /** Followers that heard from a leader within the minimum election timeout ignore (pre)votes: no disruption. */
  private inLease(): boolean {
    if (!this.checkQuorum || this.leader === null) return false;
    if (this.role === 'leader') return true;
    return this.now - this.lastLeaderContact < this.eMin;
  }

  private campaign(kind: 'pre' | 'real' | 'transfer'): void {
    this.leader = null;
    this.votes = new Map([[this.id, true]]);
    this.preRefused.clear();
    this.resetElectionTimer();
    const others = this.config.voters.filter((v) => v !== this.id);
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.lastTerm();
    if (kind === 'pre') {
      this.role = 'precandidate';
      for (const to of others) this.send({ type: 'PreVote', from: this.id, to, term: this.term + 1, lastIndex, lastTerm });
      if (this.votes.size >= quorum(this.config.voters)) this.campaign('real');
      return;
    }
    this.role = 'candidate';
    this.term += 1;
    this.vote = this.id;
    this.progress.clear();
    this.transferee = null;
    // Vote requests leave only after term+vote are durable: a crash must not let us vote twice in a term.
    for (const to of others) this.sendAfterPersist({ type: 'Vote', from: this.id, to, term: this.term, lastIndex, lastTerm, transfer: kind === 'transfer' });
    if (this.votes.size >= quorum(this.config.voters)) this.becomeLeader();
  }

  private tally(from: NodeId, granted: boolean, kind: 'pre' | 'real'): void {
    if (!this.isVoter(from)) return;
    this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const [id, g] of this.votes) {
      if (!this.isVoter(id)) continue;
      if (g) yes++;
      else no++;
    }
    const q = quorum(this.config.voters);
    if (yes >= q) {
      if (kind === 'pre') this.campaign('real');
      else this.becomeLeader();
    } else if (no >= q) {
      this.becomeFollower(this.term, null);
    }
  }

  private onPreVote(m: Extract<RaftMessage, { type: 'PreVote' }>): void {
    // Two voters whose timers expired together (e.g. both starved by a loaded machine, then woken at once) would
    // grant each other's pre-vote and split the real vote. Between equally up-to-date pre-candidates the lower id
    // wins the tie: it refuses the higher one, which grants it and then votes for it. Pre-votes change no state,
    // so this only affects who campaigns first, never safety.
    // Only while the higher one may still grant us: once it refused us this round (e.g. it was still within the old
    // leader's lease), refusing it back would leave both waiting a whole election timeout.
    const tie = this.role === 'precandidate' && this.id < m.from && !this.preRefused.has(m.from) &&
      m.lastTerm === this.lastTerm() && m.lastIndex === this.log.lastIndex();
    const grant = !this.fenced && (!this.held || this.holdVoteOk) && !tie && m.term > this.term && !this.inLease() && this.upToDate(m.lastIndex, m.lastTerm);
    // granted: echo the proposed term so the pre-candidate can match it; rejected: our term, which may teach it
    this.send({ type: 'PreVoteResp', from: this.id, to: m.from, term: grant ? m.term : this.term, granted: grant });
  }

  private onVote(m: Extract<RaftMessage, { type: 'Vote' }>): void {
    if (m.term < this.term) {
      this.send({ type: 'VoteResp', from: this.id, to: m.from, term: this.term, granted: false });
      return;
    }
    if (m.term > this.term) {
      if (!m.transfer && this.inLease()) return; // a live leader exists: ignore the disruption
      this.becomeFollower(m.term, null);
    }
    const grant = !this.fenced && (!this.held || this.holdVoteOk) && (this.vote === null || this.vote === m.from) && this.leader === null && this.upToDate(m.lastIndex, m.lastTerm);
    if (grant) {
      // Rule 3 grants a vote but does not end the hold: our log may still lack entries we helped commit, so every
      // later vote must pass the same test until rule 1 (caught up with a leader). The vote stays in memory only
      // (the hard state keeps VOTE_HOLD): after a restart the candidate is heard again with its term >= this one,
      // and rule 3 only grants terms above every term heard.
      this.vote = m.from;
      this.resetElectionTimer();
    }
    this.sendAfterPersist({ type: 'VoteResp', from: this.id, to: m.from, term: this.term, granted: grant });
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.leader = leader;
    if (leader !== null) this.lastLeaderContact = this.now;
    this.progress.clear();
    this.transferee = null;
    this.votes.clear();
    this.resetElectionTimer();
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.leader = this.id;
    this.transferee = null;
    this.progress.clear();
    this.syncProgress();
    const noop: RaftEntry = { term: this.term, index: this.log.lastIndex() + 1, type: EntryType.NOOP, data: EMPTY };
    this.leaderStartIndex = noop.index;
    this.appendLocal([noop]);
    this.heartbeatDue = this.now + this.hbMs;
    this.broadcastAppend();
    this.maybeCommit();
  }

  // ---------------------------------------------------------------- vote hold (README "Vote hold")

  /** the vote as persisted: a held member writes VOTE_HOLD so a restart before the release is held again */
  private hardVote(): NodeId | null {
    return this.held ? VOTE_HOLD : this.vote;
  }

  /** the sender's term as this message shows it (a PreVote carries the term it would campaign in; a granted PreVoteResp echoes ours) */
  private noteHeard(m: RaftMessage): void {
    let t: number;
    if (m.type === 'PreVote') t = m.term - 1;
    else if (m.type === 'PreVoteResp') {
      if (m.granted) return;
      t = m.term;
    } else t = m.term;
    const prev = this.heard.get(m.from);
    if (prev === undefined || t > prev) this.heard.set(m.from, t);
    if (m.type === 'ProbeResp' || m.type === 'Vote' || m.type === 'PreVote') {
      const p = this.heardLog.get(m.from);
      if (!p || m.lastTerm > p.lastTerm || (m.lastTerm === p.lastTerm && m.lastIndex > p.lastIndex)) this.heardLog.set(m.from, { lastIndex: m.lastIndex, lastTerm: m.lastTerm });
    }
  }

  /**
   * Rule 3 (a held member may still vote, e.g. when the other voters need its vote to elect anyone): every other
   * voter has been heard with its term and its log; a (pre)vote for a term above every term heard cannot repeat a
   * forgotten vote (those were in terms <= the candidates' terms, all heard), and a candidate whose log is at least
   * as up to date as every voter's heard log (and ours) holds every entry committed with our help (each sits on some
   * other voter too, which showed us a log containing it). The member stays held.
   */
  private holdMayVote(term: number, lastIndex: number, lastTerm: number): boolean {
    const voters = this.config.voters;
    if (voters.length === 0 || !voters.includes(this.id)) return false;
    for (const v of voters) {
      if (v === this.id) continue;
      const t = this.heard.get(v);
      const p = this.heardLog.get(v);
      if (t === undefined || p === undefined || term <= t) return false;
      if (!(lastTerm > p.lastTerm || (lastTerm === p.lastTerm && lastIndex >= p.lastIndex))) return false;
    }
    return this.upToDate(lastIndex, lastTerm);
  }

  private noteLeaderCommit(leader: NodeId, commit: number): void {
    const h = this.holdLeaderCommit;
    if (h === null || h.leader !== leader || h.term !== this.term) this.holdLeaderCommit = { leader, term: this.term, commit };
  }

  private noteHoldMatch(leader: NodeId, index: number): void {
    const h = this.holdMatch;
    if (h === null || h.leader !== leader || h.term !== this.term) this.holdMatch = { leader, term: this.term, index };
    else if (index > h.index) h.index = index;
  }

  private probeUnheard(): void {
    this.nextProbeAt = this.now + this.hbMs;
    for (const v of this.config.voters) {
      if (v !== this.id && !this.heardLog.has(v)) this.send({ type: 'Probe', from: this.id, to: v, term: this.term });
    }
  }

  /**
   * A held member may acknowledge entries once it heard every other voter and its term is at least every term they
   * showed: then the leader it answers is not older than any term it may have acted in before losing its storage.
   */
  private holdCanAck(): boolean {
    const voters = this.config.voters;
    if (voters.length === 0) return false;
    for (const v of voters) {
      if (v === this.id) continue;
      const t = this.heard.get(v);
      if (t === undefined || t > this.term) return false;
    }
    return true;
  }

  private maybeReleaseHold(): void {
    if (!this.held) return;
    const voters = this.config.voters;
    if (voters.length === 0) return;
    let heardCount = 0;
    let maxHeard = 0;
    for (const v of voters) {
      if (v === this.id) continue;
      const t = this.heard.get(v);
      if (t === undefined) continue;
      heardCount++;
      maxHeard = Math.max(maxHeard, t);
    }
    const others = voters.length - (voters.includes(this.id) ? 1 : 0);
    // Rule 1: every voter heard; following a leader whose term is >= all of theirs; caught up to the commit index
    // that leader sent us (a value it reached after we restarted) AND to an entry of its own term (so that commit
    // index covers every entry committed in earlier terms, which it holds by leader completeness).
    const h = this.holdLeaderCommit;
    if (heardCount === others && this.role === 'follower' && this.leader !== null && h !== null && h.leader === this.leader &&
      h.term === this.term && this.term >= maxHeard && this.commit >= h.commit && this.commit > 0 && this.log.term(this.commit) === this.term) {
      this.releaseHold('caught-up', this.leader, maxHeard);
      return;
    }
    // Rule 2 (first start): a majority counting ourselves heard and nobody has ever left term 0: no election ever
    // happened, so there is no vote and no acknowledgement to forget.
    if (maxHeard === 0 && heardCount + (others < voters.length ? 1 : 0) >= quorum(voters)) {
      this.releaseHold('bootstrap', this.term > 0 ? VOTE_UNKNOWN : null, 0);
    }
  }

  private releaseHold(reason: VoteHoldRelease['reason'], vote: NodeId | null, maxHeard: number): void {
    this.held = false;
    this.term = Math.max(this.term, maxHeard);
    this.vote = vote;
    const heard: Record<string, number> = {};
    for (const [id, t] of [...this.heard.entries()].sort((a, b) => a[0] - b[0])) heard[String(id)] = t;
    this.outHoldReleased = { reason, term: this.term, vote, leader: this.leader, heard, heldMs: this.now - this.heldSince, commitIndex: this.commit };
    this.heard.clear();
    this.heardLog.clear();
    this.holdLeaderCommit = null;
    this.holdMatch = null;
  }

  // ---------------------------------------------------------------- follower side

  private noteLeader(from: NodeId): void {
    if (this.role !== 'follower') this.becomeFollower(this.term, from);
    this.leader = from;
    this.lastLeaderContact = this.now;
    this.resetElectionTimer();
  }

  private onAppend(m: Extract<RaftMessage, { type: 'Append' }>): void {
    this.noteLeader(m.from);
    if (this.held) this.noteLeaderCommit(m.from, m.commit);
    let prevIndex = m.prevIndex;
    let prevTerm = m.prevTerm;
    let entries = m.entries;
    const lastNew = m.prevIndex + m.entries.length;
    if (entries.length > 0 && entries[0]!.index !== prevIndex + 1) {
      throw new LanceError('INTERNAL', `raft node ${this.id}: Append from ${m.from}: entries[0].index ${entries[0]!.index} != prevIndex+1 ${prevIndex + 1}`);
    }
    if (prevIndex < this.commit) {
      // Everything up to our commit index matches any leader of this term: skip it (it may be compacted here).
      const skip = Math.min(entries.length, this.commit - prevIndex);
      if (skip === entries.length) {
        this.ackAppend(m, lastNew);
        return;
      }
      prevTerm = entries[skip - 1]!.term;
      prevIndex += skip;
      entries = entries.slice(skip);
    }
    const last = this.log.lastIndex();
    const myTerm = prevIndex <= last ? this.log.term(prevIndex) : undefined;
    if (myTerm === undefined || myTerm !== prevTerm) {
      let hintIndex: number;
      let hintTerm = 0;
      if (myTerm === undefined) {
        hintIndex = last + 1;
      } else {
        hintTerm = myTerm;
        hintIndex = prevIndex;
        const floor = Math.max(this.commit, this.log.snapshotIndex()) + 1;
        while (hintIndex - 1 >= floor && this.log.term(hintIndex - 1) === myTerm) hintIndex--;
      }
      this.sendAfterPersist({ type: 'AppendResp', from: this.id, to: m.from, term: this.term, success: false, matchIndex: 0, rejectedIndex: m.prevIndex, hintIndex, hintTerm });
      return;
    }
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.index > this.log.lastIndex()) {
        this.appendLocal(k === 0 ? entries : entries.slice(k));
        break;
      }
      if (this.log.term(e.index) !== e.term) {
        if (e.index <= this.commit) throw new LanceError('INTERNAL', `raft node ${this.id}: conflict at committed index ${e.index} (commit ${this.commit})`);
        this.truncateLocal(e.index - 1);
        this.appendLocal(entries.slice(k));
        break;
      }
    }
    const newCommit = Math.min(m.commit, lastNew);
    if (newCommit > this.commit) this.commit = newCommit;
    this.ackAppend(m, lastNew);
  }

  /**
   * Acknowledge an Append that matched up to lastNew. A held member that may not acknowledge yet (it has not heard
   * every voter, or the leader's term is below a term it heard) keeps the entries but answers "stored, not
   * acknowledged": the leader counts nothing for it (a possibly stale leader must not reach a quorum with the help of
   * a member that forgot its term) and streams on from lastNew + 1.
   */
  private ackAppend(m: Extract<RaftMessage, { type: 'Append' }>, lastNew: number): void {
    if (this.held) this.noteHoldMatch(m.from, lastNew);
    if (this.held && !this.holdCanAck()) {
      this.send({ type: 'AppendResp', from: this.id, to: m.from, term: this.term, success: false, matchIndex: 0, rejectedIndex: m.prevIndex, hintIndex: lastNew + 1, hintTerm: 0, hold: true });
      return;
    }
    this.sendAfterPersist({ type: 'AppendResp', from: this.id, to: m.from, term: this.term, success: true, matchIndex: lastNew, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 });
  }

  private onHeartbeat(m: Extract<RaftMessage, { type: 'Heartbeat' }>): void {
    this.noteLeader(m.from);
    // A heartbeat's commit assumes the leader's match index for us, which may predate a wiped disk (our log may hold
    // a stale leader's entries there): a held member takes it only up to where an Append of this leader matched.
    const hm = this.holdMatch;
    const verified = !this.held ? Infinity : hm !== null && hm.leader === m.from && hm.term === this.term ? hm.index : 0;
    const c = Math.min(m.commit, this.log.lastIndex(), verified);
    if (c > this.commit) this.commit = c;
    this.send({ type: 'HeartbeatResp', from: this.id, to: m.from, term: this.term, lastIndex: this.log.lastIndex() });
  }

  private onSnapshot(m: Extract<RaftMessage, { type: 'Snapshot' }>): void {
    this.noteLeader(m.from);
    const meta = m.meta;
    if (this.held) {
      this.noteLeaderCommit(m.from, meta.index);
      this.noteHoldMatch(m.from, Math.max(meta.index, this.commit));
    }
    const holdNoAck = this.held && !this.holdCanAck();
    if (meta.index <= this.commit) {
      if (holdNoAck) this.send({ type: 'AppendResp', from: this.id, to: m.from, term: this.term, success: false, matchIndex: 0, rejectedIndex: meta.index, hintIndex: this.commit + 1, hintTerm: 0, hold: true });
      else this.sendAfterPersist({ type: 'SnapshotResp', from: this.id, to: m.from, term: this.term, matchIndex: this.commit });
      return;
    }
    if (this.log.term(meta.index) === meta.term) {
      // our log already has the snapshot's last entry: keep what follows it (we may have acknowledged it)
      this.log.compact(meta, m.data);
    } else {
      this.log.installSnapshot(meta, m.data);
      this.truncatedThisStep = 0;
      this.durableIndex = 0;
    }
    this.logDirty = true;
    this.snapshotToPersist = { meta, data: m.data };
    this.outRestore = { meta, data: m.data };
    this.commit = meta.index;
    this.applied = meta.index;
    const kept = this.configs.filter((c) => c.index > meta.index && c.index <= this.log.lastIndex());
    this.configs = [{ index: meta.index, config: normalizeConfig(meta.config) }, ...kept];
    if (holdNoAck) this.send({ type: 'AppendResp', from: this.id, to: m.from, term: this.term, success: false, matchIndex: 0, rejectedIndex: meta.index, hintIndex: meta.index + 1, hintTerm: 0, hold: true });
    else this.sendAfterPersist({ type: 'SnapshotResp', from: this.id, to: m.from, term: this.term, matchIndex: meta.index });
  }

  // ---------------------------------------------------------------- leader side

  private assertLeader(op: string): void {
    if (this.role !== 'leader') {
      throw new LanceError('NOT_LEADER', `${op}: raft node ${this.id} is not the leader (leader: ${this.leader ?? 'unknown'}, term ${this.term})`, { leader: this.leader, term: this.term });
    }
  }

  private proposeConfig(next: ClusterConfig, op: string): { index: number } {
    this.assertLeader(op);
    const cur = this.configs[this.configs.length - 1]!;
    if (cur.index > this.commit) throw new LanceError('CONFLICT', `${op}: membership change at index ${cur.index} is not committed yet (one change at a time)`, { pending: cur.index });
    if (this.commit < this.leaderStartIndex) throw new LanceError('CONFLICT', `${op}: the new leader has not committed an entry of its term yet; retry`, { term: this.term });
    if (this.transferee !== null) throw new LanceError('CONFLICT', `${op}: leadership transfer in progress`);
    const index = this.log.lastIndex() + 1;
    this.appendLocal([{ term: this.term, index, type: EntryType.CONFIG, data: encodeConfig(next) }]);
    this.broadcastAppend();
    return { index };
  }

  private syncProgress(): void {
    if (this.role !== 'leader') return;
    const c = this.config;
    const members = new Set([...c.voters, ...c.learners]);
    for (const id of members) {
      if (id === this.id || this.progress.has(id)) continue;
      this.progress.set(id, {
        match: 0, next: this.log.lastIndex() + 1, state: 'probe', paused: false, inflight: [],
        lastAckAt: this.now, lastHeardAt: this.now, snapshotIndex: 0, snapshotSentAt: 0,
      });
    }
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
  }

  private quorumActive(): boolean {
    const voters = this.config.voters;
    let active = 0;
    for (const v of voters) {
      if (v === this.id) { active++; continue; }
      const pr = this.progress.get(v);
      if (pr && this.now - pr.lastHeardAt < this.eMax) active++;
    }
    // a leader outside the config (being removed) still needs a majority of the config
    return active >= quorum(voters);
  }

  private heartbeatAll(): void {
    for (const [to, pr] of this.progress) {
      this.send({ type: 'Heartbeat', from: this.id, to, term: this.term, commit: Math.min(this.commit, pr.match) });
      // no answer for a while: assume lost Appends/Snapshot and probe again once the peer answers a heartbeat
      if (pr.state === 'replicate' && pr.inflight.length > 0 && this.now - pr.lastAckAt >= this.eMin) this.toProbe(pr);
      else if (pr.state === 'snapshot' && this.now - pr.snapshotSentAt >= this.eMax) this.toProbe(pr);
    }
  }

  private toProbe(pr: Progress): void {
    pr.state = 'probe';
    pr.paused = false;
    pr.inflight = [];
    pr.next = pr.match + 1;
  }

  private broadcastAppend(): void {
    for (const [to, pr] of this.progress) this.sendAppend(to, pr);
  }

  private sendAppend(to: NodeId, pr: Progress): void {
    for (;;) {
      if (pr.state === 'snapshot') return;
      if (pr.state === 'probe' && pr.paused) return;
      if (pr.state === 'replicate' && pr.inflight.length >= this.maxInflight) return;
      const last = this.log.lastIndex();
      const prevIndex = pr.next - 1;
      const prevTerm = this.log.term(prevIndex);
      if (prevTerm === undefined) {
        this.sendSnapshot(to, pr);
        return;
      }
      const entries = pr.next <= last ? this.log.entries(pr.next, Math.min(last + 1, pr.next + this.maxEntries), this.maxBytes) : [];
      if (entries.length === 0 && pr.state === 'replicate') return;
      this.send({ type: 'Append', from: this.id, to, term: this.term, prevIndex, prevTerm, entries, commit: this.commit });
      if (pr.state === 'probe') {
        pr.paused = true;
        return;
      }
      pr.next = prevIndex + entries.length + 1;
      pr.inflight.push(pr.next - 1);
      if (pr.next > last) return;
    }
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot();
    if (!snap) throw new LanceError('INTERNAL', `raft node ${this.id}: follower ${to} needs index ${pr.next} but the log has no snapshot`);
    pr.state = 'snapshot';
    pr.snapshotIndex = snap.meta.index;
    pr.snapshotSentAt = this.now;
    pr.inflight = [];
    this.send({ type: 'Snapshot', from: this.id, to, term: this.term, meta: snap.meta, data: snap.data });
  }

  private onAppendResp(m: Extract<RaftMessage, { type: 'AppendResp' }>): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.lastHeardAt = this.now;
    if (m.success) {
      const advanced = m.matchIndex > pr.match;
      if (advanced) {
        pr.match = m.matchIndex;
        pr.lastAckAt = this.now;
      }
      if (pr.state === 'probe' && pr.match >= pr.next - 1) {
        // the probe landed: stream optimistically from here
        pr.state = 'replicate';
        pr.inflight = [];
        pr.lastAckAt = this.now;
      } else if (pr.state === 'snapshot' && pr.match >= pr.snapshotIndex) {
        this.toProbe(pr);
      }
      let drop = 0;
      while (drop < pr.inflight.length && pr.inflight[drop]! <= pr.match) drop++;
      if (drop > 0) pr.inflight.splice(0, drop);
      if (pr.next <= pr.match) pr.next = pr.match + 1;
      if (advanced) {
        this.maybeCommit();
        if (this.role !== 'leader') return;
      }
      if (this.transferee === m.from && pr.match === this.log.lastIndex()) {
        this.send({ type: 'TimeoutNow', from: this.id, to: m.from, term: this.term });
      }
      this.sendAppend(m.from, pr);
      return;
    }
    if (m.hold) {
      // a follower in vote hold stored our entries up to hintIndex - 1 without acknowledging them: count nothing
      // for it (match 0: it may have lost what it acknowledged before) and stream on from hintIndex
      if (pr.state === 'probe' && m.rejectedIndex !== pr.next - 1) return;
      if (pr.state === 'snapshot' && m.hintIndex <= pr.snapshotIndex) return;
      this.toProbe(pr);
      pr.match = 0;
      pr.next = Math.max(1, Math.min(m.hintIndex, this.log.lastIndex() + 1));
      // nothing new for it: wait for the next heartbeat answer (else an empty Append and its answer ping-pong)
      if (pr.next <= this.log.lastIndex()) this.sendAppend(m.from, pr);
      else pr.paused = true;
      return;
    }
    // rejection: ignore stale ones. In 'replicate' a rejection at or below the match index is NOT ignored: either
    // a reordered old answer or a follower that lost what it acknowledged (wiped disk) — lowering match is safe in
    // both cases, keeping it would count an acknowledgement the follower no longer backs.
    if (pr.state === 'probe' && m.rejectedIndex !== pr.next - 1) return;
    if (pr.state === 'snapshot') return;
    if (m.rejectedIndex <= pr.match) {
      // The follower refuses an index it acknowledged: its storage lost data (wiped or restored disk). Forget the
      // acknowledgement (lowering match never endangers safety) and refill it from where its log really ends.
      pr.match = Math.max(0, Math.min(pr.match, (m.hintTerm === 0 ? m.hintIndex : m.rejectedIndex) - 1));
    }
    let next = m.hintIndex;
    if (m.hintTerm > 0) {
      let i = Math.min(m.rejectedIndex, this.log.lastIndex());
      const floor = this.log.snapshotIndex();
      while (i > floor && (this.log.term(i) ?? 0) > m.hintTerm) i--;
      if (i > floor && this.log.term(i) === m.hintTerm) next = i + 1;
    }
    this.toProbe(pr);
    pr.next = Math.max(pr.match + 1, Math.min(next, this.log.lastIndex() + 1));
    this.sendAppend(m.from, pr);
  }

  private onHeartbeatResp(m: Extract<RaftMessage, { type: 'HeartbeatResp' }>): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.lastHeardAt = this.now;
    if (m.lastIndex < pr.match && pr.state !== 'snapshot') {
      // shorter than acknowledged: lost storage, or a reordered old answer. Either way re-probing is safe.
      pr.match = m.lastIndex;
      this.toProbe(pr);
    }
    if (pr.match < this.log.lastIndex()) {
      if (pr.state === 'probe') pr.paused = false;
      this.sendAppend(m.from, pr);
    }
  }

  private onSnapshotResp(m: Extract<RaftMessage, { type: 'SnapshotResp' }>): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.lastHeardAt = this.now;
    if (m.matchIndex > pr.match) {
      pr.match = m.matchIndex;
      pr.lastAckAt = this.now;
    }
    if (pr.state === 'snapshot' && pr.match >= pr.snapshotIndex) this.toProbe(pr);
    else if (pr.state === 'snapshot') return;
    this.maybeCommit();
    if (this.role === 'leader') this.sendAppend(m.from, pr);
  }

  private maybeCommit(): void {
    const voters = this.config.voters;
    if (voters.length === 0) return;
    const matches = voters.map((v) => (v === this.id ? this.durableIndex : this.progress.get(v)?.match ?? 0));
    matches.sort((a, b) => b - a);
    const n = matches[quorum(voters) - 1]!;
    // Raft §5.4.2: only entries of the current term are committed by counting replicas
    if (n > this.commit && this.log.term(n) === this.term) {
      this.commit = n;
      this.pruneConfigs();
      // a leader removed from the config leads until the change commits, then steps down (thesis §4.2.2)
      if (!this.isVoter(this.id) && this.configs[this.configs.length - 1]!.index <= this.commit) {
        this.becomeFollower(this.term, null);
        return;
      }
      // followers learn the new commit index with the next Append or heartbeat
    }
  }

  // ---------------------------------------------------------------- log + persistence plumbing

  private appendLocal(entries: readonly RaftEntry[]): void {
    if (entries.length === 0) return;
    this.log.append(entries);
    this.logDirty = true;
    let changed = false;
    for (const e of entries) {
      if (e.type === EntryType.CONFIG) {
        this.configs.push({ index: e.index, config: decodeConfig(e.data, `entry ${e.index}`) });
        changed = true;
      }
    }
    if (changed) this.syncProgress();
  }

  private truncateLocal(after: number): void {
    this.log.truncateAfter(after);
    this.logDirty = true;
    this.truncatedThisStep = Math.min(this.truncatedThisStep, after);
    this.durableIndex = Math.min(this.durableIndex, after);
    while (this.configs.length > 1 && this.configs[this.configs.length - 1]!.index > after) this.configs.pop();
  }

  /** Keep the config in force at the snapshot/commit point and everything after it. */
  private pruneConfigs(): void {
    const floor = Math.min(this.commit, this.log.snapshotIndex());
    let i = 0;
    while (i + 1 < this.configs.length && this.configs[i + 1]!.index <= floor) i++;
    if (i > 0) this.configs.splice(0, i);
  }

  private configAt(index: number): ClusterConfig {
    let c = this.configs[0]!.config;
    for (const x of this.configs) if (x.index <= index) c = x.config;
    return c;
  }

  private send(msg: RaftMessage): void {
    this.outMessages.push(msg);
  }

  /** Responses that promise durability (votes, acks) wait for every sync request issued so far, including this call's. */
  private sendAfterPersist(msg: RaftMessage): void {
    const pendingSync = this.logDirty || this.snapshotToPersist !== null || this.term !== this.lastHard.term || this.hardVote() !== this.lastHard.vote;
    const barrier = pendingSync ? this.lastIssuedSeq + 1 : this.lastSyncSeq;
    if (barrier > this.persistedSeq) this.deferred.push({ seq: barrier, msg });
    else this.outMessages.push(msg);
  }
}
