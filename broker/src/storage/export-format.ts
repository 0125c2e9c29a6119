/**
 * The topic export file (`*.lance`), written by `lnc export-topic` and read by `lnc import-topic`.
 * Byte format: docs/format.md, "## Export file (.lance)". Summary:
 *
 *   preamble   "LNCEXPRT" (8 bytes) | version u16 BE (= 1)
 *   frames     kind u8 | length u32 BE | body[length] | crc32c u32 BE over kind+length+body
 *     'H' header   JSON {formatVersion, topic {id, name, partitions, config}, exportedAt, tool}
 *     'P' partition start   JSON {partition, startOffset, startIndex, prevTerm}
 *     'C' chunk    u32 entry count, then entries (binary, see ENTRY_HEAD_BYTES), each with its own crc32c
 *     'E' partition end     JSON {partition, entries, records, payloadBytes, firstOffset, lastOffset, nextOffset, firstIndex, lastIndex}
 *     'T' trailer  JSON {partitions, entries, records, payloadBytes, fileCrc32c}; fileCrc32c covers every byte
 *                  before the trailer frame. Nothing may follow the trailer.
 *
 * Streaming both ways: the writer holds at most one chunk (≈1 MiB, or one entry if larger) in memory; the reader
 * pulls bytes on demand and yields one chunk at a time. Every problem is a LanceError('CORRUPT') naming the byte
 * position; a reader's consumer must not make anything visible before it has seen the 'trailer' event.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { z } from 'zod';
import { ioError, LanceError } from '../common/errors.ts';
import { fsyncDir } from '../common/fsutil.ts';
import { EntryType, type StoredEntry } from './types.ts';

export const EXPORT_MAGIC = Buffer.from('LNCEXPRT', 'latin1');
export const EXPORT_VERSION = 1;
export const PREAMBLE_BYTES = EXPORT_MAGIC.length + 2;
/** kind u8 + length u32 */
export const FRAME_HEAD_BYTES = 5;
export const FRAME_CRC_BYTES = 4;
/** type u8, term i64, index i64, firstOffset i64, offsetCount u32, maxTimestamp i64, payloadLength u32 */
export const ENTRY_HEAD_BYTES = 1 + 8 + 8 + 8 + 4 + 8 + 4;
export const ENTRY_CRC_BYTES = 4;
/** target chunk body size; a chunk holds at least one entry even if that entry is bigger */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** a frame longer than this is treated as corruption (a flipped length byte), not as a reason to buffer GiBs */
export const MAX_FRAME_BYTES = 256 << 20;

export const FrameKind = { HEADER: 0x48, PARTITION: 0x50, CHUNK: 0x43, PARTITION_END: 0x45, TRAILER: 0x54 } as const; // 'H' 'P' 'C' 'E' 'T'
type FrameKindValue = (typeof FrameKind)[keyof typeof FrameKind];

function crc32c(data: Uint8Array, seed = 0): number {
  return nativeCrc32c(data, seed) >>> 0;
}

// ---------------------------------------------------------------------------------------------- schemas

const nonNegInt = z.number().int().nonnegative();

export const ExportHeaderSchema = z.object({
  formatVersion: z.literal(EXPORT_VERSION),
  topic: z.object({
    id: z.string().min(1),
    name: z.string().min(1),
    partitions: z.number().int().positive(),
    config: z.record(z.string(), z.unknown()),
  }),
  exportedAt: z.string(),
  tool: z.string(),
});
export type ExportHeader = z.infer<typeof ExportHeaderSchema>;

export const PartitionStartSchema = z.object({
  partition: nonNegInt,
  /** the partition's first offset at export time (its log start offset) */
  startOffset: nonNegInt,
  /** Raft index of its first entry (1 for a log that was never trimmed) */
  startIndex: z.number().int().positive(),
  /** Raft term of entry startIndex - 1 (0 if none), so an import can recreate the first segment header */
  prevTerm: nonNegInt.default(0),
});
export type PartitionStart = z.infer<typeof PartitionStartSchema>;

