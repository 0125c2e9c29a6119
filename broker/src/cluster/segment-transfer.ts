/**
 * Segment transfer: catch-up of a far-behind or brand-new replica of a PARTITION group by copying whole sealed
 * segment files instead of replaying entries. Design (broker/src/cluster/README.md "Segment transfer"):
 *
 * - The partition log IS the state machine, so a partition "snapshot" at raft index S is simply the log prefix
 *   [log start, S]. The leader's PartitionRaftLog presents a snapshot floor S = the last index of a sealed segment
 *   (`chooseSnapshotFloor`): entries ≤ S are "compacted" from the Raft core's point of view (term() is undefined
 *   below S), so the core sends a `Snapshot` message to a follower whose next index is ≤ S. Its `data` is a
 *   `SnapshotDescriptor` (JSON): which sealed segments make up [log start, S], their sizes and boundary terms, and
 *   the node to pull them from. No segment bytes travel inside the Raft message.
 * - The follower's core calls `installSnapshot`; the adapter queues an install operation that PULLS each missing
 *   segment in chunks (`SEGMENT_CHUNK_METHOD` over the transport's binary RPC frames), writes it to
 *   `<partition>/incoming/*.part`, fsyncs, verifies it (size + CRC and contiguity of every entry via
 *   storage/verify.ts `scanSegmentFile`, header and boundary terms against the descriptor), renames it to `.seg`,
 *   then commits the swap with `install.json` (see partition-raft-log.ts). The Raft core's `SnapshotResp` (= ack)
 *   leaves only after that persist request completed.
 * - Everything here except the chunk reader/fetcher is pure.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';
import { fsyncDir } from '../common/fsutil.ts';
import type { ClusterConfig, NodeId } from '../raft/types.ts';
import { scanSegmentFile } from '../storage/verify.ts';

export const SEGMENT_CHUNK_METHOD = 'segment.chunk';
/** default chunk size of a pull (one BIN_RESP frame) */
export const DEFAULT_CHUNK_BYTES = 4 << 20;
/** chunk pulls in flight per segment */
export const DEFAULT_INFLIGHT_CHUNKS = 4;

const int = z.number().int().nonnegative();

/** One sealed segment file as the leader has it (identity + what the follower checks after the copy). */
export const SegmentRefSchema = z.strictObject({
  baseOffset: int, baseIndex: int.min(1), lastIndex: int.min(1), nextOffset: int, prevTerm: int, lastTerm: int, size: int,
});
export type SegmentRef = z.infer<typeof SegmentRefSchema>;

const ConfigSchema = z.strictObject({ voters: z.array(int), learners: z.array(int) });

/** The point just before the first stored entry: index = firstIndex - 1, its term, the offset of the first entry, membership there. */
export const LogStartSchema = z.strictObject({ index: int, term: int, nextOffset: int, config: ConfigSchema });
export type LogStart = z.infer<typeof LogStartSchema>;

export const SnapshotDescriptorSchema = z.strictObject({
  v: z.literal(1),
  group: z.string().min(1),
  /** the node that holds the segments (the leader when it sent the snapshot) */
  source: int,
  /** last raft index covered = the last entry of the last segment */
  index: int.min(1),
  term: int,
  /** Kafka offset after `index` (the follower's next offset, the high watermark after install) */
  nextOffset: int,
  logStart: LogStartSchema,
  /** the sealed segments holding (logStart.index, index]; empty when the leader's log starts right after `index` */
  segments: z.array(SegmentRefSchema),
});
export type SnapshotDescriptor = z.infer<typeof SnapshotDescriptorSchema>;

export function encodeDescriptor(d: SnapshotDescriptor): Buffer {
  return Buffer.from(JSON.stringify(d), 'utf8');
}

