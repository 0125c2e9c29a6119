/**
 * Raft core types: entries, messages, the log abstraction the core drives, and what a step returns.
 * The core (./node.ts) is a pure state machine: it never does I/O, reads no clock and no global randomness.
 */
import { EntryType } from '../storage/types.ts';

export { EntryType };
export type NodeId = number;

/** An entry of a Raft log. Immutable once created: the same object may sit in several logs and messages. */
export interface RaftEntry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** opaque bytes: a Kafka RecordBatch, a metadata command, a JSON ClusterConfig (CONFIG), empty (NOOP) */
  readonly data: Uint8Array;
}

/** Membership. Voters count for elections and commit; learners only receive the log. */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMeta {
  /** last log index the snapshot covers */
  readonly index: number;
  /** term of that entry */
  readonly term: number;
  /** membership in force at `index` */
  readonly config: ClusterConfig;
}

/**
 * Special `vote` values in a HardState (node ids are >= 0):
 * VOTE_HOLD: this member is in vote hold (its storage was fresh; see README "Vote hold") and must stay held after a
 * restart. VOTE_UNKNOWN: this member may have voted in its current term before it lost its storage: it grants no
 * vote in this term (the next term clears it like any vote).
 */
export const VOTE_HOLD = -2;
export const VOTE_UNKNOWN = -1;

/** What must be durable across a crash besides the log. */
export interface HardState {
  term: number;
  /** the vote of `term`, VOTE_HOLD or VOTE_UNKNOWN (above), or null */
  vote: NodeId | null;
  /** commit index: a hint only (losing it is safe, it is relearned); it may be written without fsync */
  commit: number;
}

/**
 * The log as the core sees it: writes are applied at once to this view (like write(2) without fsync) and made
 * durable when the driver executes the PersistRequest the core emits afterwards. Index 0 has term 0.
 * The broker backs this with the partition's segment log; the simulator with ./memory-log.ts.
 */
export interface RaftLog {
  /** last index covered by the snapshot (0 if none); entries start at snapshotIndex()+1 */
  snapshotIndex(): number;
  snapshotTerm(): number;
  lastIndex(): number;
  /** term of entry `index`; the snapshot's term at snapshotIndex(); undefined when compacted away or beyond the end */
  term(index: number): number | undefined;
  /**
   * entries [lo, hi): stops early once maxBytes is exceeded, but returns at least one entry when lo < hi and the
   * entry is in memory. A disk-backed log may return [] (or a prefix) when the range is not cached: it then loads it
   * asynchronously and calls node.logReadable(); the core retries (replication and apply both tolerate it).
   * At construction the core scans the tail after the snapshot for CONFIG entries: that scan must be served fully.
   */
  entries(lo: number, hi: number, maxBytes: number): RaftEntry[];
  /** appends entries; entries[0].index === lastIndex() + 1, contiguous */
  append(entries: readonly RaftEntry[]): void;
  /** removes every entry after `index` (index >= snapshotIndex()) */
  truncateAfter(index: number): void;
  /** the application has a snapshot covering [1, meta.index]: drop entries <= meta.index, keep the rest */
  compact(meta: SnapshotMeta, data: Uint8Array): void;
  /** a snapshot from the leader replaces the whole log */
  installSnapshot(meta: SnapshotMeta, data: Uint8Array): void;
  /** the latest snapshot (to send to a lagging follower), or null */
  snapshot(): { meta: SnapshotMeta; data: Uint8Array } | null;
}

interface Hdr {
  from: NodeId;
  to: NodeId;
  /** sender's term (PreVote: the term the sender would campaign in) */
  term: number;
}

