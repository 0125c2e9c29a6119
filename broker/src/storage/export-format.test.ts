import { createReadStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLanceError, LanceError } from '../common/errors.ts';
import {
  ExportWriter,
  fileSink,
  FRAME_HEAD_BYTES,
  PREAMBLE_BYTES,
  readExport,
  verifyExport,
  type ByteSink,
  type ExportEvent,
} from './export-format.ts';
import { EntryType, type StoredEntry } from './types.ts';

/** deterministic PRNG so failures reproduce */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function memorySink(): ByteSink & { bytes(): Buffer; committed: boolean } {
  const parts: Buffer[] = [];
  const s = {
    committed: false,
    write: async (b: Buffer) => void parts.push(Buffer.from(b)),
    commit: async () => void (s.committed = true),
    abort: async () => void (parts.length = 0),
    bytes: () => Buffer.concat(parts),
  };
  return s;
}

/** yields `buf` in pieces of varying size, so the reader's buffering is exercised across frame boundaries */
async function* pieces(buf: Buffer, seed = 1): AsyncGenerator<Buffer> {
  const r = rng(seed);
  let p = 0;
  while (p < buf.length) {
    const n = 1 + Math.floor(r() * 97);
    yield buf.subarray(p, p + n);
    p += n;
  }
}

function makeEntries(partition: number, n: number, startOffset: number): StoredEntry[] {
  const r = rng(100 + partition);
  const out: StoredEntry[] = [];
  let off = startOffset;
  for (let i = 0; i < n; i++) {
    const noop = i === 3;
    const count = noop ? 0 : 1 + Math.floor(r() * 5);
    const payload = Buffer.alloc(noop ? 0 : 20 + Math.floor(r() * 200));
    for (let j = 0; j < payload.length; j++) payload[j] = Math.floor(r() * 256);
    out.push({ type: noop ? EntryType.NOOP : EntryType.DATA, term: 1 + (i >> 3), index: i + 1, firstOffset: off, offsetCount: count, maxTimestamp: noop ? -1 : 1_700_000_000_000 + i, payload });
    off += count;
  }
  return out;
}

const parts = [makeEntries(0, 25, 0), makeEntries(1, 0, 0), makeEntries(2, 12, 0)];

async function buildExport(chunkBytes = 600): Promise<Buffer> {
  const sink = memorySink();
  const w = await ExportWriter.create(sink, { topic: { id: '7', name: 'orders', partitions: 3, config: { retentionMs: 0 } }, exportedAt: '2026-11-22T00:00:00Z', tool: 'test' }, { chunkBytes });
  for (const [p, entries] of parts.entries()) {
    await w.beginPartition({ partition: p, startOffset: 0, startIndex: 1 });
    for (const e of entries) await w.append(e);
    await w.endPartition();
  }
  await w.finish();
  expect(sink.committed).toBe(true);
  return sink.bytes();
}

async function collect(buf: Buffer, seed = 1): Promise<ExportEvent[]> {
  const evs: ExportEvent[] = [];
  for await (const ev of readExport(pieces(buf, seed), 'x.lance')) evs.push(ev);
  return evs;
}

async function refusal(buf: Buffer): Promise<LanceError> {
  try {
    await verifyExport(pieces(buf), 'x.lance');
  } catch (e) {
    if (isLanceError(e)) return e;
    throw e;
  }
  throw new Error(`a damaged export of ${buf.length} bytes was accepted`);
}

/** frame start positions, walking the frame structure of a valid file */
function frameStarts(buf: Buffer): number[] {
  const out: number[] = [];
  let p = PREAMBLE_BYTES;
  while (p < buf.length) {
    out.push(p);
    p += FRAME_HEAD_BYTES + buf.readUInt32BE(p + 1) + 4;
  }
  return out;
}

