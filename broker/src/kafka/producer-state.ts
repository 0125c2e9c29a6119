/**
 * Idempotent producer state of one partition: per producer id, the current epoch and the last 5 batches'
 * sequence ranges with the offsets they were written at (Kafka keeps 5: max.in.flight.requests.per.connection).
 *
 * The state is DERIVED FROM THE LOG: every RecordBatch carries producerId, producerEpoch and baseSequence in its
 * header, so `observe(batch header, baseOffset)` over the log rebuilds it (a new leader, a restart). To bound that
 * scan, `snapshot()` is written atomically to `producer-state.json` in the partition dir with the offset it covers;
 * on open, the log is scanned from there.
 *
 * Rules (Kafka's ProducerStateManager):
 * - producerId < 0: not idempotent, no check.
 * - epoch < current epoch → INVALID_PRODUCER_EPOCH (fenced).
 * - epoch > current epoch (or an unknown producer): a new epoch; baseSequence must be 0 for a known producer
 *   moving to a new epoch, else OUT_OF_ORDER_SEQUENCE_NUMBER. An UNKNOWN producer id is accepted at any sequence
 *   (Kafka ≥ 2.5, KIP-360: its state may have been removed by retention); UNKNOWN_PRODUCER_ID is not sent.
 * - same epoch: a batch equal (first and last sequence) to one of the last 5 is a DUPLICATE: not appended again,
 *   answered with success and the ORIGINAL base offset; otherwise baseSequence must be lastSequence + 1 (wrapping at
 *   2^31-1 → 0) else OUT_OF_ORDER_SEQUENCE_NUMBER.
 */

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import { atomicWriteJson } from '../common/fsutil.ts';

export const MAX_CACHED_BATCHES = 5;
const INT32_MAX = 0x7fffffff;

export interface ProducerBatchInfo {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  /** lastOffsetDelta + 1 */
  offsetCount: number;
}

interface CachedBatch {
  firstSeq: number;
  lastSeq: number;
  baseOffset: number;
}
interface ProducerEntry {
  epoch: number;
  batches: CachedBatch[];
}

export type SequenceDecision =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number }
  | { kind: 'out-of-order'; message: string }
  | { kind: 'fenced'; message: string };

export interface ProducerStateSnapshot {
  version: 1;
  /** log offset of the first batch NOT reflected */
  nextOffset: number;
  producers: Array<{ producerId: number; epoch: number; batches: CachedBatch[] }>;
}

function lastSeqOf(b: ProducerBatchInfo): number {
  return (b.baseSequence + b.offsetCount - 1) % (INT32_MAX + 1);
}
function nextSeq(seq: number): number {
  return seq === INT32_MAX ? 0 : seq + 1;
}

export class ProducerStateTable {
  private readonly producers = new Map<number, ProducerEntry>();
  /** offset after the last batch observed */
  nextOffset = 0;
  /** batches observed since the last snapshot was started (periodic snapshots, see maybeSaveProducerState) */
  sinceSnapshot = 0;
  saving = false;

  static fromSnapshot(s: ProducerStateSnapshot): ProducerStateTable {
    const t = new ProducerStateTable();
    t.nextOffset = s.nextOffset;
    for (const p of s.producers) t.producers.set(p.producerId, { epoch: p.epoch, batches: p.batches.map((b) => ({ ...b })) });
    return t;
  }

  snapshot(): ProducerStateSnapshot {
    return {
      version: 1,
      nextOffset: this.nextOffset,
      producers: [...this.producers].map(([producerId, e]) => ({ producerId, epoch: e.epoch, batches: e.batches.map((b) => ({ ...b })) })),
    };
  }

  get size(): number {
    return this.producers.size;
  }

  /** Pure check of one batch against the current state (no change). */
  check(b: ProducerBatchInfo): SequenceDecision {
    if (b.producerId < 0) return { kind: 'append' };
    const e = this.producers.get(b.producerId);
    if (!e) return { kind: 'append' };
    if (b.producerEpoch < e.epoch) {
      return { kind: 'fenced', message: `producer ${b.producerId}: epoch ${b.producerEpoch} is older than the current epoch ${e.epoch} (fenced)` };
    }
    if (b.producerEpoch > e.epoch) {
      return b.baseSequence === 0
        ? { kind: 'append' }
        : { kind: 'out-of-order', message: `producer ${b.producerId}: new epoch ${b.producerEpoch} must start at sequence 0, got ${b.baseSequence}` };
    }
    const last = lastSeqOf(b);
    const dup = e.batches.find((x) => x.firstSeq === b.baseSequence && x.lastSeq === last);
    if (dup) return { kind: 'duplicate', baseOffset: dup.baseOffset };
    const tail = e.batches[e.batches.length - 1];
    if (tail && b.baseSequence !== nextSeq(tail.lastSeq)) {
      return { kind: 'out-of-order', message: `producer ${b.producerId} epoch ${b.producerEpoch}: expected sequence ${nextSeq(tail.lastSeq)}, got ${b.baseSequence}` };
    }
    return { kind: 'append' };
  }

