/**
 * The S3 backend (@aws-sdk/client-s3). What it adds on top of the SDK:
 * - our own bounded retry loop (exponential backoff + jitter) on 5xx, throttling, network errors, timeouts and
 *   bodies corrupted in transit; the SDK's own retries are off (maxAttempts 1) so the bounds are ours alone;
 * - a deadline per attempt (base + bytes / minimum throughput, enforced with an AbortSignal) on top of the
 *   socket idle timeout, so neither a stalled nor a trickling connection can hang a caller;
 * - Content-MD5 on every PutObject/UploadPart (real S3 rejects a body damaged in transit) and a check of the
 *   returned ETag against the MD5 we computed (catches endpoints that do not check, e.g. s3rver);
 * - multipart upload above a threshold, parts uploaded concurrently and individually retried, aborted on failure,
 *   and the completed object's size checked;
 * - CRC32C of every body in `x-amz-meta-lance-crc32c`, verified on every full-object read.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectsCommand,
  GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { LanceError, isLanceError, type LanceErrorCode } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { silentLogger } from '../common/log.ts';
import { bodyVerifier, crcHex, multipartEtag, replayable, stripQuotes, type ReplayableBody } from './body.ts';
import {
  CRC32C_METADATA_KEY, classifyListedKey, compareKeys, validateKey, validateMetadata, validateRange,
  type GetOptions, type GetStreamResult, type ListEntry, type ListOptions, type ObjectInfo, type ObjectStore,
  type ObjectStoreHooks, type PutBody, type PutOptions, type PutResult,
} from './object-store.ts';
import { withRetry, type Classified, type RetryPolicy } from './retry.ts';
import { crc32c } from '@node-rs/crc32';

export interface S3ObjectStoreOptions {
  bucket: string;
  /** e.g. http://127.0.0.1:4569; omit for AWS */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** static credentials; omitted = the SDK's default provider chain (AWS_* env, ~/.aws files, web identity, IMDS) */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** objects larger than this use multipart upload */
  multipartThresholdBytes: number;
  partSizeBytes: number;
  partConcurrency: number;
  retry: RetryPolicy;
  /** putVerified: whole-upload attempts when verification fails */
  verifyAttempts: number;
  connectTimeoutMs: number;
  /** socket inactivity limit */
  idleTimeoutMs: number;
  /** per-attempt deadline = requestTimeoutMs + bytes / minThroughputBytesPerSec */
  requestTimeoutMs: number;
  minThroughputBytesPerSec: number;
  /** ListObjectsV2 MaxKeys (S3 caps it at 1000) */
  listPageSize: number;
  /**
   * 'server': S3 rolls keys up into common prefixes (Delimiter). 'client': we do, skipping past each prefix with
   * StartAfter — needed for s3rver, which misses prefixes whose keys all lie two or more levels deeper.
   */
  listDelimiter: 'server' | 'client';
  /**
   * true when the endpoint's ETags are MD5s (AWS without SSE-KMS/SSE-C, MinIO, s3rver): put checks them against the
   * body and putVerified trusts a matching ETag; false = putVerified reads the whole object back instead.
   */
  etagIsMd5: boolean;
  /** where one-shot stream bodies larger than the multipart threshold are spooled (default: OS temp dir) */
  spoolDir?: string;
  log?: Logger;
  hooks?: ObjectStoreHooks;
}

/** what a finished upload should look like, for verification */
interface UploadOutcome {
  result: PutResult;
  /** ETags that prove the content when etagIsMd5: the whole-body MD5 and, for multipart, S3's md5-of-md5s-N */
  goodEtags: string[];
}

const MAX_PARTS = 10_000;

/** A failure inside one attempt that a new attempt may cure (a body damaged in transit). */
function transient(code: LanceErrorCode, message: string, details: Record<string, unknown>): LanceError {
  return new LanceError(code, message, { ...details, retryable: true });
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
}