export type RaftMessage =
  | (Hdr & { type: 'PreVote'; lastIndex: number; lastTerm: number })
  | (Hdr & { type: 'PreVoteResp'; granted: boolean })
  /** transfer: sent after TimeoutNow, voters must not ignore it because they recently heard from a leader */
  | (Hdr & { type: 'Vote'; lastIndex: number; lastTerm: number; transfer: boolean })
  | (Hdr & { type: 'VoteResp'; granted: boolean })
  | (Hdr & { type: 'Append'; prevIndex: number; prevTerm: number; entries: readonly RaftEntry[]; commit: number })
  /**
   * success: matchIndex = the follower's log matches the leader's up to here (and it is durable).
   * failure: rejectedIndex = the prevIndex refused; hintIndex/hintTerm = where to retry (hintTerm 0: log too short,
   * hintIndex = follower's lastIndex + 1; otherwise the follower's term at prevIndex and its first index of that term).
   * hold: a follower in vote hold that may not acknowledge yet stored the entries up to hintIndex - 1 but does NOT
   * acknowledge them: the leader counts nothing for it and streams on from hintIndex.
   */
  | (Hdr & { type: 'AppendResp'; success: boolean; matchIndex: number; rejectedIndex: number; hintIndex: number; hintTerm: number; hold?: boolean })
  /** commit = min(leader commit, the follower's match index): safe for the follower to adopt */
  | (Hdr & { type: 'Heartbeat'; commit: number })
  /** lastIndex: the follower's last log index, so a leader notices a follower that lost its log (wiped disk) */
  | (Hdr & { type: 'HeartbeatResp'; lastIndex: number })
  /** The whole snapshot in one message; the transport may chunk `data` (the core needs it only once complete). */
  | (Hdr & { type: 'Snapshot'; meta: SnapshotMeta; data: Uint8Array })
  | (Hdr & { type: 'SnapshotResp'; matchIndex: number })
  | (Hdr & { type: 'TimeoutNow' })
  /**
   * Vote hold: a member with fresh storage asks a voter for its current term (answered by any member, changes no
   * state on the receiver; ProbeResp carries the receiver's term and the end of its log).
   */
  | (Hdr & { type: 'Probe' })
  | (Hdr & { type: 'ProbeResp'; lastIndex: number; lastTerm: number });

export type RaftMessageType = RaftMessage['type'];

/**
 * Make everything the core wrote to the RaftLog so far durable, write the hard state, then call
 * `node.persisted(seq)`. Requests must complete in seq order (completing seq N implies all < N).
 */
export interface PersistRequest {
  seq: number;
  /** write atomically if present */
  hardState: HardState | null;
  /**
   * true: the log changed and/or term/vote changed: fsync before reporting. false: only the commit hint changed,
   * the driver may write it without fsync (or skip it) and report at once.
   */
  sync: boolean;
  /** a snapshot received from the leader: the state machine must be restored from it durably as part of this request */
  snapshot: { meta: SnapshotMeta; data: Uint8Array } | null;
}

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

export interface RaftStateEvent {
  type: 'state';
  role: Role;
  term: number;
  leader: NodeId | null;
}

/** The vote hold ended (README "Vote hold"): log it, count it; the new term/vote is in this call's `persist`. */
export interface VoteHoldRelease {
  /** 'caught-up': rule 1 (every voter heard, caught up with a leader of the highest term); 'bootstrap': rule 2 */
  reason: 'caught-up' | 'bootstrap';
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  /** highest term heard from each voter while held */
  heard: Record<string, number>;
  /** simulated/driver time (sum of tick(ms)) spent held */
  heldMs: number;
  commitIndex: number;
}

/** What the driver must do after a call into the node. */
export interface Ready {
  /** send these (any order, may be lost: the core retries) */
  messages: RaftMessage[];
  /** execute and report with persisted(seq) */
  persist: PersistRequest | null;
  /** restore the state machine from this snapshot BEFORE applying `committed` */
  restore: { meta: SnapshotMeta; data: Uint8Array } | null;
  /** newly committed entries, in index order: apply them to the state machine (CONFIG and NOOP included) */
  committed: RaftEntry[];
  commitIndex: number;
  /** role/term/leader changed (the latest state at the end of the call) */
  events: RaftStateEvent[];
  /** the vote hold ended in this call (null otherwise) */
  holdReleased: VoteHoldRelease | null;
}

export interface ProgressStatus {
  id: NodeId;
  voter: boolean;
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  /** leader's last index - match */
  lag: number;
  lastHeardMsAgo: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  snapshotIndex: number;
  config: ClusterConfig;
  /** leader only */
  progress: ProgressStatus[];
  transferTarget: NodeId | null;
  fenced: boolean;
  /** in vote hold: grants no (pre)vote, does not campaign (README "Vote hold") */
  voteHold: boolean;
}
