/**
 * In-memory RaftLog for tests and the simulator. It models durability the way a file does: writes land in the
 * "page cache" at once and become durable only when the driver syncs them (sync(seq) after mark(seq)).
 * crashImage() returns what a restart would find: the durable state plus, optionally, a prefix of the unsynced
 * writes (possibly torn), because a crash may or may not have flushed them.
 */
import { LanceError } from '../common/errors.ts';
import type { RaftEntry, RaftLog, SnapshotMeta } from './types.ts';

type Snap = { meta: SnapshotMeta; data: Uint8Array };
type Op =
  | { kind: 'append'; entries: readonly RaftEntry[] }
  | { kind: 'truncate'; after: number }
  | { kind: 'compact'; snap: Snap }
  | { kind: 'install'; snap: Snap };

interface Image {
  snap: Snap | null;
  entries: RaftEntry[];
}

function snapIndexOf(img: Image): number {
  return img.snap?.meta.index ?? 0;
}

function applyOp(img: Image, op: Op): void {
  switch (op.kind) {
    case 'append': {
      const expect = snapIndexOf(img) + img.entries.length + 1;
      // a torn earlier write may leave a gap: entries after a gap are unreachable, drop them like a reader would
      if (op.entries[0]!.index !== expect) return;
      for (const e of op.entries) img.entries.push(e);
      return;
    }
    case 'truncate': {
      const keep = op.after - snapIndexOf(img);
      if (keep >= 0 && keep < img.entries.length) img.entries.length = keep;
      return;
    }
    case 'compact': {
      const drop = op.snap.meta.index - snapIndexOf(img);
      img.entries = drop >= img.entries.length ? [] : img.entries.slice(Math.max(0, drop));
      img.snap = op.snap;
      return;
    }
    case 'install':
      img.snap = op.snap;
      img.entries = [];
  }
}

export class MemoryRaftLog implements RaftLog {
  private snap: Snap | null;
  private ents: RaftEntry[];
  private durable: Image;
  private pending: Op[] = [];
  /** op count (absolute) at each mark */
  private marks: Array<{ seq: number; upTo: number }> = [];
  private opsBase = 0;

  /** called before every append (the simulator checks log matching here) */
  private readonly beforeAppend: ((log: MemoryRaftLog, entries: readonly RaftEntry[]) => void) | undefined;

  constructor(init?: { snapshot?: Snap | null; entries?: readonly RaftEntry[]; beforeAppend?: (log: MemoryRaftLog, entries: readonly RaftEntry[]) => void }) {
    this.beforeAppend = init?.beforeAppend;
    this.snap = init?.snapshot ?? null;
    this.ents = [...(init?.entries ?? [])];
    this.durable = { snap: this.snap, entries: [...this.ents] };
  }

  snapshotIndex(): number { return this.snap?.meta.index ?? 0; }
  snapshotTerm(): number { return this.snap?.meta.term ?? 0; }
  lastIndex(): number { return this.snapshotIndex() + this.ents.length; }

  term(index: number): number | undefined {
    const s = this.snapshotIndex();
    if (index === s) return this.snapshotTerm();
    if (index < s || index > this.lastIndex()) return undefined;
    return this.ents[index - s - 1]!.term;
  }

  entry(index: number): RaftEntry | undefined {
    const s = this.snapshotIndex();
    return index > s ? this.ents[index - s - 1] : undefined;
  }

  entries(lo: number, hi: number, maxBytes: number): RaftEntry[] {
    const s = this.snapshotIndex();
    if (lo <= s) throw new LanceError('INTERNAL', `memory log: entries(${lo}) below snapshot ${s}`);
    const end = Math.min(hi, this.lastIndex() + 1);
    const out: RaftEntry[] = [];
    let bytes = 0;
    for (let i = lo; i < end; i++) {
      const e = this.ents[i - s - 1]!;
      bytes += e.data.byteLength + 32;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  append(entries: readonly RaftEntry[]): void {
    if (entries.length === 0) return;
    if (entries[0]!.index !== this.lastIndex() + 1) {
      throw new LanceError('INTERNAL', `memory log: append at ${entries[0]!.index}, expected ${this.lastIndex() + 1}`);
    }
    this.beforeAppend?.(this, entries);
    for (const e of entries) this.ents.push(e);
    this.pending.push({ kind: 'append', entries });
  }

  truncateAfter(index: number): void {
    const s = this.snapshotIndex();
    if (index < s) throw new LanceError('INTERNAL', `memory log: truncateAfter(${index}) below snapshot ${s}`);
    if (index >= this.lastIndex()) return;
    this.ents.length = index - s;
    this.pending.push({ kind: 'truncate', after: index });
  }

  compact(meta: SnapshotMeta, data: Uint8Array): void {
    const drop = meta.index - this.snapshotIndex();
    if (drop <= 0) return;
    this.ents = drop >= this.ents.length ? [] : this.ents.slice(drop);
    this.snap = { meta, data };
    this.pending.push({ kind: 'compact', snap: this.snap });
  }

  installSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.snap = { meta, data };
    this.ents = [];
    this.pending.push({ kind: 'install', snap: this.snap });
  }

  snapshot(): Snap | null {
    return this.snap;
  }

  // ------------------------------------------------ durability model

  /** Everything written so far belongs to persist request `seq`. */
  mark(seq: number): void {
    this.marks.push({ seq, upTo: this.opsBase + this.pending.length });
  }

  /** Request `seq` (and all before it) was fsynced. */
  sync(seq: number): void {
    let upTo = -1;
    while (this.marks.length > 0 && this.marks[0]!.seq <= seq) upTo = this.marks.shift()!.upTo;
    if (upTo < 0) return;
    const n = upTo - this.opsBase;
    for (let i = 0; i < n; i++) applyOp(this.durable, this.pending[i]!);
    this.pending.splice(0, n);
    this.opsBase = upTo;
  }

  /** Syncs everything written so far (unit tests that do not model crashes). */
  syncAll(): void {
    for (const op of this.pending) applyOp(this.durable, op);
    this.opsBase += this.pending.length;
    this.pending = [];
    this.marks = [];
  }

  /** number of writes not yet synced */
  unsyncedWrites(): number {
    return this.pending.length;
  }

  /** seqs whose writes are all within the first `writes` unsynced writes (they would be durable if those survive) */
  seqsCoveredBy(writes: number): number[] {
    return this.marks.filter((m) => m.upTo <= this.opsBase + writes).map((m) => m.seq);
  }

  /**
   * The log a restart would find: the synced state plus the first `survive` unsynced writes (a crash may have
   * flushed some of them); `tearLast` keeps only that many entries of the last one if it is an append.
   */
  crashImage(survive = 0, tearLast?: number): MemoryRaftLog {
    const img: Image = { snap: this.durable.snap, entries: [...this.durable.entries] };
    for (let i = 0; i < Math.min(survive, this.pending.length); i++) {
      const op = this.pending[i]!;
      if (i === survive - 1 && op.kind === 'append' && tearLast !== undefined) {
        if (tearLast > 0) applyOp(img, { kind: 'append', entries: op.entries.slice(0, tearLast) });
      } else {
        applyOp(img, op);
      }
    }
    return new MemoryRaftLog({ snapshot: img.snap, entries: img.entries, beforeAppend: this.beforeAppend });
  }

  /** the last unsynced write if it is an append: its entry count (for tearing it) */
  pendingAppendLength(i: number): number | undefined {
    const op = this.pending[i];
    return op?.kind === 'append' ? op.entries.length : undefined;
  }
}
