/**
 * Fresh storage and the Raft vote hold (broker/src/raft/README.md "Vote hold").
 *
 * A node whose data dir had no node.json when this process started (first boot of a founder, or a wiped disk
 * restarted under its old id) has forgotten any term, vote and acknowledgement it may have given before. node.json
 * then carries `voteHold: 'pending'` (written by ensureNodeIdentity when it creates the file). While it is pending,
 * every Raft group opened WITHOUT persisted term/vote state (term 0, no vote) starts held; a held group persists
 * VOTE_HOLD as its vote, so it stays held across restarts by itself. The marker is cleared (atomic rewrite) once the
 * metadata group was released, a partition reconcile ran with the metadata applied through the release point (so
 * every partition this node is a replica of has been opened), and no group is held any more. Partitions created
 * after that start with all voters at term 0 and are not held.
 *
 * A data dir rebuilt by a restore from the object store has a consistent term state and is not fresh: the restore
 * writes node.json without the marker, and `markRestored(dataDir)` clears it on a node.json that has it.
 */
import * as path from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { atomicWriteJson } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import type { HardState, VoteHoldRelease } from '../raft/types.ts';
import { NODE_FILE, readNodeIdentity } from '../server/node-identity.ts';

/** Pure: does a group open held? (a persisted VOTE_HOLD holds it regardless: the Raft core reads that itself) */
export function groupStartsHeld(markerPending: boolean, hs: HardState): boolean {
  return markerPending && hs.term === 0 && hs.vote === null;
}

/** Pure: may node.json's marker be cleared? */
export function markerCanClear(s: { pending: boolean; reconciledAfterMeta: boolean; heldGroups: number }): boolean {
  return s.pending && s.reconciledAfterMeta && s.heldGroups === 0;
}

/** Removes `voteHold` from node.json (atomic rewrite); no-op when absent. */
export async function clearVoteHold(dataDir: string): Promise<boolean> {
  const id = await readNodeIdentity(dataDir);
  if (!id || id.voteHold === undefined) return false;
  const { voteHold: _drop, ...rest } = id;
  await atomicWriteJson(path.join(dataDir, NODE_FILE), rest);
  return true;
}

/**
 * For the cold-start restore (broker/src/tiering): the data dir was rebuilt with a consistent restored term state,
 * so it is NOT fresh. Call after writing node.json (a restore that writes node.json without the marker needs nothing).
 */
export async function markRestored(dataDir: string): Promise<void> {
  await clearVoteHold(dataDir);
}

/** The RaftHost's view (raft-host.ts calls these). */
export interface VoteHoldPolicy {
  shouldHold(group: string, hs: HardState): boolean;
  onHeld(group: string): void;
  onReleased(group: string, info: VoteHoldRelease): void;
  onRemoved(group: string): void;
}

export class FreshNodeHold implements VoteHoldPolicy {
  private pendingFlag: boolean;
  private readonly held = new Set<string>();
  private metaHeld = false;
  private metaReleaseCommit: number | null = null;
  private reconciledAfterMeta = false;
  private clearing: Promise<void> | null = null;

  private constructor(
    private readonly dataDir: string,
    private readonly metaGroup: string,
    private readonly logger: Logger,
    pending: boolean,
    private readonly onMetaReleased: () => void,
  ) {
    this.pendingFlag = pending;
  }

  /** onMetaReleased: schedule a partition reconcile (it opens this node's replicas; reconcileDone() then counts) */
  static async open(dataDir: string, metaGroup: string, logger: Logger, onMetaReleased: () => void = () => undefined): Promise<FreshNodeHold> {
    const id = await readNodeIdentity(dataDir);
    const pending = id?.voteHold === 'pending';
    if (pending) logger.warn({ dataDir }, 'fresh storage (node.json voteHold: pending): Raft groups without a term start in vote hold');
    return new FreshNodeHold(dataDir, metaGroup, logger, pending, onMetaReleased);
  }

  get pending(): boolean {
    return this.pendingFlag;
  }

  heldGroups(): string[] {
    return [...this.held];
  }

  shouldHold(_group: string, hs: HardState): boolean {
    return groupStartsHeld(this.pendingFlag, hs);
  }

  onHeld(group: string): void {
    this.held.add(group);
    if (group === this.metaGroup) this.metaHeld = true;
  }

  onReleased(group: string, info: VoteHoldRelease): void {
    this.held.delete(group);
    if (group === this.metaGroup) {
      this.metaReleaseCommit = info.commitIndex;
      if (this.pendingFlag) this.onMetaReleased();
    }
    this.maybeClear();
  }

  onRemoved(group: string): void {
    this.held.delete(group);
    this.maybeClear();
  }

  /**
   * A partition reconcile finished. `metaApplied`: the metadata applied index when it started; `metaCaughtUp`: the
   * metadata group followed a leader and applied an entry of its term (used when the metadata group was not held in
   * this process: released before a restart that came before the marker was cleared).
   */
  reconcileDone(metaApplied: number, metaCaughtUp: boolean): void {
    if (!this.pendingFlag || this.held.has(this.metaGroup)) return;
    const ok = this.metaReleaseCommit !== null ? metaApplied >= this.metaReleaseCommit : !this.metaHeld && metaCaughtUp;
    if (ok) this.reconciledAfterMeta = true;
    this.maybeClear();
  }

  private maybeClear(): void {
    if (this.clearing || !markerCanClear({ pending: this.pendingFlag, reconciledAfterMeta: this.reconciledAfterMeta, heldGroups: this.held.size })) return;
    this.pendingFlag = false;
    this.clearing = clearVoteHold(this.dataDir).then(
      () => this.logger.info({ dataDir: this.dataDir }, 'vote hold: every group released; node.json voteHold marker cleared'),
      (err: unknown) => {
        // still pending on disk: the next start holds the groups without state again (safe, only slower)
        this.logger.error({ err, dataDir: this.dataDir }, 'vote hold: clearing the node.json marker failed');
      },
    );
  }

  /** resolves once a started marker clear finished (tests, shutdown) */
  async settled(): Promise<void> {
    await this.clearing;
  }
}

/** `lance_raft_vote_hold`: Raft groups on this node in vote hold right now. */
export function registerVoteHoldGauge(registry: Registry, count: () => number): Gauge {
  return new Gauge({
    name: 'lance_raft_vote_hold', help: 'Raft groups on this node in vote hold (fresh storage: no vote until caught up; README "Vote hold")',
    registers: [registry], collect(this: Gauge) { this.set(count()); },
  });
}