  /** Records a batch written at `baseOffset` (after a successful append, and when scanning the log). */
  observe(b: ProducerBatchInfo, baseOffset: number): void {
    this.nextOffset = Math.max(this.nextOffset, baseOffset + b.offsetCount);
    this.sinceSnapshot++;
    if (b.producerId < 0) return;
    let e = this.producers.get(b.producerId);
    if (!e || b.producerEpoch > e.epoch) {
      e = { epoch: b.producerEpoch, batches: [] };
      this.producers.set(b.producerId, e);
    } else if (b.producerEpoch < e.epoch) {
      return; // cannot be in a log written under these rules; ignore rather than regress
    }
    e.batches.push({ firstSeq: b.baseSequence, lastSeq: lastSeqOf(b), baseOffset });
    if (e.batches.length > MAX_CACHED_BATCHES) e.batches.shift();
  }
}

/** The producer fields of a stored RecordBatch v2 (header bytes 43..56). */
export function producerInfoOf(batch: Buffer): ProducerBatchInfo {
  return {
    producerId: Number(batch.readBigInt64BE(43)),
    producerEpoch: batch.readInt16BE(51),
    baseSequence: batch.readInt32BE(53),
    offsetCount: batch.readInt32BE(23) + 1,
  };
}

// ---------------------------------------------------------------- persistence: snapshot file + log scan


export const PRODUCER_STATE_FILE = 'producer-state.json';

const snapshotSchema = z.object({
  version: z.literal(1),
  nextOffset: z.number().int().nonnegative(),
  producers: z.array(z.object({
    producerId: z.number().int(),
    epoch: z.number().int(),
    batches: z.array(z.object({ firstSeq: z.number().int(), lastSeq: z.number().int(), baseOffset: z.number().int() })),
  })),
});

/** What the rebuild needs of a partition log (PartitionLog satisfies it). */
export interface ScannableLog {
  readonly logStartOffset: number;
  readonly nextOffset: number;
  read(fromOffset: number, maxBytes: number): Promise<Array<{ type: number; firstOffset: number; offsetCount: number; payload: Buffer }>>;
}

const DATA_ENTRY = 1;

/**
 * Rebuilds a partition's producer state: the snapshot in `dir` (if valid and not beyond the log end) plus a scan of
 * the log after it. A missing or unusable snapshot means a scan from the log start (slower, same result).
 */
export async function loadProducerState(dir: string, log: ScannableLog): Promise<ProducerStateTable> {
  let table = new ProducerStateTable();
  try {
    const parsed = snapshotSchema.safeParse(JSON.parse(await fsp.readFile(path.join(dir, PRODUCER_STATE_FILE), 'utf8')));
    if (parsed.success && parsed.data.nextOffset <= log.nextOffset) table = ProducerStateTable.fromSnapshot(parsed.data);
  } catch {
    // no snapshot (or unreadable): rebuild from the log alone
  }
  await scanInto(table, log, Math.max(table.nextOffset, log.logStartOffset), log.nextOffset);
  return table;
}

/** Observes every data batch of `log` in [from, end) (whole entries) into `table`. */
async function scanInto(table: ProducerStateTable, log: ScannableLog, start: number, end: number): Promise<void> {
  let from = start;
  table.nextOffset = from;
  while (from < end) {
    const entries = await log.read(from, 1 << 20);
    if (entries.length === 0) break;
    let progressed = false;
    for (const e of entries) {
      const next = e.firstOffset + e.offsetCount;
      if (next <= from) continue;
      if (e.firstOffset >= end) break;
      if (e.type === DATA_ENTRY && e.payload.length >= 61) table.observe(producerInfoOf(e.payload), e.firstOffset);
      from = next;
      progressed = true;
    }
    if (!progressed) break;
  }
  table.nextOffset = Math.max(table.nextOffset, from);
}

/** Writes the snapshot atomically (temp → fsync → rename → fsync dir). */
export async function saveProducerState(dir: string, table: ProducerStateTable): Promise<void> {
  await atomicWriteJson(path.join(dir, PRODUCER_STATE_FILE), table.snapshot());
}

/**
 * Starts a snapshot when `every` batches were observed since the last one (none while one is being written), so the
 * scan after a crash stays bounded. A snapshot may cover batches not yet fsynced: if they are lost, its nextOffset
 * is beyond the log end at the next open and it is ignored (full scan), so it is never wrong.
 */
export function maybeSaveProducerState(dir: string, table: ProducerStateTable, every: number, onError: (e: unknown) => void): void {
  if (table.sinceSnapshot < every || table.saving) return;
  table.sinceSnapshot = 0;
  table.saving = true;
  saveProducerState(dir, table).catch(onError).finally(() => {
    table.saving = false;
  });
}

// ---------------------------------------------------------------- cluster mode: a replicated partition