const RETRYABLE_NAMES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestTimeout', 'RequestTimeTooSkewed',
  'InternalError', 'ServiceUnavailable', 'BadDigest', 'IncompleteBody', 'TimeoutError', 'RequestTimeoutException',
]);

/** Pure: what an SDK/network error means for the caller and whether another attempt may help. */
export function classifyS3Error(e: unknown, what: string): Classified {
  if (isLanceError(e)) return { error: e, retryable: e.details?.retryable === true };
  const err = (e ?? {}) as SdkErrorShape;
  const name = err.name ?? err.Code ?? 'Error';
  const status = err.$metadata?.httpStatusCode;
  const detail = `${name}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? String(e)}`;
  const mk = (code: LanceErrorCode, retryable: boolean): Classified => ({
    error: new LanceError(code, `${what}: ${detail}`, { status, s3Code: name }, { cause: e }),
    retryable,
  });
  if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket' || name === 'NoSuchUpload') return mk('NOT_FOUND', false);
  if (name === 'InvalidRange' || status === 416) return mk('INVALID_ARGUMENT', false);
  if (name === 'TimeoutError' || name === 'AbortError' || err.code === 'ETIMEDOUT') return mk('TIMEOUT', true);
  if (RETRYABLE_NAMES.has(name) || (status !== undefined && (status >= 500 || status === 429))) return mk('IO', true);
  if (status === 404) return mk('NOT_FOUND', false);
  if (status !== undefined && status >= 400) return mk('IO', false);
  // No HTTP status (connection refused/reset, socket hang up) or a 2xx whose body did not parse (damaged in
  // transit): both are worth another attempt.
  return mk('IO', true);
}