export const PartitionEndSchema = z.object({
  partition: nonNegInt,
  entries: nonNegInt,
  /** sum of offsetCount: Kafka records */
  records: nonNegInt,
  payloadBytes: nonNegInt,
  firstOffset: z.number().int().min(-1),
  lastOffset: z.number().int().min(-1),
  nextOffset: nonNegInt,
  firstIndex: nonNegInt,
  lastIndex: nonNegInt,
});
export type PartitionEnd = z.infer<typeof PartitionEndSchema>;

export const ExportTrailerSchema = z.object({
  partitions: nonNegInt,
  entries: nonNegInt,
  records: nonNegInt,
  payloadBytes: nonNegInt,
  fileCrc32c: z.number().int().min(0).max(0xffffffff),
});
export type ExportTrailer = z.infer<typeof ExportTrailerSchema>;

// ---------------------------------------------------------------------------------------------- encoding

function frame(kind: FrameKindValue, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEAD_BYTES + body.length + FRAME_CRC_BYTES);
  out.writeUInt8(kind, 0);
  out.writeUInt32BE(body.length, 1);
  out.set(body, FRAME_HEAD_BYTES);
  out.writeUInt32BE(crc32c(out.subarray(0, FRAME_HEAD_BYTES + body.length)), FRAME_HEAD_BYTES + body.length);
  return out;
}

function jsonFrame(kind: FrameKindValue, value: unknown): Buffer {
  return frame(kind, Buffer.from(JSON.stringify(value), 'utf8'));
}

export function encodeEntry(e: StoredEntry): Buffer {
  const out = Buffer.allocUnsafe(ENTRY_HEAD_BYTES + e.payload.length + ENTRY_CRC_BYTES);
  let p = 0;
  out.writeUInt8(e.type, p);
  p += 1;
  out.writeBigInt64BE(BigInt(e.term), p);
  p += 8;
  out.writeBigInt64BE(BigInt(e.index), p);
  p += 8;
  out.writeBigInt64BE(BigInt(e.firstOffset), p);
  p += 8;
  out.writeUInt32BE(e.offsetCount, p);
  p += 4;
  out.writeBigInt64BE(BigInt(e.maxTimestamp), p);
  p += 8;
  out.writeUInt32BE(e.payload.length, p);
  p += 4;
  out.set(e.payload, p);
  p += e.payload.length;
  out.writeUInt32BE(crc32c(out.subarray(0, p)), p);
  return out;
}

export function encodePreamble(): Buffer {
  const b = Buffer.alloc(PREAMBLE_BYTES);
  EXPORT_MAGIC.copy(b, 0);
  b.writeUInt16BE(EXPORT_VERSION, EXPORT_MAGIC.length);
  return b;
}

// ---------------------------------------------------------------------------------------------- sinks

/** Where the writer's bytes go. `commit` makes them visible (durably); `abort` removes what was written. */
export interface ByteSink {
  write(data: Buffer): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Writes `<file>.tmp-<pid>`, then on commit fsync → rename → fsync(dir): a crashed export leaves no `.lance`. */
export async function fileSink(file: string): Promise<ByteSink> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(tmp, 'w', 0o644);
  } catch (e) {
    throw ioError('create export file', tmp, e);
  }
  let open = true;
  return {
    async write(data) {
      try {
        await fh.write(data);
      } catch (e) {
        throw ioError('write export file', tmp, e);
      }
    },
    async commit() {
      try {
        await fh.sync();
        await fh.close();
        open = false;
        await fsp.rename(tmp, file);
      } catch (e) {
        throw ioError('commit export file', file, e);
      }
      await fsyncDir(path.dirname(file));
    },
    async abort() {
      if (open) await fh.close().catch(() => undefined);
      open = false;
      await fsp.rm(tmp, { force: true });
    },
  };
}

/** For `--output -`: writes to a stream with backpressure; nothing to commit or undo. */
export function streamSink(stream: Writable): ByteSink {
  return {
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        stream.write(data, (err) => (err ? reject(ioError('write export stream', 'stdout', err)) : resolve()));
      }),
    commit: async () => undefined,
    abort: async () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------- writer

interface PartitionState {
  start: PartitionStart;
  entries: number;
  records: number;
  payloadBytes: number;
  firstOffset: number;
  lastOffset: number;
  nextOffset: number;
  firstIndex: number;
  lastIndex: number;
}