/** Parses and checks a descriptor (wire boundary): contiguity of the segments and that they end at `index`. */
export function decodeDescriptor(data: Uint8Array, what: string): SnapshotDescriptor {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw new LanceError('CORRUPT', `${what}: snapshot descriptor is not JSON`, { field: 'snapshot.data' });
  }
  const r = SnapshotDescriptorSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new LanceError('CORRUPT', `${what}: snapshot descriptor field ${i.path.join('.') || '(root)'}: ${i.message}`, { field: `snapshot.${i.path.join('.')}` });
  }
  const d = r.data;
  const bad = (field: string, msg: string): never => {
    throw new LanceError('CORRUPT', `${what}: snapshot descriptor ${field}: ${msg}`, { field: `snapshot.${field}` });
  };
  if (d.segments.length === 0) {
    if (d.logStart.index !== d.index || d.logStart.term !== d.term || d.logStart.nextOffset !== d.nextOffset) bad('segments', `empty, but the log start (${d.logStart.index}) is not the snapshot point (${d.index})`);
    return d;
  }
  const s0 = d.segments[0]!;
  if (s0.baseIndex !== d.logStart.index + 1 || s0.baseOffset !== d.logStart.nextOffset || s0.prevTerm !== d.logStart.term) {
    bad('segments.0', `does not start at the log start (index ${d.logStart.index + 1}, offset ${d.logStart.nextOffset}, prev term ${d.logStart.term})`);
  }
  d.segments.forEach((s, i) => {
    if (s.lastIndex < s.baseIndex || s.nextOffset < s.baseOffset) bad(`segments.${i}`, 'ends before it starts');
    const p = d.segments[i - 1];
    if (p && (s.baseIndex !== p.lastIndex + 1 || s.baseOffset !== p.nextOffset || s.prevTerm !== p.lastTerm)) bad(`segments.${i}`, `does not continue segments.${i - 1}`);
  });
  const last = d.segments[d.segments.length - 1]!;
  if (last.lastIndex !== d.index || last.lastTerm !== d.term || last.nextOffset !== d.nextOffset) bad('index', `the last segment ends at ${last.lastIndex}/term ${last.lastTerm}/offset ${last.nextOffset}, not ${d.index}/${d.term}/${d.nextOffset}`);
  return d;
}

/** What the floor decision sees of a segment. */
export interface FloorCandidate {
  sealed: boolean;
  /** 0 when empty */
  firstIndex: number;
  lastIndex: number;
  sizeBytes: number;
}

/**
 * Pure "entries or segments" decision. Returns the snapshot floor: the highest raft index S such that a follower
 * whose next index is ≤ S gets segments instead of entries. S is the last index of a sealed segment that is
 * (a) committed (≤ `commit`: a snapshot must hold committed data only; the follower adopts S as its commit index),
 * (b) followed by at least `minTailBytes` of log (a follower just behind gets entries, not a whole segment).
 * Never below `base` (the log start: entries before it are gone).
 */
export function chooseSnapshotFloor(segs: readonly FloorCandidate[], base: number, commit: number, minTailBytes: number): number {
  let floor = base;
  let tail = 0;
  for (let i = segs.length - 1; i >= 0; i--) {
    const s = segs[i]!;
    if (s.sealed && s.firstIndex > 0 && s.lastIndex <= commit && tail >= minTailBytes && s.lastIndex > floor) {
      floor = s.lastIndex;
      break;
    }
    tail += s.sizeBytes;
  }
  return floor;
}

/**
 * Pure install plan: the follower keeps the longest prefix of its own segments that are identical in range to
 * the descriptor's and end with the same term at the same index (Raft's log matching: same index + term ⇒ same
 * entries before; same offsets ⇒ byte-identical files), and fetches the rest.
 */
export function planInstall(local: readonly SegmentRef[], d: SnapshotDescriptor): { keep: SegmentRef[]; fetch: SegmentRef[] } {
  let k = 0;
  while (k < local.length && k < d.segments.length) {
    const a = local[k]!;
    const b = d.segments[k]!;
    if (a.baseOffset !== b.baseOffset || a.baseIndex !== b.baseIndex || a.lastIndex !== b.lastIndex || a.nextOffset !== b.nextOffset || a.lastTerm !== b.lastTerm || a.prevTerm !== b.prevTerm) break;
    k++;
  }
  return { keep: d.segments.slice(0, k), fetch: d.segments.slice(k) };
}

/** Pure: chunk ranges [pos, pos+len) covering a file of `size` bytes. */
export function chunkRanges(size: number, chunkBytes: number): Array<{ pos: number; len: number }> {
  if (!(chunkBytes > 0)) throw new LanceError('INVALID_ARGUMENT', `chunkBytes must be > 0, got ${chunkBytes}`, { field: 'chunkBytes' });
  const out: Array<{ pos: number; len: number }> = [];
  for (let pos = 0; pos < size; pos += chunkBytes) out.push({ pos, len: Math.min(chunkBytes, size - pos) });
  return out;
}

