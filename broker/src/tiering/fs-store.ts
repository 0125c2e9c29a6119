/**
 * The filesystem backend (`file:///dir`): the embedded default bucket, and what `lnc restore --from file://...`
 * reads. It mirrors S3 semantics exactly (the same contract suite runs against both):
 *
 * Layout: a key is split at '/' and every component gets a type suffix, so that S3-legal key sets that a plain
 * directory tree cannot hold (both `a` and `a/b`, empty components in `a//b`, `.` and `..`) still map to distinct
 * paths: directories end in `.d`, objects in `.o`. Key `topic/0/seg` → `<root>/topic.d/0.d/seg.o`.
 * Anything else in the tree (temp files of an interrupted write) is ignored.
 *
 * Object file: `[body][footer JSON][u32 BE footer length][8-byte magic "LNCOBJ01"]`. The footer holds size, ETag
 * (MD5 hex, like S3's single-part ETag), CRC32C, content type, user metadata and mtime. Keeping metadata in the same
 * file as the body makes a put ONE atomic rename (temp → fsync → rename → fsync dir): there is no window in which
 * body and metadata disagree. Range reads are plain positional reads from offset 0.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { crc32c } from '@node-rs/crc32';
import { LanceError, ioError, isLanceError } from '../common/errors.ts';
import { fsyncDir } from '../common/fsutil.ts';
import type { Logger } from '../common/log.ts';
import { silentLogger } from '../common/log.ts';
import { BodyHasher, crcHex, crcVerifier, replayable, type ReplayableBody } from './body.ts';
import {
  CRC32C_METADATA_KEY, classifyListedKey, compareKeys, resolveRange, validateKey, validateMetadata, validateRange,
  type GetOptions, type GetStreamResult, type ListEntry, type ListOptions, type ObjectInfo, type ObjectStore,
  type ObjectStoreHooks, type PutBody, type PutOptions, type PutResult,
} from './object-store.ts';

const DIR_SUFFIX = '.d';
const OBJ_SUFFIX = '.o';
const MAGIC = Buffer.from('LNCOBJ01', 'ascii');
const TRAILER_BYTES = 4 + MAGIC.length;
/** file-name limit (255) minus the suffix */
const MAX_COMPONENT_BYTES = 253;
const MAX_FOOTER_BYTES = 64 * 1024;

interface Footer {
  v: 1;
  size: number;
  etag: string;
  crc32c: string;
  contentType?: string;
  metadata: Record<string, string>;
  mtimeMs: number;
}

export interface FsObjectStoreOptions {
  /** the bucket directory */
  root: string;
  /** putVerified attempts (a mismatch on a local disk is rare; it is retried like on S3) */
  maxAttempts?: number;
  /** one-shot stream bodies up to this size are buffered for putVerified, larger ones spooled */
  memoryLimitBytes?: number;
  log?: Logger;
  hooks?: ObjectStoreHooks;
}