describe('export format', () => {
  it('round-trips entries, offsets and payloads byte for byte, across several chunks', async () => {
    const buf = await buildExport();
    const evs = await collect(buf);
    expect(evs[0]).toMatchObject({ kind: 'header', header: { formatVersion: 1, topic: { id: '7', name: 'orders', partitions: 3 } } });
    const got: StoredEntry[][] = [[], [], []];
    let chunks = 0;
    for (const ev of evs) {
      if (ev.kind === 'entries') {
        chunks++;
        got[ev.partition]!.push(...ev.entries);
      }
    }
    expect(chunks).toBeGreaterThan(4);
    expect(got).toEqual(parts);
    const last = evs.at(-1)!;
    expect(last).toMatchObject({ kind: 'trailer', fileBytes: buf.length, trailer: { partitions: 3, entries: 37 } });
    const ends = evs.filter((e) => e.kind === 'partition-end');
    expect(ends.map((e) => (e.kind === 'partition-end' ? [e.end.entries, e.end.nextOffset] : null))).toEqual([
      [25, parts[0]!.at(-1)!.firstOffset + parts[0]!.at(-1)!.offsetCount],
      [0, 0],
      [12, parts[2]!.at(-1)!.firstOffset + parts[2]!.at(-1)!.offsetCount],
    ]);
  });

  it('refuses the file truncated at every byte (so every chunk boundary), naming the position', async () => {
    const buf = await buildExport();
    const starts = frameStarts(buf);
    expect(starts.length).toBeGreaterThan(8);
    for (let n = 0; n < buf.length; n++) {
      const e = await refusal(buf.subarray(0, n));
      expect(e.code, `cut at ${n}`).toBe('CORRUPT');
      expect(e.message, `cut at ${n}`).toMatch(/truncated: file ends inside the .* at byte \d+/);
      const pos = (e.details as { position: number }).position;
      expect(pos, `cut at ${n}`).toBeLessThanOrEqual(n);
      // at an exact frame boundary the reported position is that boundary
      if (starts.includes(n)) expect(pos).toBe(n);
    }
  });

  it('refuses any single bit flip anywhere in the file', async () => {
    const buf = await buildExport();
    const r = rng(42);
    for (let i = 0; i < buf.length; i++) {
      const bad = Buffer.from(buf);
      bad[i]! ^= 1 << Math.floor(r() * 8);
      const e = await refusal(bad);
      expect(['CORRUPT', 'UNSUPPORTED'], `flip at ${i}: ${e.message}`).toContain(e.code);
      expect(e.message).toMatch(/byte \d+/);
    }
  });

  it('refuses trailing bytes, a foreign file and a future version', async () => {
    const buf = await buildExport();
    expect((await refusal(Buffer.concat([buf, Buffer.from([0])]))).message).toContain(`unexpected bytes after the trailer at byte ${buf.length}`);
    expect((await refusal(Buffer.from('hello world, not an export'))).message).toContain('not a Lance export file');
    const v2 = Buffer.from(buf);
    v2.writeUInt16BE(2, 8);
    const e = await refusal(v2);
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toContain('version 2 at byte 8');
  });

  it('a frame with a valid crc but inconsistent counts is still refused (partition-end cross-check)', async () => {
    // rewrite partition 2's end frame with a wrong entry count and a recomputed frame crc
    const sink = memorySink();
    const w = await ExportWriter.create(sink, { topic: { id: '1', name: 't', partitions: 1, config: {} }, exportedAt: 'now', tool: 'test' });
    await w.beginPartition({ partition: 0, startOffset: 0, startIndex: 1 });
    for (const e of parts[0]!) await w.append(e);
    // simulate a writer bug: a chunk is lost before the end frame
    (w as unknown as { chunk: Buffer[]; chunkBytes: number }).chunk.pop();
    (w as unknown as { chunkBytes: number }).chunkBytes = (w as unknown as { chunk: Buffer[] }).chunk.reduce((a, b) => a + b.length, 0);
    await w.endPartition();
    await w.finish();
    const e = await refusal(sink.bytes());
    expect(e.message).toMatch(/partition-end of partition 0: entries is 25 but the file holds 24/);
  });

  it('fileSink: commit makes the file appear atomically; abort leaves nothing', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'lance-export-'));
    dirs.push(dir);
    const file = path.join(dir, 'topic_7.lance');
    const s1 = await fileSink(file);
    const w = await ExportWriter.create(s1, { topic: { id: '7', name: 'o', partitions: 1, config: {} }, exportedAt: 'now', tool: 't' });
    await w.beginPartition({ partition: 0, startOffset: 0, startIndex: 1 });
    await w.append(parts[0]![0]!);
    expect(await fsp.readdir(dir)).not.toContain('topic_7.lance');
    await w.endPartition();
    await w.finish();
    expect(await fsp.readdir(dir)).toEqual(['topic_7.lance']);
    const v = await verifyExport(createReadStream(file), file);
    expect(v.trailer.entries).toBe(1);

    const s2 = await fileSink(path.join(dir, 'other.lance'));
    await s2.write(Buffer.from('partial'));
    await s2.abort();
    expect(await fsp.readdir(dir)).toEqual(['topic_7.lance']);
  });
});

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});