/** File name of a verified staged segment (identity in the name so a restart can reuse it). */
export function stagedName(r: SegmentRef): string {
  return `${r.baseOffset}-${r.baseIndex}-${r.lastIndex}-${r.lastTerm}-${r.size}.seg`;
}

/**
 * Verifies a copied segment file against its descriptor entry: exact size, every entry's framing/CRC/contiguity
 * (the storage verify path), header (base offset, base index, prev term) and the last entry (index, term, offset).
 * Throws CORRUPT naming the file and what differs.
 */
export async function verifySegmentFile(file: string, r: SegmentRef): Promise<void> {
  const s = await scanSegmentFile(file);
  const bad = (msg: string, position = 0): never => {
    throw new LanceError('CORRUPT', `${file}: transferred segment ${r.baseOffset}: ${msg}`, { path: file, position });
  };
  if (s.sizeBytes !== r.size) bad(`size ${s.sizeBytes} bytes, expected ${r.size}`);
  if (s.firstBad) bad(`byte ${s.firstBad.position}: ${s.firstBad.reason}`, s.firstBad.position);
  if (s.validBytes !== r.size) bad(`valid bytes end at ${s.validBytes}, expected ${r.size}`, s.validBytes);
  const h = s.header!;
  if (h.baseOffset !== r.baseOffset || h.baseIndex !== r.baseIndex || h.prevTerm !== r.prevTerm) bad(`header (offset ${h.baseOffset}, index ${h.baseIndex}, prev term ${h.prevTerm}) differs from (${r.baseOffset}, ${r.baseIndex}, ${r.prevTerm})`);
  if (s.lastIndex !== r.lastIndex || s.lastTerm !== r.lastTerm || s.nextOffset !== r.nextOffset) bad(`ends at index ${s.lastIndex} term ${s.lastTerm} offset ${s.nextOffset}, expected ${r.lastIndex}/${r.lastTerm}/${r.nextOffset}`);
}

export const ChunkRequestSchema = z.strictObject({ group: z.string().min(1), ref: SegmentRefSchema, pos: int, len: int.min(1).max(64 << 20) });
export type ChunkRequest = z.infer<typeof ChunkRequestSchema>;