function encodeFooter(f: Footer): Buffer {
  const json = Buffer.from(JSON.stringify(f), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([json, len, MAGIC]);
}

export class FsObjectStore implements ObjectStore {
  readonly url: string;
  private readonly root: string;
  private readonly maxAttempts: number;
  private readonly memoryLimitBytes: number;
  private readonly log: Logger;
  private readonly hooks: ObjectStoreHooks | undefined;

  constructor(opts: FsObjectStoreOptions) {
    this.root = path.resolve(opts.root);
    this.url = `file://${this.root}`;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.memoryLimitBytes = opts.memoryLimitBytes ?? 16 * 1024 * 1024;
    this.log = opts.log ?? silentLogger;
    this.hooks = opts.hooks;
  }

  /** reports one operation to the hooks (metrics) */
  private async observe<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (!this.hooks?.onRequest) return fn();
    const started = performance.now();
    try {
      const r = await fn();
      this.hooks.onRequest(op, 'ok', performance.now() - started);
      return r;
    } catch (e) {
      this.hooks.onRequest(op, isLanceError(e) ? e.code : 'IO', performance.now() - started);
      throw e;
    }
  }

  /** The file that holds `key` (exported for tests and `lnc` diagnostics). */
  objectPath(key: string): string {
    validateKey(key);
    const parts = key.split('/');
    for (const p of parts) {
      if (Buffer.byteLength(p, 'utf8') > MAX_COMPONENT_BYTES) {
        throw new LanceError('INVALID_ARGUMENT', `key ${JSON.stringify(key)}: path component of ${Buffer.byteLength(p, 'utf8')} bytes, the file backend allows ${MAX_COMPONENT_BYTES}`, { key });
      }
    }
    const last = parts.pop()!;
    return path.join(this.root, ...parts.map((p) => p + DIR_SUFFIX), last + OBJ_SUFFIX);
  }

  /**
   * mkdir each missing level, fsyncing its parent so the new entry survives a crash. A concurrent delete may prune
   * a level we just created (it was empty for a moment): start over, a bounded number of times.
   */
  private async ensureDir(dir: string): Promise<void> {
    const rel = path.relative(this.root, dir);
    const levels = rel === '' ? [] : rel.split(path.sep);
    for (let attempt = 1; ; attempt++) {
      try {
        await fsp.mkdir(this.root, { recursive: true }).catch((e: unknown) => {
          throw ioError('mkdir', this.root, e);
        });
        let cur = this.root;
        for (const l of levels) {
          const next = path.join(cur, l);
          try {
            await fsp.mkdir(next);
            await fsyncDir(cur);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw isLanceError(e) ? e : ioError('mkdir', next, e);
          }
          cur = next;
        }
        return;
      } catch (e) {
        if (isLanceError(e, 'NOT_FOUND') && attempt < 10) continue;
        throw e;
      }
    }
  }

  put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    return this.observe('put', async () => {
      const r = await this.putUnobserved(key, body, opts);
      this.hooks?.onBytes?.('out', r.size);
      return r;
    });
  }

  private async putUnobserved(key: string, body: PutBody, opts: PutOptions): Promise<PutResult> {
    validateMetadata(opts.metadata);
    const file = this.objectPath(key);
    const dir = path.dirname(file);
    // Fast path: the directory usually exists. If it does not (first object under it, or a concurrent delete just
    // pruned it while empty), create it and try again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.writeObject(key, file, body, opts);
      } catch (e) {
        if (e instanceof DirMissing && attempt < 10) {
          await this.ensureDir(dir);
          continue;
        }
        throw e instanceof DirMissing ? ioError('put', file, e.cause) : e;
      }
    }
  }

  private async writeObject(key: string, file: string, body: PutBody, opts: PutOptions): Promise<PutResult> {
    const dir = path.dirname(file);
    const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    const h = new BodyHasher();
    let fh: fsp.FileHandle | undefined;
    try {
      try {
        fh = await fsp.open(tmp, 'wx', 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DirMissing(e);
        throw ioError('create', tmp, e);
      }
      const write = async (chunk: Buffer): Promise<void> => {
        h.update(chunk);
        try {
          await fh!.write(chunk);
        } catch (e) {
          throw ioError('write', tmp, e);
        }
      };
      if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
        await write(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
      } else if ('file' in body) {
        const src = createReadStream(body.file, { highWaterMark: 1 << 20 });
        try {
          for await (const c of src) await write(c as Buffer);
        } catch (e) {
          throw isLanceError(e) ? e : ioError('read upload body', body.file, e);
        }
      } else {
        for await (const c of body.stream) {
          await write(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
          if (h.size > body.length) throw new LanceError('INVALID_ARGUMENT', `put ${key}: stream is longer than its declared length ${body.length}`, { key, field: 'length' });
        }
        if (h.size !== body.length) throw new LanceError('INVALID_ARGUMENT', `put ${key}: stream ended after ${h.size} bytes, declared length ${body.length}`, { key, field: 'length' });
      }
      const d = h.digest();
      const footer: Footer = {
        v: 1, size: d.size, etag: d.md5.toString('hex'), crc32c: d.crc32c,
        ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}),
        metadata: { ...opts.metadata, [CRC32C_METADATA_KEY]: d.crc32c },
        mtimeMs: Date.now(),
      };
      await fh.write(encodeFooter(footer)).catch((e: unknown) => {
        throw ioError('write', tmp, e);
      });
      await fh.sync().catch((e: unknown) => {
        throw ioError('fsync', tmp, e);
      });
      await fh.close();
      fh = undefined;
      await fsp.rename(tmp, file).catch((e: unknown) => {
        throw ioError('rename', file, e);
      });
      await fsyncDir(dir);
      return { key, etag: footer.etag, size: footer.size, checksum: footer.crc32c };
    } catch (e) {
      await fh?.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  async putVerified(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    const src = await replayable(body, { memoryLimitBytes: this.memoryLimitBytes });
    try {
      for (let attempt = 1; ; attempt++) {
        const res = await this.put(key, bodyOf(src, body), opts);
        const problem = await this.verify(key, src);
        if (problem === null) return res;
        this.log.warn({ key, attempt, problem }, 'uploaded object failed verification; deleting and retrying');
        await this.delete([key]);
        if (attempt >= this.maxAttempts) {
          throw new LanceError('CORRUPT', `put ${this.url}/${key}: stored object failed verification after ${attempt} attempts: ${problem}`, { key, attempts: attempt });
        }
      }
    } finally {
      await src.dispose();
    }
  }

  /** Re-reads the stored object; null when it matches the body, else what differs. */
  private async verify(key: string, src: ReplayableBody): Promise<string | null> {
    const info = await this.head(key);
    if (!info) return 'object missing after put';
    if (info.size !== src.size) return `size ${info.size}, expected ${src.size}`;
    if (info.metadata[CRC32C_METADATA_KEY] !== src.crc32c) return `stored crc32c ${info.metadata[CRC32C_METADATA_KEY]}, expected ${src.crc32c}`;
    try {
      await this.get(key); // full read re-computes the CRC32C of the bytes on disk
    } catch (e) {
      if (isLanceError(e, 'CORRUPT')) return e.message;
      throw e;
    }
    return null;
  }

  private async readFooter(file: string, fh: fsp.FileHandle): Promise<Footer> {
    const st = await fh.stat();
    const corrupt = (why: string): LanceError => new LanceError('CORRUPT', `object file ${file}: ${why}`, { path: file });
    if (st.size < TRAILER_BYTES) throw corrupt(`${st.size} bytes, too short for the object trailer`);
    const trailer = Buffer.alloc(TRAILER_BYTES);
    await fh.read(trailer, 0, TRAILER_BYTES, st.size - TRAILER_BYTES);
    if (!trailer.subarray(4).equals(MAGIC)) throw corrupt('bad trailer magic');
    const len = trailer.readUInt32BE(0);
    if (len > MAX_FOOTER_BYTES || len > st.size - TRAILER_BYTES) throw corrupt(`footer length ${len} out of range`);
    const json = Buffer.alloc(len);
    await fh.read(json, 0, len, st.size - TRAILER_BYTES - len);
    let f: Footer;
    try {
      f = JSON.parse(json.toString('utf8')) as Footer;
    } catch {
      throw corrupt('footer is not JSON');
    }
    if (f.v !== 1 || typeof f.size !== 'number' || f.size !== st.size - TRAILER_BYTES - len || typeof f.crc32c !== 'string') {
      throw corrupt(`footer does not match the file (size field ${f.size}, body ${st.size - TRAILER_BYTES - len} bytes)`);
    }
    return f;
  }

  private async openObject(key: string, op: string): Promise<{ file: string; fh: fsp.FileHandle; footer: Footer } | null> {
    const file = this.objectPath(key);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw ioError(op, file, e);
    }
    try {
      return { file, fh, footer: await this.readFooter(file, fh) };
    } catch (e) {
      await fh.close();
      throw isLanceError(e) ? e : ioError(op, file, e);
    }
  }

  private info(f: Footer): ObjectInfo {
    return { size: f.size, etag: f.etag, contentType: f.contentType, metadata: { ...f.metadata }, lastModified: new Date(f.mtimeMs) };
  }

  private notFound(key: string): LanceError {
    return new LanceError('NOT_FOUND', `${this.url}: no object ${JSON.stringify(key)}`, { key });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const o = await this.openObject(key, 'head');
    if (!o) return null;
    await o.fh.close();
    return this.info(o.footer);
  }

  get(key: string, opts: GetOptions = {}): Promise<Buffer> {
    return this.observe('get', async () => {
      const b = await this.getUnobserved(key, opts);
      this.hooks?.onBytes?.('in', b.length);
      return b;
    });
  }

  private async getUnobserved(key: string, opts: GetOptions): Promise<Buffer> {
    validateRange(opts.range);
    const o = await this.openObject(key, 'get');
    if (!o) throw this.notFound(key);
    try {
      const { start, end } = resolveRange(key, o.footer.size, opts.range);
      const buf = Buffer.allocUnsafe(end - start);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await o.fh.read(buf, got, buf.length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got !== buf.length) throw new LanceError('CORRUPT', `object file ${o.file}: short read (${got} of ${buf.length} bytes)`, { path: o.file });
      if (!opts.range) {
        const actual = crcHex(crc32c(buf));
        if (actual !== o.footer.crc32c) {
          throw new LanceError('CORRUPT', `object ${key} (${o.file}): crc32c ${actual}, stored ${o.footer.crc32c}`, { key, path: o.file });
        }
      }
      return buf;
    } catch (e) {
      throw isLanceError(e) ? e : ioError('get', o.file, e);
    } finally {
      await o.fh.close();
    }
  }

  async getStream(key: string, opts: GetOptions = {}): Promise<GetStreamResult> {
    validateRange(opts.range);
    const o = await this.openObject(key, 'get');
    if (!o) throw this.notFound(key);
    await o.fh.close();
    const { start, end } = resolveRange(key, o.footer.size, opts.range);
    const info = this.info(o.footer);
    if (end === start) return { body: emptyStream(), length: 0, info };
    const raw = createReadStream(o.file, { start, end: end - 1, highWaterMark: 1 << 20 });
    const body = opts.range ? raw : raw.pipe(crcVerifier(key, o.footer.crc32c, (e) => raw.destroy(e)));
    if (!opts.range) raw.on('error', (e) => body.destroy(e));
    return { body, length: end - start, info };
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListEntry> {
    const state: WalkState = { skipPrefix: undefined };
    let lastPrefix: string | undefined;
    for await (const { key, file } of this.walk(this.root, '', prefix, opts, state)) {
      const c = classifyListedKey(key, prefix, opts);
      if (c.kind === 'skip') continue;
      if (c.kind === 'prefix') {
        if (c.prefix !== lastPrefix) yield { kind: 'prefix', prefix: c.prefix };
        lastPrefix = c.prefix;
        state.skipPrefix = c.prefix; // everything else under it rolls up into the same prefix: don't walk it
        continue;
      }
      let fh: fsp.FileHandle;
      try {
        fh = await fsp.open(file, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted while listing
        throw ioError('list', file, e);
      }
      try {
        const f = await this.readFooter(file, fh);
        yield { kind: 'object', key, size: f.size, etag: f.etag, lastModified: new Date(f.mtimeMs) };
      } finally {
        await fh.close();
      }
    }
  }

  /** Keys under `dir` in S3 order (see the header comment for why sorting by `name` / `name/` is exact). */
  private async *walk(dir: string, keyPrefix: string, prefix: string, opts: ListOptions, state: WalkState): AsyncGenerator<{ key: string; file: string }> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw ioError('list', dir, e);
    }
    const children: { sortKey: string; isDir: boolean; file: string }[] = [];
    for (const ent of entries) {
      if (ent.name.endsWith(OBJ_SUFFIX) && ent.isFile()) {
        children.push({ sortKey: keyPrefix + ent.name.slice(0, -OBJ_SUFFIX.length), isDir: false, file: path.join(dir, ent.name) });
      } else if (ent.name.endsWith(DIR_SUFFIX) && ent.isDirectory()) {
        children.push({ sortKey: keyPrefix + ent.name.slice(0, -DIR_SUFFIX.length) + '/', isDir: true, file: path.join(dir, ent.name) });
      }
    }
    children.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const c of children) {
      if (state.skipPrefix !== undefined && c.sortKey.startsWith(state.skipPrefix)) continue;
      if (c.isDir) {
        const p = c.sortKey;
        if (!p.startsWith(prefix) && !prefix.startsWith(p)) continue; // no key under p can match the prefix
        // every key under p is <= startAfter: skip the subtree
        if (opts.startAfter !== undefined && compareKeys(p, opts.startAfter) < 0 && !opts.startAfter.startsWith(p)) continue;
        yield* this.walk(c.file, p, prefix, opts, state);
      } else {
        yield { key: c.sortKey, file: c.file };
      }
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      const file = this.objectPath(key);
      try {
        await fsp.rm(file, { force: true });
      } catch (e) {
        throw ioError('delete', file, e);
      }
      dirs.add(path.dirname(file));
    }
    for (const d of dirs) {
      await fsyncDir(d).catch((e: unknown) => {
        if (!isLanceError(e, 'NOT_FOUND')) throw e;
      });
      await this.pruneEmptyDirs(d);
    }
  }

  /** Removes now-empty directories up to the root, so deleted prefixes disappear from listings' walks. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    let cur = dir;
    while (cur !== this.root && cur.startsWith(this.root + path.sep)) {
      try {
        await fsp.rmdir(cur);
      } catch {
        return; // not empty (or already gone): stop
      }
      cur = path.dirname(cur);
    }
  }

  /**
   * Removes temp files of writes interrupted by a crash (`.tmp-*`, older than `maxAgeMs` so that writes in flight
   * are left alone). Listings already ignore them; this reclaims their space. Returns how many were removed.
   */
  async removeStaleTempFiles(maxAgeMs = 3600_000): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - maxAgeMs;
    const sweep = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw ioError('sweep', dir, e);
      }
      for (const ent of entries) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory() && ent.name.endsWith(DIR_SUFFIX)) {
          await sweep(p);
        } else if (ent.isFile() && ent.name.startsWith('.tmp-')) {
          const st = await fsp.stat(p).catch(() => undefined);
          if (st && st.mtimeMs < cutoff) {
            await fsp.rm(p, { force: true });
            removed++;
          }
        }
      }
    };
    await sweep(this.root);
    return removed;
  }

  async close(): Promise<void> {
    // no handles are held between calls
  }
}

/** the object's directory does not exist (yet, or any more) */
class DirMissing extends Error {
  constructor(cause: unknown) {
    super('directory missing', { cause });
  }
}

interface WalkState {
  skipPrefix: string | undefined;
}

function bodyOf(src: ReplayableBody, original: PutBody): PutBody {
  if (Buffer.isBuffer(original) || original instanceof Uint8Array || 'file' in original) return original;
  return { stream: src.stream(), length: src.size };
}

function emptyStream(): Readable {
  return Readable.from([]);
}
