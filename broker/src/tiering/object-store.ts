/**
 * The object-store contract used by tiering and disaster recovery. Two backends implement it:
 * S3 (./s3-store.ts) and a local directory (./fs-store.ts, the embedded default). Both pass the same
 * contract suite (test/s3/contract.ts), so the layers above never branch on the backend.
 *
 * Rules the layers above rely on:
 * - Keys are idempotent: writing the same key again replaces the object (a retried upload rewrites it).
 *   There are no conditional puts (the S3 test endpoint ignores If-Match/If-None-Match): single writer per key
 *   is guaranteed by construction above this layer (terms in keys).
 * - Every put stores the body's CRC32C in the object metadata (`lance-crc32c`, i.e. `x-amz-meta-lance-crc32c`)
 *   and a full-object get verifies it: a corrupt object is never returned as good data (error code CORRUPT).
 * - list() iterates over ALL pages (S3 ListObjectsV2 continuation); it never stops silently at 1000 keys.
 * - Errors are LanceErrors: NOT_FOUND (get of a missing key), CORRUPT (checksum/size mismatch), TIMEOUT
 *   (a stalled request after the bounded retries), IO (anything else), INVALID_ARGUMENT (bad key/range).
 */
import type { Readable } from 'node:stream';
import { LanceError, type LanceErrorCode } from '../common/errors.ts';

/** Metadata key holding the body's CRC32C (8 lowercase hex digits). S3 sends it as `x-amz-meta-lance-crc32c`. */
export const CRC32C_METADATA_KEY = 'lance-crc32c';

/**
 * A body to upload. Buffers and files can be re-read, so a failed verification can be retried;
 * a one-shot stream must declare its length (it is spooled to memory or a temp file when it has to be re-read).
 */
export type PutBody = Buffer | Uint8Array | { file: string } | { stream: Readable; length: number };

export interface PutOptions {
  contentType?: string;
  /** user metadata; keys are lower-cased [a-z0-9-] (S3 rules), `lance-crc32c` is reserved */
  metadata?: Record<string, string>;
}

export interface PutResult {
  key: string;
  /** the store's ETag, quotes stripped */
  etag: string;
  size: number;
  /** CRC32C of the body, 8 lowercase hex digits (also stored as metadata `lance-crc32c`) */
  checksum: string;
}

/** A byte range: `length` bytes from `offset` (to the end of the object when `length` is omitted). */
export interface ByteRange {
  offset: number;
  length?: number;
}

export interface GetOptions {
  /** bytes past the end of the object are not an error (S3 semantics): the result is shorter */
  range?: ByteRange;
}

export interface ObjectInfo {
  size: number;
  etag: string;
  contentType: string | undefined;
  /** user metadata, including `lance-crc32c` */
  metadata: Record<string, string>;
  lastModified: Date;
}

export interface GetStreamResult {
  /** errors with a CORRUPT LanceError at its end if a full-object read does not match the stored CRC32C */
  body: Readable;
  /** bytes this stream will deliver */
  length: number;
  info: ObjectInfo;
}

export interface ListOptions {
  /** list keys strictly after this one (S3 StartAfter) */
  startAfter?: string;
  /** roll keys up into common prefixes at the first delimiter after the prefix (usually '/') */
  delimiter?: string;
}

export type ListEntry =
  | { kind: 'object'; key: string; size: number; etag: string; lastModified: Date }
  | { kind: 'prefix'; prefix: string };