/** Reads [pos, pos+len) of a sealed segment file (leader side); the caller checked that `file` is that segment. */
export async function readChunk(file: string, r: SegmentRef, pos: number, len: number): Promise<Buffer> {
  if (pos >= r.size) throw new LanceError('INVALID_ARGUMENT', `${file}: chunk at byte ${pos} is beyond the segment (${r.size} bytes)`, { path: file, position: pos });
  const n = Math.min(len, r.size - pos);
  const fh = await fsp.open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new LanceError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `${file}: cannot open segment for transfer: ${e.code ?? e.message}`, { path: file });
  });
  try {
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      // own handle by path: its fd lives exactly as long as this read (no sharing with the PartitionLog's fds)
      const { bytesRead } = await fh.read(buf, got, n - got, pos + got).catch((e: NodeJS.ErrnoException) => {
        throw new LanceError('IO', `${file}: reading segment bytes ${pos + got}..${pos + n} for transfer failed: ${e.code ?? e.message}`, { path: file, position: pos + got });
      });
      if (bytesRead === 0) throw new LanceError('IO', `${file}: segment ended at byte ${pos + got}, expected ${r.size} bytes`, { path: file, position: pos + got });
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

export type FetchChunk = (source: NodeId, req: ChunkRequest) => Promise<Buffer>;

export class SegmentTransferMetrics {
  readonly transfers: Counter<'direction'>;
  readonly bytes: Counter<'direction'>;
  constructor(registry: Registry) {
    const registers = [registry];
    this.transfers = new Counter({ name: 'lance_segment_transfers_total', help: 'Whole sealed segments transferred for replica catch-up (direction: out = served, in = received and verified)', labelNames: ['direction'], registers });
    this.bytes = new Counter({ name: 'lance_segment_transfer_bytes_total', help: 'Segment bytes transferred for replica catch-up (direction: out = served, in = received)', labelNames: ['direction'], registers });
  }
}

export interface FetchSegmentOptions {
  stagingDir: string;
  group: string;
  ref: SegmentRef;
  sources: () => NodeId[];
  fetch: FetchChunk;
  chunkBytes: number;
  /** chunk requests in flight per segment (default DEFAULT_INFLIGHT_CHUNKS) */
  inflight?: number;
  /** true: give up (superseded or closing) → the fetch throws ABORTED-style CONFLICT */
  aborted: () => boolean;
  onBytes?: (n: number) => void;
  /** wait between failed attempts (ms) */
  retryDelayMs?: (attempt: number) => number;
  logWarn?: (msg: string, err: unknown) => void;
}

/**
 * Pulls one segment into `<stagingDir>/<stagedName>`: chunks (a few in flight) → `.part` → fsync → verify → rename →
 * fsync(dir).
 * An existing verified staged file is reused (a restart resumes at segment granularity). Retries forever over the
 * given sources (a failed chunk restarts that segment) until it succeeds or `aborted()`.
 */
export async function fetchSegment(o: FetchSegmentOptions): Promise<string> {
  const final = path.join(o.stagingDir, stagedName(o.ref));
  try {
    await verifySegmentFile(final, o.ref);
    return final;
  } catch {
    await fsp.rm(final, { force: true });
  }
  const part = `${final}.part`;
  for (let attempt = 0; ; attempt++) {
    if (o.aborted()) throw new LanceError('CONFLICT', `segment transfer of ${o.group} segment ${o.ref.baseOffset} aborted (superseded or closing)`, { group: o.group });
    const sources = o.sources();
    const source = sources[attempt % Math.max(1, sources.length)];
    try {
      if (source === undefined) throw new LanceError('NOT_FOUND', `${o.group}: no node to fetch segment ${o.ref.baseOffset} from`, { group: o.group });
      const fh = await fsp.open(part, 'w');
      try {
        // a few chunks in flight (positional writes: arrival order does not matter); the first error stops all
        const ranges = chunkRanges(o.ref.size, o.chunkBytes);
        let next = 0;
        let failed: unknown = null;
        const worker = async (): Promise<void> => {
          while (next < ranges.length && failed === null) {
            const c = ranges[next++]!;
            try {
              if (o.aborted()) throw new LanceError('CONFLICT', `segment transfer of ${o.group} segment ${o.ref.baseOffset} aborted`, { group: o.group });
              const data = await o.fetch(source, { group: o.group, ref: o.ref, pos: c.pos, len: c.len });
              if (data.length !== c.len) throw new LanceError('IO', `${o.group}: node ${source} sent ${data.length} bytes for chunk at byte ${c.pos} of segment ${o.ref.baseOffset}, expected ${c.len}`, { group: o.group, position: c.pos });
              await fh.write(data, 0, data.length, c.pos);
              o.onBytes?.(data.length);
            } catch (e) {
              failed ??= e;
            }
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, Math.min(o.inflight ?? DEFAULT_INFLIGHT_CHUNKS, ranges.length)) }, worker));
        if (failed !== null) throw failed;
        await fh.sync();
      } finally {
        await fh.close();
      }
      await verifySegmentFile(part, o.ref);
      await fsp.rename(part, final);
      await fsyncDir(o.stagingDir);
      return final;
    } catch (e) {
      await fsp.rm(part, { force: true }).catch(() => undefined);
      if (o.aborted()) throw e;
      o.logWarn?.(`segment transfer of ${o.group} segment ${o.ref.baseOffset} from node ${source ?? '?'} failed (attempt ${attempt + 1}); retrying`, e);
      await new Promise((r) => setTimeout(r, (o.retryDelayMs ?? ((a) => Math.min(2000, 100 * 2 ** Math.min(a, 5))))(attempt)));
    }
  }
}

/** config helper for descriptors (copy, so later mutation of the source cannot change a sent descriptor) */
export function copyConfig(c: ClusterConfig): { voters: number[]; learners: number[] } {
  return { voters: [...c.voters], learners: [...c.learners] };
}

/** Validates a BIN_REQ `segment.chunk` header (wire boundary); INVALID_ARGUMENT names the field. */
export function parseChunkRequest(method: string, header: unknown): ChunkRequest {
  if (method !== SEGMENT_CHUNK_METHOD) throw new LanceError('UNSUPPORTED', `binary rpc ${method}: unknown method (supported: ${SEGMENT_CHUNK_METHOD})`, { field: 'method' });
  const r = ChunkRequestSchema.safeParse(header);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new LanceError('INVALID_ARGUMENT', `${SEGMENT_CHUNK_METHOD}: field ${i.path.join('.') || '(root)'}: ${i.message}`, { field: i.path.join('.') });
  }
  return r.data;
}

/** timeout of one chunk pull */
export const CHUNK_TIMEOUT_MS = 30_000;