export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  private readonly client: S3Client;
  private readonly o: S3ObjectStoreOptions;
  private readonly log: Logger;

  constructor(opts: S3ObjectStoreOptions) {
    this.o = opts;
    this.log = opts.log ?? silentLogger;
    this.url = `s3://${opts.bucket}/`;
    // The SDK version is pinned on purpose (later releases need Node 22, see package.json); its "Node 20 support
    // ends" warning would only clutter broker logs and `lnc` output. An explicit setting by the user wins.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: 1,
      requestHandler: { connectionTimeout: opts.connectTimeoutMs, socketTimeout: opts.idleTimeoutMs },
      // The SDK's flexible checksums (x-amz-checksum-*, aws-chunked trailers) are not understood by every
      // S3-compatible endpoint; we carry our own CRC32C in metadata instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private where(key?: string): string {
    return key === undefined ? `s3://${this.o.bucket}` : `s3://${this.o.bucket}/${key}`;
  }

  private deadlineMs(bytes: number): number {
    return this.o.requestTimeoutMs + Math.ceil((bytes / this.o.minThroughputBytesPerSec) * 1000);
  }

  /**
   * One retried request. `fn` gets an AbortSignal that fires at the attempt's deadline and an `extend(bytes)` to
   * re-arm the deadline once a response announces how many bytes are still to come.
   */
  private request<T>(op: string, key: string | undefined, bytes: number, fn: (signal: AbortSignal, extend: (bytes: number) => void) => Promise<T>): Promise<T> {
    const what = `${op} ${this.where(key)}`;
    const hooks = this.o.hooks;
    const opName = op.split(' ')[0]!;
    const ctx = {
      policy: this.o.retry, classify: (e: unknown) => classifyS3Error(e, what), log: this.log,
      ...(hooks?.onRetry ? { onRetry: (code: LanceErrorCode) => hooks.onRetry!(opName, code) } : {}),
    };
    return withRetry(what, ctx, async () => {
      const started = performance.now();
      try {
        const r = await this.attempt(what, key, bytes, fn);
        hooks?.onRequest?.(opName, 'ok', performance.now() - started);
        return r;
      } catch (e) {
        hooks?.onRequest?.(opName, classifyS3Error(e, what).error.code, performance.now() - started);
        throw e;
      }
    });
  }

  private async attempt<T>(what: string, key: string | undefined, bytes: number, fn: (signal: AbortSignal, extend: (bytes: number) => void) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    let timedOutAfter = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timedOutAfter = ms;
        ac.abort();
      }, ms);
    };
    arm(this.deadlineMs(bytes));
    try {
      return await fn(ac.signal, (n) => arm(this.deadlineMs(n)));
    } catch (e) {
      if (timedOutAfter > 0) {
        throw new LanceError('TIMEOUT', `${what}: no complete response within ${timedOutAfter} ms`, { key, timeoutMs: timedOutAfter, retryable: true }, { cause: e });
      }
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    validateMetadata(opts.metadata);
    const src = await replayable(body, this.replayOpts());
    try {
      return (await this.upload(key, src, opts)).result;
    } finally {
      await src.dispose();
    }
  }

  private replayOpts(): { memoryLimitBytes: number; spoolDir?: string } {
    return { memoryLimitBytes: this.o.multipartThresholdBytes, ...(this.o.spoolDir ? { spoolDir: this.o.spoolDir } : {}) };
  }

  private metadataFor(src: ReplayableBody, opts: PutOptions): Record<string, string> {
    return { ...opts.metadata, [CRC32C_METADATA_KEY]: src.crc32c };
  }

  private async upload(key: string, src: ReplayableBody, opts: PutOptions): Promise<UploadOutcome> {
    const md5hex = src.md5.toString('hex');
    if (src.size <= this.o.multipartThresholdBytes) {
      const buf = await src.read(0, src.size);
      const out = await this.request('PutObject', key, src.size, (abortSignal) => this.client.send(new PutObjectCommand({
        Bucket: this.o.bucket, Key: key, Body: buf, ContentLength: buf.length, ContentMD5: src.md5.toString('base64'),
        ...(opts.contentType ? { ContentType: opts.contentType } : {}),
        Metadata: this.metadataFor(src, opts),
      }), { abortSignal }).then((r) => {
        this.o.hooks?.onBytes?.('out', buf.length);
        const etag = stripQuotes(r.ETag);
        if (this.o.etagIsMd5 && etag !== md5hex) {
          throw transient('CORRUPT', `PutObject ${this.where(key)}: ETag ${etag} is not the MD5 ${md5hex} of the body sent (damaged in transit)`, { key });
        }
        return r;
      }));
      return { result: { key, etag: stripQuotes(out.ETag), size: src.size, checksum: src.crc32c }, goodEtags: [md5hex] };
    }
    return this.uploadMultipart(key, src, opts);
  }

  private async uploadMultipart(key: string, src: ReplayableBody, opts: PutOptions): Promise<UploadOutcome> {
    const partSize = Math.max(this.o.partSizeBytes, Math.ceil(src.size / MAX_PARTS));
    const partCount = Math.ceil(src.size / partSize);
    const created = await this.request('CreateMultipartUpload', key, 0, (abortSignal) => this.client.send(new CreateMultipartUploadCommand({
      Bucket: this.o.bucket, Key: key,
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
      Metadata: this.metadataFor(src, opts),
    }), { abortSignal }));
    const uploadId = created.UploadId;
    if (!uploadId) throw new LanceError('IO', `CreateMultipartUpload ${this.where(key)}: no UploadId in the response`, { key });
    const log = this.log.child({ key, uploadId });
    const parts: { PartNumber: number; ETag: string }[] = new Array(partCount);
    const partMd5s: Buffer[] = new Array(partCount);
    try {
      let next = 0;
      let failed = false;
      const worker = async (): Promise<void> => {
        while (!failed && next < partCount) {
          const i = next++;
          const offset = i * partSize;
          const buf = await src.read(offset, Math.min(partSize, src.size - offset));
          const md5 = createHash('md5').update(buf).digest();
          const partNumber = i + 1;
          const out = await this.request(`UploadPart ${partNumber}/${partCount}`, key, buf.length, (abortSignal) => this.client.send(new UploadPartCommand({
            Bucket: this.o.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: buf, ContentLength: buf.length,
            ContentMD5: md5.toString('base64'),
          }), { abortSignal }).then((r) => {
            this.o.hooks?.onBytes?.('out', buf.length);
            const etag = stripQuotes(r.ETag);
            if (this.o.etagIsMd5 && etag !== md5.toString('hex')) {
              throw transient('CORRUPT', `UploadPart ${partNumber} ${this.where(key)}: ETag ${etag} is not the MD5 of the part sent (damaged in transit)`, { key, partNumber });
            }
            return r;
          }));
          parts[i] = { PartNumber: partNumber, ETag: out.ETag ?? '' };
          partMd5s[i] = md5;
        }
      };
      const workers = Array.from({ length: Math.min(this.o.partConcurrency, partCount) }, () => worker().catch((e: unknown) => {
        failed = true;
        throw e;
      }));
      const settled = await Promise.allSettled(workers);
      const firstFailure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (firstFailure) throw firstFailure.reason;
      const goodEtags = [src.md5.toString('hex'), multipartEtag(partMd5s)];
      let completedEtag: string;
      try {
        const done = await this.request('CompleteMultipartUpload', key, 0, (abortSignal) => this.client.send(new CompleteMultipartUploadCommand({
          Bucket: this.o.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts },
        }), { abortSignal }));
        completedEtag = stripQuotes(done.ETag);
      } catch (e) {
        // A Complete whose answer was lost succeeded anyway; its retry then fails (S3: NoSuchUpload). If the key now
        // holds exactly our body, the upload is done.
        const h = await this.head(key).catch(() => null);
        const ours = h !== null && h.size === src.size && h.metadata[CRC32C_METADATA_KEY] === src.crc32c && (!this.o.etagIsMd5 || goodEtags.includes(h.etag));
        if (!ours) throw isLanceError(e, 'NOT_FOUND') ? new LanceError('IO', e.message, e.details, { cause: e }) : e;
        log.info({ err: String(e) }, 'CompleteMultipartUpload failed but the object is complete (its answer was lost)');
        completedEtag = h.etag;
      }
      const head = await this.head(key);
      if (!head || head.size !== src.size) {
        throw new LanceError('CORRUPT', `CompleteMultipartUpload ${this.where(key)}: object is ${head ? head.size : 'missing'} bytes, uploaded ${src.size}`, { key, size: head?.size, expected: src.size });
      }
      log.debug({ parts: partCount, size: src.size }, 'multipart upload complete');
      return { result: { key, etag: completedEtag, size: src.size, checksum: src.crc32c }, goodEtags };
    } catch (e) {
      // Best effort: an upload that is not aborted keeps its parts (and their storage cost) around.
      await this.request('AbortMultipartUpload', key, 0, (abortSignal) => this.client.send(new AbortMultipartUploadCommand({
        Bucket: this.o.bucket, Key: key, UploadId: uploadId,
      }), { abortSignal })).catch((ae: unknown) => log.warn({ err: String(ae) }, 'could not abort multipart upload'));
      throw e;
    }
  }

  async putVerified(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    validateKey(key);
    validateMetadata(opts.metadata);
    const src = await replayable(body, this.replayOpts());
    try {
      let lastProblem = '';
      for (let attempt = 1; attempt <= this.o.verifyAttempts; attempt++) {
        let outcome: UploadOutcome;
        try {
          outcome = await this.upload(key, src, opts);
        } catch (e) {
          // IO/CORRUPT after the per-request retries (e.g. a multipart part that vanished): a fresh upload may
          // succeed. TIMEOUT, NOT_FOUND (bucket) and bad arguments will not get better.
          if (isLanceError(e) && (e.code === 'IO' || e.code === 'CORRUPT') && attempt < this.o.verifyAttempts) {
            this.log.warn({ key, attempt, err: e.message }, 'upload failed; starting it over');
            lastProblem = e.message;
            continue;
          }
          throw e;
        }
        const problem = await this.verify(key, src, outcome);
        if (problem === null) return outcome.result;
        lastProblem = problem;
        this.log.warn({ key, attempt, problem }, 'uploaded object failed verification; deleting and retrying');
        await this.delete([key]);
      }
      throw new LanceError('CORRUPT', `put ${this.where(key)}: stored object failed verification after ${this.o.verifyAttempts} attempts: ${lastProblem}`, { key, attempts: this.o.verifyAttempts });
    } finally {
      await src.dispose();
    }
  }

  /** null when the stored object provably holds `src`; else what is wrong with it. */
  private async verify(key: string, src: ReplayableBody, outcome: UploadOutcome): Promise<string | null> {
    const head = await this.head(key);
    if (!head) return 'object missing after upload';
    if (head.size !== src.size) return `size ${head.size}, uploaded ${src.size}`;
    const storedCrc = head.metadata[CRC32C_METADATA_KEY];
    if (storedCrc !== src.crc32c) return `metadata ${CRC32C_METADATA_KEY}=${storedCrc}, body crc32c ${src.crc32c}`;
    if (this.o.etagIsMd5) {
      return outcome.goodEtags.includes(head.etag) ? null : `ETag ${head.etag} matches neither ${outcome.goodEtags.join(' nor ')}`;
    }
    // ETags prove nothing here (SSE-KMS): read the object back and compare checksums.
    const { body } = await this.getStream(key);
    let crc = 0;
    try {
      for await (const c of body) crc = crc32c(c as Buffer, crc);
    } catch (e) {
      if (isLanceError(e, 'CORRUPT')) return e.message;
      throw e;
    }
    return crcHex(crc) === src.crc32c ? null : `read back crc32c ${crcHex(crc)}, uploaded ${src.crc32c}`;
  }

  private rangeHeader(opts: GetOptions): string | undefined {
    const r = opts.range;
    if (!r) return undefined;
    return r.length === undefined ? `bytes=${r.offset}-` : `bytes=${r.offset}-${r.offset + r.length - 1}`;
  }

  private info(out: { ContentLength?: number; ETag?: string; ContentType?: string; Metadata?: Record<string, string>; LastModified?: Date }, size: number): ObjectInfo {
    return {
      size, etag: stripQuotes(out.ETag), contentType: out.ContentType, metadata: { ...out.Metadata },
      lastModified: out.LastModified ?? new Date(0),
    };
  }

  /** Total object size from Content-Range (`bytes 0-9/1234`) for ranged responses, else Content-Length. */
  private objectSize(out: GetObjectCommandOutput): number {
    const m = /\/(\d+)$/.exec(out.ContentRange ?? '');
    return m ? Number(m[1]) : (out.ContentLength ?? 0);
  }

  async get(key: string, opts: GetOptions = {}): Promise<Buffer> {
    validateKey(key);
    validateRange(opts.range);
    const range = this.rangeHeader(opts);
    try {
      return await this.request('GetObject', key, opts.range?.length ?? 0, async (abortSignal, extend) => {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: key, ...(range ? { Range: range } : {}) }), { abortSignal });
        if (this.objectSize(out) === 0) {
          // An empty object has no bytes to range over; s3rver even announces one byte it never sends.
          (out.Body as Readable | undefined)?.destroy();
          return Buffer.alloc(0);
        }
        const expected = out.ContentLength ?? 0;
        extend(expected);
        const chunks: Buffer[] = [];
        for await (const c of out.Body as Readable) chunks.push(c as Buffer);
        const buf = Buffer.concat(chunks);
        this.o.hooks?.onBytes?.('in', buf.length);
        if (buf.length !== expected) {
          throw transient('IO', `GetObject ${this.where(key)}: got ${buf.length} of ${expected} bytes`, { key });
        }
        const stored = out.Metadata?.[CRC32C_METADATA_KEY];
        if (!range && stored !== undefined) {
          const actual = crcHex(crc32c(buf));
          if (actual !== stored) throw transient('CORRUPT', `GetObject ${this.where(key)}: crc32c ${actual}, stored ${stored}`, { key });
        }
        return buf;
      });
    } catch (e) {
      return this.emptyRangeOr(key, opts, e, () => Buffer.alloc(0));
    }
  }

  /** S3 answers 416 for any range on an empty object; the contract (and the file backend) returns it empty. */
  private async emptyRangeOr<T>(key: string, opts: GetOptions, e: unknown, empty: (info: ObjectInfo) => T): Promise<T> {
    if (isLanceError(e, 'INVALID_ARGUMENT') && opts.range) {
      const h = await this.head(key);
      if (h && h.size === 0 && opts.range.offset === 0) return empty(h);
      throw new LanceError('INVALID_ARGUMENT', `get ${key}: range offset ${opts.range.offset} is past the end of the object (${h?.size ?? 0} bytes)`, { key, offset: opts.range.offset, size: h?.size });
    }
    throw e;
  }

  async getStream(key: string, opts: GetOptions = {}): Promise<GetStreamResult> {
    validateKey(key);
    validateRange(opts.range);
    const range = this.rangeHeader(opts);
    let out: GetObjectCommandOutput;
    try {
      // The deadline covers the response headers only; the body is paced by its consumer and guarded by the
      // socket idle timeout.
      out = await this.request('GetObject', key, 0, (abortSignal) =>
        this.client.send(new GetObjectCommand({ Bucket: this.o.bucket, Key: key, ...(range ? { Range: range } : {}) }), { abortSignal }));
    } catch (e) {
      return this.emptyRangeOr(key, opts, e, (info) => ({ body: Readable.from([]), length: 0, info }));
    }
    const raw = out.Body as Readable;
    if (this.objectSize(out) === 0) {
      raw.destroy();
      return { body: Readable.from([]), length: 0, info: this.info(out, 0) };
    }
    const stored = out.Metadata?.[CRC32C_METADATA_KEY];
    const info = this.info(out, this.objectSize(out));
    // Errors of the socket stream (idle timeout, connection cut) reach the consumer as LanceErrors too.
    const body = bodyVerifier(key, { ...(out.ContentLength !== undefined ? { length: out.ContentLength } : {}), ...(range || stored === undefined ? {} : { crc32c: stored }) });
    const what = `GetObject ${this.where(key)}`;
    raw.on('error', (e) => body.destroy(classifyS3Error(e, what).error));
    body.once('close', () => {
      if (!raw.destroyed) raw.destroy(); // the consumer stopped early: release the connection
    });
    raw.pipe(body);
    return { body, length: out.ContentLength ?? 0, info };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    validateKey(key);
    try {
      const out = await this.request('HeadObject', key, 0, (abortSignal) => this.client.send(new HeadObjectCommand({ Bucket: this.o.bucket, Key: key }), { abortSignal }));
      return this.info(out, out.ContentLength ?? 0);
    } catch (e) {
      if (isLanceError(e, 'NOT_FOUND') && e.details?.s3Code !== 'NoSuchBucket') return null;
      throw e;
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ListEntry> {
    if (!opts.delimiter || this.o.listDelimiter === 'server') {
      yield* this.listPages(prefix, opts.delimiter, opts.startAfter);
      return;
    }
    // Client-side roll-up: list without a delimiter and, at each new common prefix, restart the listing just past
    // it (one request per prefix, never a walk through its keys). Exact on every S3 implementation.
    let startAfter = opts.startAfter;
    let skip: string | undefined;
    restart: for (;;) {
      for await (const e of this.listPages(prefix, undefined, startAfter)) {
        if (e.kind !== 'object' || (skip !== undefined && e.key.startsWith(skip))) continue;
        const c = classifyListedKey(e.key, prefix, opts);
        if (c.kind === 'skip') continue;
        if (c.kind === 'object') {
          yield e;
          continue;
        }
        yield { kind: 'prefix', prefix: c.prefix };
        skip = c.prefix;
        // U+10FFFF is the largest code point: in UTF-8 byte order this sorts after every key under the prefix
        // (except keys that themselves continue with U+10FFFF: then keep reading this listing, skipping them).
        const next = c.prefix + '\u{10FFFF}';
        if (compareKeys(next, e.key) > 0) {
          startAfter = next;
          continue restart;
        }
      }
      return;
    }
  }

  /** ListObjectsV2 over ALL pages, entries of each page merged in key order. */
  private async *listPages(prefix: string, delimiter: string | undefined, startAfter: string | undefined): AsyncIterable<ListEntry> {
    let token: string | undefined;
    const seenPrefixes = new Set<string>();
    let page = 0;
    /** the largest key of the pages before this one */
    let maxBefore: string | undefined;
    for (;;) {
      page++;
      const out = await this.request(`ListObjectsV2 page ${page}`, prefix, 0, (abortSignal) => this.client.send(new ListObjectsV2Command({
        Bucket: this.o.bucket, Prefix: prefix, MaxKeys: this.o.listPageSize,
        ...(delimiter ? { Delimiter: delimiter } : {}),
        ...(token ? { ContinuationToken: token } : startAfter !== undefined ? { StartAfter: startAfter } : {}),
      }), { abortSignal }));
      const entries: ListEntry[] = [];
      let prev: string | undefined;
      let maxHere = maxBefore;
      for (const c of out.Contents ?? []) {
        if (c.Key === undefined) continue;
        // Continuation resumes after the last key returned. An endpoint that returns keys out of byte order (s3rver
        // does, for siblings like `a` / `a-b` / `a/…` or `x.json` / `x/…`) can make a PAGED listing skip keys: fail
        // loudly then. A page that is the last one holds everything that is left: sorting it is enough.
        const outOfOrder = (prev !== undefined && compareKeys(c.Key, prev) <= 0 && out.IsTruncated === true)
          || (maxBefore !== undefined && compareKeys(c.Key, maxBefore) <= 0);
        if (outOfOrder) {
          throw new LanceError('IO', `ListObjectsV2 ${this.where(prefix)}: the endpoint returned ${JSON.stringify(c.Key)} out of UTF-8 byte order (page ${page}); a paged listing could skip keys`, { prefix, key: c.Key, page });
        }
        prev = c.Key;
        if (maxHere === undefined || compareKeys(c.Key, maxHere) > 0) maxHere = c.Key;
        entries.push({ kind: 'object', key: c.Key, size: c.Size ?? 0, etag: stripQuotes(c.ETag), lastModified: c.LastModified ?? new Date(0) });
      }
      maxBefore = maxHere;
      for (const p of out.CommonPrefixes ?? []) {
        if (p.Prefix === undefined || seenPrefixes.has(p.Prefix)) continue;
        seenPrefixes.add(p.Prefix);
        entries.push({ kind: 'prefix', prefix: p.Prefix });
      }
      const sortKey = (e: ListEntry): Buffer => Buffer.from(e.kind === 'object' ? e.key : e.prefix, 'utf8');
      entries.sort((a, b) => Buffer.compare(sortKey(a), sortKey(b)));
      yield* entries;
      if (!out.IsTruncated) return;
      if (!out.NextContinuationToken) {
        // Stopping here would silently drop the rest of the listing.
        throw new LanceError('IO', `ListObjectsV2 ${this.where(prefix)}: page ${page} is truncated but has no continuation token`, { prefix, page });
      }
      token = out.NextContinuationToken;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const k of keys) validateKey(k);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.request('DeleteObjects', batch[0], 0, (abortSignal) => this.client.send(new DeleteObjectsCommand({
        Bucket: this.o.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }), { abortSignal }));
      const errors = (out.Errors ?? []).filter((er) => er.Code !== 'NoSuchKey');
      if (errors.length > 0) {
        const first = errors[0]!;
        throw new LanceError('IO', `DeleteObjects ${this.where()}: ${errors.length} of ${batch.length} keys not deleted; first: ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim(), {
          keys: errors.map((er) => er.Key),
        });
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