export interface ObjectStore {
  /** a short description for logs and errors, e.g. `s3://bucket/prefix/` or `file:///var/lib/lance-bucket` */
  readonly url: string;
  put(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult>;
  /**
   * put, then read the object's state back (HEAD: size, ETag and the stored CRC32C; a full read-back where the ETag
   * proves nothing) and compare with what was sent. A mismatch deletes the object and retries; when the attempts are
   * used up it throws CORRUPT. Only after this resolves may the caller delete its local copy.
   */
  putVerified(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult>;
  /** the whole object (CRC32C verified) or a range of it; NOT_FOUND when missing */
  get(key: string, opts?: GetOptions): Promise<Buffer>;
  getStream(key: string, opts?: GetOptions): Promise<GetStreamResult>;
  /** null when the key does not exist */
  head(key: string): Promise<ObjectInfo | null>;
  /** objects (and common prefixes when a delimiter is given) in ascending UTF-8 byte order of the key */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ListEntry>;
  /** deletes the keys (batches of up to 1000); missing keys are not an error */
  delete(keys: readonly string[]): Promise<void>;
  /** releases sockets/handles */
  close(): Promise<void>;
}

/**
 * Observation points for metrics (the server wires them to prom-client counters). All optional; they must not
 * throw. `op` is the S3 operation name (PutObject, UploadPart, GetObject, ...) or the file-backend method.
 */
export interface ObjectStoreHooks {
  /** one finished attempt of a request: 'ok' or the error code it failed with */
  onRequest?(op: string, outcome: 'ok' | LanceErrorCode, durationMs: number): void;
  /** an attempt failed with a retryable error and will be retried */
  onRetry?(op: string, code: LanceErrorCode): void;
  /** body bytes moved: 'out' = uploaded/written, 'in' = downloaded/read */
  onBytes?(direction: 'in' | 'out', bytes: number): void;
}

/** S3's key limit; the file backend enforces the same so both accept the same keys. */
export const MAX_KEY_BYTES = 1024;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws INVALID_ARGUMENT naming the key when it cannot be stored identically by both backends. */
export function validateKey(key: string, what = 'key'): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new LanceError('INVALID_ARGUMENT', `${what}: must be a non-empty string`, { key });
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new LanceError('INVALID_ARGUMENT', `${what} ${JSON.stringify(key.slice(0, 64))}...: ${bytes} bytes, at most ${MAX_KEY_BYTES}`, { key, bytes });
  }
  // NUL cannot be a file name byte; lone surrogates cannot round-trip through UTF-8.
  if (key.includes('\0') || LONE_SURROGATE.test(key)) {
    throw new LanceError('INVALID_ARGUMENT', `${what} ${JSON.stringify(key)}: contains NUL or invalid UTF-16`, { key });
  }
}

/** Throws INVALID_ARGUMENT for user metadata that S3 would mangle (it lower-cases names, allows only ASCII). */
export function validateMetadata(metadata: Record<string, string> | undefined): void {
  if (!metadata) return;
  for (const [k, v] of Object.entries(metadata)) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(k)) {
      throw new LanceError('INVALID_ARGUMENT', `metadata key ${JSON.stringify(k)}: expected lower-case [a-z0-9-]`, { field: `metadata.${k}` });
    }
    if (k === CRC32C_METADATA_KEY) {
      throw new LanceError('INVALID_ARGUMENT', `metadata key ${k}: reserved (set by the object store)`, { field: `metadata.${k}` });
    }
    if (typeof v !== 'string' || !/^[\x20-\x7e]*$/.test(v)) {
      throw new LanceError('INVALID_ARGUMENT', `metadata ${k}: value must be printable ASCII`, { field: `metadata.${k}` });
    }
  }
}

export function validateRange(range: ByteRange | undefined): void {
  if (!range) return;
  if (!Number.isSafeInteger(range.offset) || range.offset < 0) {
    throw new LanceError('INVALID_ARGUMENT', `range.offset: expected a non-negative integer, got ${range.offset}`, { field: 'range.offset' });
  }
  if (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 1)) {
    throw new LanceError('INVALID_ARGUMENT', `range.length: expected a positive integer, got ${range.length}`, { field: 'range.length' });
  }
}

/**
 * Clamps a requested range to an object of `size` bytes: [start, endExclusive). A range starting at or past the end
 * is INVALID_ARGUMENT (S3 answers 416), except on an empty object, which yields an empty result.
 */
export function resolveRange(key: string, size: number, range: ByteRange | undefined): { start: number; end: number } {
  if (!range) return { start: 0, end: size };
  if (range.offset >= size) {
    if (size === 0 && range.offset === 0) return { start: 0, end: 0 };
    throw new LanceError('INVALID_ARGUMENT', `get ${key}: range offset ${range.offset} is past the end of the object (${size} bytes)`, { key, offset: range.offset, size });
  }
  const end = range.length === undefined ? size : Math.min(size, range.offset + range.length);
  return { start: range.offset, end };
}

/** Byte-wise (UTF-8) key order, which is S3's listing order; differs from JS string order for astral characters. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The listing rule shared by both backends, as a pure function of one key: skipped (outside prefix/startAfter),
 * an object, or rolled up into a common prefix.
 */
export function classifyListedKey(key: string, prefix: string, opts: ListOptions): { kind: 'skip' } | { kind: 'object' } | { kind: 'prefix'; prefix: string } {
  if (!key.startsWith(prefix)) return { kind: 'skip' };
  if (opts.startAfter !== undefined && compareKeys(key, opts.startAfter) <= 0) return { kind: 'skip' };
  if (opts.delimiter) {
    const i = key.indexOf(opts.delimiter, prefix.length);
    if (i >= 0) return { kind: 'prefix', prefix: key.slice(0, i + opts.delimiter.length) };
  }
  return { kind: 'object' };
}