/**
 * Streams a topic into a sink. Call order: create → (beginPartition → append* → endPartition) for partitions
 * 0..n-1 → finish. Misuse throws INTERNAL (a bug in the caller, not bad data).
 */
export class ExportWriter {
  private fileCrc = 0;
  private bytes = 0;
  private partition: PartitionState | null = null;
  private nextPartition = 0;
  private chunk: Buffer[] = [];
  private chunkBytes = 0;
  private totals = { entries: 0, records: 0, payloadBytes: 0 };

  private constructor(
    private readonly sink: ByteSink,
    readonly header: ExportHeader,
    private readonly chunkTarget: number,
  ) {}

  static async create(sink: ByteSink, header: Omit<ExportHeader, 'formatVersion'>, opts: { chunkBytes?: number } = {}): Promise<ExportWriter> {
    const full = ExportHeaderSchema.parse({ formatVersion: EXPORT_VERSION, ...header });
    const w = new ExportWriter(sink, full, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    await w.put(encodePreamble());
    await w.put(jsonFrame(FrameKind.HEADER, full));
    return w;
  }

  /** bytes written so far */
  get position(): number {
    return this.bytes;
  }

  private async put(b: Buffer): Promise<void> {
    this.fileCrc = crc32c(b, this.fileCrc);
    this.bytes += b.length;
    await this.sink.write(b);
  }

  async beginPartition(start: z.input<typeof PartitionStartSchema>): Promise<void> {
    if (this.partition) throw new LanceError('INTERNAL', `export: partition ${this.partition.start.partition} not ended`);
    if (start.partition !== this.nextPartition) throw new LanceError('INTERNAL', `export: expected partition ${this.nextPartition}, got ${start.partition}`);
    const s = PartitionStartSchema.parse(start);
    this.partition = {
      start: s,
      entries: 0,
      records: 0,
      payloadBytes: 0,
      firstOffset: -1,
      lastOffset: s.startOffset - 1,
      nextOffset: s.startOffset,
      firstIndex: 0,
      lastIndex: 0,
    };
    await this.put(jsonFrame(FrameKind.PARTITION, s));
  }

  async append(e: StoredEntry): Promise<void> {
    const p = this.partition;
    if (!p) throw new LanceError('INTERNAL', 'export: append outside a partition');
    const enc = encodeEntry(e);
    if (this.chunk.length > 0 && this.chunkBytes + enc.length > this.chunkTarget) await this.flushChunk();
    this.chunk.push(enc);
    this.chunkBytes += enc.length;
    p.entries++;
    p.records += e.offsetCount;
    p.payloadBytes += e.payload.length;
    if (p.firstIndex === 0) p.firstIndex = e.index;
    p.lastIndex = e.index;
    if (e.offsetCount > 0) {
      if (p.firstOffset === -1) p.firstOffset = e.firstOffset;
      p.lastOffset = e.firstOffset + e.offsetCount - 1;
    }
    p.nextOffset = e.firstOffset + e.offsetCount;
  }

  private async flushChunk(): Promise<void> {
    if (this.chunk.length === 0) return;
    const count = Buffer.allocUnsafe(4);
    count.writeUInt32BE(this.chunk.length, 0);
    const body = Buffer.concat([count, ...this.chunk], 4 + this.chunkBytes);
    this.chunk = [];
    this.chunkBytes = 0;
    await this.put(frame(FrameKind.CHUNK, body));
  }

  async endPartition(): Promise<PartitionEnd> {
    const p = this.partition;
    if (!p) throw new LanceError('INTERNAL', 'export: endPartition outside a partition');
    await this.flushChunk();
    const end: PartitionEnd = {
      partition: p.start.partition,
      entries: p.entries,
      records: p.records,
      payloadBytes: p.payloadBytes,
      firstOffset: p.firstOffset,
      lastOffset: p.lastOffset,
      nextOffset: p.nextOffset,
      firstIndex: p.firstIndex,
      lastIndex: p.lastIndex,
    };
    await this.put(jsonFrame(FrameKind.PARTITION_END, end));
    this.totals.entries += p.entries;
    this.totals.records += p.records;
    this.totals.payloadBytes += p.payloadBytes;
    this.partition = null;
    this.nextPartition++;
    return end;
  }

  /** Writes the trailer and commits the sink. On any failure before this, call abort(). */
  async finish(): Promise<ExportTrailer> {
    if (this.partition) throw new LanceError('INTERNAL', `export: partition ${this.partition.start.partition} not ended`);
    if (this.nextPartition !== this.header.topic.partitions) {
      throw new LanceError('INTERNAL', `export: wrote ${this.nextPartition} of ${this.header.topic.partitions} partitions`);
    }
    const trailer: ExportTrailer = { partitions: this.nextPartition, ...this.totals, fileCrc32c: this.fileCrc };
    await this.put(jsonFrame(FrameKind.TRAILER, trailer));
    await this.sink.commit();
    return trailer;
  }

  async abort(): Promise<void> {
    await this.sink.abort();
  }
}

// ---------------------------------------------------------------------------------------------- reader

export type ExportEvent =
  | { kind: 'header'; header: ExportHeader }
  | { kind: 'partition'; start: PartitionStart }
  | { kind: 'entries'; partition: number; entries: StoredEntry[]; position: number }
  | { kind: 'partition-end'; end: PartitionEnd }
  | { kind: 'trailer'; trailer: ExportTrailer; fileBytes: number };

/** Pulls exact byte counts from an async byte source, tracking the absolute position. */
class ByteReader {
  private bufs: Buffer[] = [];
  private buffered = 0;
  private done = false;
  pos = 0;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        this.bufs.push(b);
        this.buffered += b.length;
      }
    }
    return this.buffered >= n;
  }

  /** the next n bytes, or null when the source ends first (the caller names what was truncated) */
  async take(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const all = this.bufs.length === 1 ? this.bufs[0]! : Buffer.concat(this.bufs, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.bufs = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.pos += n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}

const KIND_NAMES: Record<number, string> = { 0x48: 'header', 0x50: 'partition-start', 0x43: 'chunk', 0x45: 'partition-end', 0x54: 'trailer' };

/**
 * Reads and verifies an export stream, yielding one event per frame (a chunk's entries at a time).
 * @param what names the input in errors (a file path, or 'stdin')
 */
export async function* readExport(source: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<ExportEvent, void, undefined> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  const corrupt = (pos: number, msg: string): LanceError =>
    new LanceError('CORRUPT', `${what}: ${msg} at byte ${pos}`, { path: what, position: pos });
  let fileCrc = 0;
  const take = async (n: number, whatField: string): Promise<Buffer> => {
    const at = r.pos;
    const b = await r.take(n);
    if (!b) throw corrupt(at, `truncated: file ends inside the ${whatField} (need ${n} bytes)`);
    fileCrc = crc32c(b, fileCrc);
    return b;
  };

  const pre = await take(PREAMBLE_BYTES, 'preamble');
  if (!pre.subarray(0, EXPORT_MAGIC.length).equals(EXPORT_MAGIC)) throw corrupt(0, `not a Lance export file (magic "${pre.subarray(0, 8).toString('latin1')}" is not "LNCEXPRT")`);
  const version = pre.readUInt16BE(EXPORT_MAGIC.length);
  if (version !== EXPORT_VERSION) {
    throw new LanceError('UNSUPPORTED', `${what}: export format version ${version} at byte 8 is not supported (this lnc reads version ${EXPORT_VERSION})`, { version });
  }

  /** reads one frame; returns its kind, body and start position; the crc is verified */
  const readFrame = async (): Promise<{ kind: number; body: Buffer; at: number; crcBefore: number }> => {
    const at = r.pos;
    const crcBefore = fileCrc;
    const head = await take(FRAME_HEAD_BYTES, 'frame header');
    const kind = head.readUInt8(0);
    const len = head.readUInt32BE(1);
    if (!(kind in KIND_NAMES)) throw corrupt(at, `unknown frame kind 0x${kind.toString(16).padStart(2, '0')}`);
    if (len > MAX_FRAME_BYTES) throw corrupt(at + 1, `${KIND_NAMES[kind]} frame length ${len} exceeds the ${MAX_FRAME_BYTES}-byte limit`);
    const body = await take(len, `${KIND_NAMES[kind]} frame body`);
    const crcBuf = await take(FRAME_CRC_BYTES, `${KIND_NAMES[kind]} frame checksum`);
    const want = crcBuf.readUInt32BE(0);
    const got = crc32c(body, crc32c(head));
    if (want !== got) throw corrupt(at, `${KIND_NAMES[kind]} frame checksum mismatch (stored ${hex(want)}, computed ${hex(got)})`);
    return { kind, body, at, crcBefore };
  };

  const json = <T>(schema: z.ZodType<T>, f: { body: Buffer; at: number }, name: string): T => {
    let raw: unknown;
    try {
      raw = JSON.parse(f.body.toString('utf8'));
    } catch {
      throw corrupt(f.at, `${name} frame is not valid JSON`);
    }
    const p = schema.safeParse(raw);
    if (!p.success) {
      const i = p.error.issues[0]!;
      throw corrupt(f.at, `${name} frame field "${i.path.join('.')}": ${i.message}`);
    }
    return p.data;
  };

  const expectKind = (f: { kind: number; at: number }, want: number[], context: string): void => {
    if (!want.includes(f.kind)) throw corrupt(f.at, `expected ${want.map((k) => KIND_NAMES[k]).join(' or ')} frame ${context}, found ${KIND_NAMES[f.kind]}`);
  };

  const hf = await readFrame();
  expectKind(hf, [FrameKind.HEADER], 'after the preamble');
  const header = json(ExportHeaderSchema, hf, 'header');
  yield { kind: 'header', header };

  const totals = { entries: 0, records: 0, payloadBytes: 0 };
  for (let pn = 0; pn < header.topic.partitions; pn++) {
    const pf = await readFrame();
    expectKind(pf, [FrameKind.PARTITION], `for partition ${pn}`);
    const start = json(PartitionStartSchema, pf, 'partition-start');
    if (start.partition !== pn) throw corrupt(pf.at, `partition-start names partition ${start.partition}, expected ${pn}`);
    yield { kind: 'partition', start };
    const seen = { entries: 0, records: 0, payloadBytes: 0, firstOffset: -1, lastOffset: start.startOffset - 1, nextOffset: start.startOffset, firstIndex: 0, lastIndex: 0 };
    for (;;) {
      const f = await readFrame();
      expectKind(f, [FrameKind.CHUNK, FrameKind.PARTITION_END], `in partition ${pn}`);
      if (f.kind === FrameKind.CHUNK) {
        const entries = decodeChunk(f.body, f.at + FRAME_HEAD_BYTES, corrupt);
        for (const [i, e] of entries.entries()) {
          const where = f.at + FRAME_HEAD_BYTES + e.at;
          if (seen.lastIndex !== 0 && e.entry.index !== seen.lastIndex + 1) throw corrupt(where, `entry ${i} of chunk: Raft index ${e.entry.index} does not follow ${seen.lastIndex}`);
          if (seen.lastIndex === 0 && e.entry.index !== start.startIndex) throw corrupt(where, `first entry of partition ${pn}: Raft index ${e.entry.index}, expected ${start.startIndex}`);
          if (e.entry.firstOffset < seen.nextOffset) throw corrupt(where, `entry ${i} of chunk: offset ${e.entry.firstOffset} goes back below ${seen.nextOffset}`);
          seen.entries++;
          seen.records += e.entry.offsetCount;
          seen.payloadBytes += e.entry.payload.length;
          if (seen.firstIndex === 0) seen.firstIndex = e.entry.index;
          seen.lastIndex = e.entry.index;
          if (e.entry.offsetCount > 0) {
            if (seen.firstOffset === -1) seen.firstOffset = e.entry.firstOffset;
            seen.lastOffset = e.entry.firstOffset + e.entry.offsetCount - 1;
          }
          seen.nextOffset = e.entry.firstOffset + e.entry.offsetCount;
        }
        yield { kind: 'entries', partition: pn, entries: entries.map((x) => x.entry), position: f.at };
        continue;
      }
      const end = json(PartitionEndSchema, f, 'partition-end');
      const expected: PartitionEnd = { partition: pn, ...seen };
      for (const k of Object.keys(expected) as (keyof PartitionEnd)[]) {
        if (end[k] !== expected[k]) throw corrupt(f.at, `partition-end of partition ${pn}: ${k} is ${end[k]} but the file holds ${expected[k]}`);
      }
      totals.entries += seen.entries;
      totals.records += seen.records;
      totals.payloadBytes += seen.payloadBytes;
      yield { kind: 'partition-end', end };
      break;
    }
  }

  const tf = await readFrame();
  expectKind(tf, [FrameKind.TRAILER], `after partition ${header.topic.partitions - 1}`);
  const trailer = json(ExportTrailerSchema, tf, 'trailer');
  if (trailer.fileCrc32c !== tf.crcBefore) throw corrupt(tf.at, `whole-file checksum mismatch (trailer says ${hex(trailer.fileCrc32c)}, bytes 0..${tf.at} give ${hex(tf.crcBefore)})`);
  const want = { partitions: header.topic.partitions, ...totals };
  for (const k of Object.keys(want) as (keyof typeof want)[]) {
    if (trailer[k] !== want[k]) throw corrupt(tf.at, `trailer: ${k} is ${trailer[k]} but the file holds ${want[k]}`);
  }
  if (!(await r.atEnd())) throw corrupt(r.pos, 'unexpected bytes after the trailer');
  yield { kind: 'trailer', trailer, fileBytes: r.pos };
}

const KNOWN_TYPES = new Set<number>(Object.values(EntryType));

function decodeChunk(body: Buffer, bodyPos: number, corrupt: (pos: number, msg: string) => LanceError): { entry: StoredEntry; at: number }[] {
  if (body.length < 4) throw corrupt(bodyPos, 'chunk body shorter than its 4-byte entry count');
  const count = body.readUInt32BE(0);
  const out: { entry: StoredEntry; at: number }[] = [];
  let p = 4;
  for (let i = 0; i < count; i++) {
    const at = p;
    if (p + ENTRY_HEAD_BYTES > body.length) throw corrupt(bodyPos + at, `chunk entry ${i} of ${count}: header runs past the chunk end`);
    const type = body.readUInt8(p);
    const term = Number(body.readBigInt64BE(p + 1));
    const index = Number(body.readBigInt64BE(p + 9));
    const firstOffset = Number(body.readBigInt64BE(p + 17));
    const offsetCount = body.readUInt32BE(p + 25);
    const maxTimestamp = Number(body.readBigInt64BE(p + 29));
    const len = body.readUInt32BE(p + 37);
    const end = p + ENTRY_HEAD_BYTES + len;
    if (end + ENTRY_CRC_BYTES > body.length) throw corrupt(bodyPos + at, `chunk entry ${i} of ${count}: payload length ${len} runs past the chunk end`);
    const want = body.readUInt32BE(end);
    const got = crc32c(body.subarray(p, end));
    if (want !== got) throw corrupt(bodyPos + at, `chunk entry ${i} of ${count}: checksum mismatch (stored ${hex(want)}, computed ${hex(got)})`);
    if (!KNOWN_TYPES.has(type)) throw corrupt(bodyPos + at, `chunk entry ${i}: unknown entry type ${type}`);
    if (index < 1 || firstOffset < 0 || term < 0) throw corrupt(bodyPos + at, `chunk entry ${i}: negative term/index/offset`);
    // copy the payload out of the chunk buffer so callers may keep entries while the chunk is released
    out.push({ entry: { type: type as EntryType, term, index, firstOffset, offsetCount, maxTimestamp, payload: Buffer.from(body.subarray(p + ENTRY_HEAD_BYTES, end)) }, at });
    p = end + ENTRY_CRC_BYTES;
  }
  if (p !== body.length) throw corrupt(bodyPos + p, `chunk has ${body.length - p} bytes after its ${count} entries`);
  return out;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Reads a whole export (streaming) and returns its header and trailer; throws CORRUPT on the first problem. */
export async function verifyExport(source: AsyncIterable<Uint8Array>, what: string): Promise<{ header: ExportHeader; trailer: ExportTrailer; fileBytes: number }> {
  let header: ExportHeader | undefined;
  for await (const ev of readExport(source, what)) {
    if (ev.kind === 'header') header = ev.header;
    if (ev.kind === 'trailer') return { header: header!, trailer: ev.trailer, fileBytes: ev.fileBytes };
  }
  throw new LanceError('INTERNAL', `${what}: reader ended without a trailer`);
}