/**
 * Producer state of one partition replica in cluster mode (broker/src/cluster/). The replicated entries ARE the
 * state: every replica observes each COMMITTED data batch in log order (`onCommitted`), so a follower that becomes
 * leader already knows every producer's last sequences, and a restarted node rebuilds them while Raft re-applies its
 * log. The leader also checks against its own uncommitted proposals: `leaderReady()` (called when the no-op of its
 * term commits — every earlier entry is then committed and observed) starts an overlay copy that sees each
 * proposal as it is appended; `stepDown()` drops it. Until then idempotent batches are refused as NOT_LEADER
 * (retriable) so no check runs against an incomplete state.
 */
export class ReplicatedProducerState {
  private committed = new ProducerStateTable();
  private leader: ProducerStateTable | null = null;
  /** while the log below the Raft snapshot floor is scanned: committed batches wait here, in order */
  private seeding: { queue: Array<[Buffer, number]>; wantLeader: boolean } | null = null;
  private generation = 0;

  /**
   * Rebuilds the committed state from the batches of `log` in [log start, `upTo`): the entries below a partition's
   * Raft snapshot floor (sealed segments; installed by segment transfer) are never re-applied through
   * `onCommitted`, so after a restart or an install they are read from the log. Until the scan is done, committed
   * batches are queued and `leaderReady` is deferred (idempotent batches get NOT_LEADER, retriable). A scan that
   * fails leaves the state from the batches applied since (logged by `onError`).
   */
  seed(log: ScannableLog, upTo: number, onError: (e: unknown) => void): Promise<void> {
    const gen = ++this.generation;
    this.committed = new ProducerStateTable();
    this.leader = null;
    const pending = { queue: [] as Array<[Buffer, number]>, wantLeader: this.seeding?.wantLeader ?? false };
    this.seeding = pending;
    const table = new ProducerStateTable();
    return scanInto(table, log, log.logStartOffset, upTo).catch(onError).then(() => {
      if (gen !== this.generation) return;
      this.committed = table;
      this.seeding = null;
      for (const [b, o] of pending.queue) this.onCommitted(b, o);
      if (pending.wantLeader) this.leaderReady();
    });
  }

  get ready(): boolean {
    return this.leader !== null;
  }

  get producerCount(): number {
    return this.committed.size;
  }

  /** a committed DATA entry's payload (one RecordBatch) at `baseOffset` */
  onCommitted(batch: Buffer, baseOffset: number): void {
    if (this.seeding) {
      this.seeding.queue.push([batch, baseOffset]);
      return;
    }
    if (batch.length >= 61) this.committed.observe(producerInfoOf(batch), baseOffset);
  }

  leaderReady(): void {
    if (this.seeding) {
      this.seeding.wantLeader = true;
      return;
    }
    this.leader = ProducerStateTable.fromSnapshot(this.committed.snapshot());
  }

  stepDown(): void {
    this.leader = null;
    if (this.seeding) this.seeding.wantLeader = false;
  }

  /**
   * The leader's decision for one produce request: `append`, or `duplicate` (its first batch was already written at
   * `baseOffset`: answer with that, append nothing). A gap or an old epoch throws (OUT_OF_ORDER_SEQUENCE_NUMBER /
   * INVALID_PRODUCER_EPOCH via `details.field`). `what` names the partition in the message.
   */
  check(batches: ReadonlyArray<ProducerBatchInfo & { isTransactional?: boolean }>, what: string): { kind: 'append' } | { kind: 'duplicate'; baseOffset: number } {
    // transactions are out of scope (InitProducerId refuses transactional ids); a transactional batch is refused
    // with INVALID_RECORD (non-retriable) rather than stored as if it were committed
    const tx = batches.findIndex((b) => b.isTransactional === true);
    if (tx >= 0) throw new LanceError('INVALID_ARGUMENT', `${what}: batch ${tx} is transactional; transactions are not supported by this broker`, { field: 'records' });
    const idempotent = batches.some((b) => b.producerId >= 0);
    if (!idempotent) return { kind: 'append' };
    if (!this.leader) throw new LanceError('NOT_LEADER', `${what}: the new leader is still applying its log (idempotent producer state); retry`, { leader: null });
    for (let i = 0; i < batches.length; i++) {
      const d = this.leader.check(batches[i]!);
      if (d.kind === 'duplicate' && i === 0) return { kind: 'duplicate', baseOffset: d.baseOffset };
      if (d.kind === 'out-of-order') throw new LanceError('INVALID_ARGUMENT', `${what}: ${d.message}`, { field: 'sequence' });
      if (d.kind === 'fenced') throw new LanceError('INVALID_ARGUMENT', `${what}: ${d.message}`, { field: 'producerEpoch' });
    }
    return { kind: 'append' };
  }

  /** the leader appended these batches (in order) starting at `baseOffset` */
  onProposed(batches: readonly ProducerBatchInfo[], baseOffset: number): void {
    if (!this.leader) return;
    let at = baseOffset;
    for (const b of batches) {
      this.leader.observe(b, at);
      at += b.offsetCount;
    }
  }
}
