/**
 * Upload bodies: checksums (CRC32C for our own metadata, MD5 for S3 ETags / Content-MD5) and turning any PutBody
 * into something that can be read more than once (a retry re-sends it; verification compares against it).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { crc32c } from '@node-rs/crc32';
import { LanceError, ioError } from '../common/errors.ts';
import type { PutBody } from './object-store.ts';

export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** Running CRC32C + MD5 + byte count over a body fed in chunks. */
export class BodyHasher {
  private crc = 0;
  private readonly md5: Hash = createHash('md5');
  size = 0;

  update(chunk: Buffer): void {
    this.crc = crc32c(chunk, this.crc);
    this.md5.update(chunk);
    this.size += chunk.length;
  }

  /** may be called once */
  digest(): { size: number; crc32c: string; md5: Buffer } {
    return { size: this.size, crc32c: crcHex(this.crc), md5: this.md5.digest() };
  }
}

export function hashBuffer(buf: Buffer): { size: number; crc32c: string; md5: Buffer } {
  const h = new BodyHasher();
  h.update(buf);
  return h.digest();
}

export function crc32cHex(buf: Buffer, prev = 0): string {
  return crcHex(crc32c(buf, prev));
}

/** A body that can be read any number of times, with its checksums known up front. */
export interface ReplayableBody {
  size: number;
  crc32c: string;
  /** MD5 of the whole body (binary) */
  md5: Buffer;
  /** `length` bytes from `offset` */
  read(offset: number, length: number): Promise<Buffer>;
  /** the whole body as a stream */
  stream(): Readable;
  /** removes a spool file, if one was made */
  dispose(): Promise<void>;
}

function asBuffer(b: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export function isOneShotStream(body: PutBody): body is { stream: Readable; length: number } {
  return !Buffer.isBuffer(body) && !(body instanceof Uint8Array) && 'stream' in body;
}

function bufferBody(buf: Buffer): ReplayableBody {
  const h = hashBuffer(buf);
  return {
    ...h,
    read: async (offset, length) => buf.subarray(offset, offset + length),
    stream: () => Readable.from([buf]),
    dispose: async () => undefined,
  };
}

async function fileBody(file: string, spool: boolean): Promise<ReplayableBody> {
  const h = new BodyHasher();
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  } catch (e) {
    throw ioError('read upload body', file, e);
  }
  const d = h.digest();
  return {
    ...d,
    read: async (offset, length) => {
      let fh: fsp.FileHandle | undefined;
      try {
        fh = await fsp.open(file, 'r');
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        // The body is assumed immutable (a sealed segment): a short read means it changed under us.
        if (got !== length) throw new LanceError('IO', `read upload body ${file}: file shrank (wanted ${length} bytes at ${offset}, got ${got})`, { path: file });
        return buf;
      } catch (e) {
        if (e instanceof LanceError) throw e;
        throw ioError('read upload body', file, e);
      } finally {
        await fh?.close();
      }
    },
    stream: () => createReadStream(file, { highWaterMark: 1 << 20 }),
    dispose: async () => {
      if (spool) await fsp.rm(file, { force: true });
    },
  };
}

/** Reads a declared-length stream, failing with INVALID_ARGUMENT when it delivers a different number of bytes. */
async function* checkedChunks(body: { stream: Readable; length: number }): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of body.stream) {
    const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
    n += chunk.length;
    if (n > body.length) throw new LanceError('INVALID_ARGUMENT', `upload body: stream is longer than its declared length ${body.length}`, { field: 'length' });
    yield chunk;
  }
  if (n !== body.length) throw new LanceError('INVALID_ARGUMENT', `upload body: stream ended after ${n} bytes, declared length ${body.length}`, { field: 'length' });
}

export interface ReplayOptions {
  /** one-shot streams up to this size are held in memory, larger ones spooled to a temp file */
  memoryLimitBytes: number;
  /** where spool files go (default: the OS temp dir) */
  spoolDir?: string;
}

/** Makes any PutBody re-readable, computing its CRC32C and MD5. Call dispose() when done. */
export async function replayable(body: PutBody, opts: ReplayOptions): Promise<ReplayableBody> {
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) return bufferBody(asBuffer(body));
  if ('file' in body) return fileBody(body.file, false);
  if (!Number.isSafeInteger(body.length) || body.length < 0) {
    throw new LanceError('INVALID_ARGUMENT', `upload body: length must be a non-negative integer, got ${body.length}`, { field: 'length' });
  }
  if (body.length <= opts.memoryLimitBytes) {
    const chunks: Buffer[] = [];
    for await (const c of checkedChunks(body)) chunks.push(c);
    return bufferBody(Buffer.concat(chunks));
  }
  const dir = opts.spoolDir ?? os.tmpdir();
  const file = path.join(dir, `lance-upload-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(file, 'wx', 0o600);
    for await (const c of checkedChunks(body)) await fh.write(c);
    await fh.close();
    fh = undefined;
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(file, { force: true });
    if (e instanceof LanceError) throw e;
    throw ioError('spool upload body', file, e);
  }
  return fileBody(file, true);
}

/** S3's multipart ETag: MD5 over the concatenated binary part MD5s, then `-<parts>`. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  return `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`;
}

export function stripQuotes(etag: string | undefined): string {
  return (etag ?? '').replace(/"/g, '');
}

/** Passes bytes through and fails the stream with CORRUPT at its end if their CRC32C differs from `expected`. */
export function crcVerifier(key: string, expected: string, onCorrupt?: (e: LanceError) => void): Transform {
  return bodyVerifier(key, { crc32c: expected }, onCorrupt);
}

/**
 * Passes bytes through; at the end fails the stream when their count differs from `length` (IO: the body was cut
 * short) or their CRC32C from `crc32c` (CORRUPT). Either check is skipped when not given.
 */
export function bodyVerifier(key: string, expected: { length?: number; crc32c?: string }, onFail?: (e: LanceError) => void): Transform {
  let crc = 0;
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (expected.crc32c !== undefined) crc = crc32c(chunk, crc);
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      let e: LanceError | undefined;
      if (expected.length !== undefined && n !== expected.length) {
        e = new LanceError('IO', `object ${key}: body ended after ${n} of ${expected.length} bytes`, { key, got: n, expected: expected.length });
      } else if (expected.crc32c !== undefined && crcHex(crc) !== expected.crc32c) {
        e = new LanceError('CORRUPT', `object ${key}: crc32c ${crcHex(crc)}, stored ${expected.crc32c}`, { key });
      }
      if (!e) return cb();
      onFail?.(e);
      cb(e);
    },
  });
}
