/**
 * TieredStorage: per-partition upload of sealed segments to the object store, the manifest that records them,
 * local retention that only deletes verified uploads, remote retention, and reads below the local log start.
 *
 * One pass per partition (every `uploadIntervalMs`, or sooner after a failure with exponential backoff):
 *   1. seal the active segment if it holds committed data (so the recovery point is at most ~one interval old);
 *   2. for each sealed, committed segment after the manifest's last one: putVerified .idx, .tix, then .lnc
 *      (size + CRC32C checked by the store), then write a NEW manifest object (term, version+1) listing it;
 *   3. remote retention (the topic's retention.ms/bytes): drop the oldest remote segments from a new manifest,
 *      then delete their objects;
 *   4. local retention (tiering.localRetentionMs/Bytes): delete local segments — only those the manifest holds.
 * The broker's own retention pass also asks canDelete(), so no local segment goes before its verified upload.
 */
import fs from 'node:fs';
import type { Registry } from 'prom-client';
import { LanceError, isLanceError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { planRetention, type PartitionLog } from '../storage/partition-log.ts';
import type { SegmentInfo, StoredEntry } from '../storage/types.ts';
import {
  decodeManifest, emptyManifest, encodeManifest, findRemoteSegment, isUploaded, manifestKey, manifestPrefix, newestFirst,
  parseManifestKey, planRemoteRetention, segmentKeyStem, type Manifest, type PartitionRef, type RemoteSegment,
} from './manifest.ts';
import { TieringMetrics } from './metrics.ts';
import type { ObjectStore } from './object-store.ts';
import { LruCache, RemoteSegmentReader } from './remote-reader.ts';

export interface TieringSettings {
  /** how often each partition is synced to the bucket (default 10 s) */
  uploadIntervalMs: number;
  /** local retention by age of a segment's newest record; 0 = only the topic's retention applies locally */
  localRetentionMs: number;
  /** local retention by size per partition; 0 = only the topic's retention applies locally */
  localRetentionBytes: number;
  /** bytes of remote segment data kept in the read cache */
  cacheBytes: number;
  /** range-read block size */
  blockBytes: number;
  /** first retry delay after a failed pass (doubles, capped at retryMaxMs) */
  retryBaseMs: number;
  retryMaxMs: number;
  /** manifests kept per partition (older versions are deleted) */
  keepManifests: number;
}

export const DEFAULT_TIERING_SETTINGS: TieringSettings = {
  uploadIntervalMs: 10_000, localRetentionMs: 0, localRetentionBytes: 0, cacheBytes: 64 * 1024 * 1024,
  blockBytes: 1024 * 1024, retryBaseMs: 500, retryMaxMs: 30_000, keepManifests: 3,
};

/** What the broker tells tiering about one partition it leads. */
export interface TieredPartition {
  topic: string;
  ref: PartitionRef;
  log: PartitionLog;
  term(): number;
  /** committed end offset: only segments entirely below it are uploaded */
  highWatermark(): number;
  /** the topic's retention, applied to the remote log */
  remoteRetention(): { retentionMs: number; retentionBytes: number };
  /**
   * cluster mode: whether this replica uploads now (it leads the partition). A replica that is not active forgets
   * its manifest, so when it leads again it reloads what the leaders in between wrote.
   */
  active?(): boolean;
}

/**
 * Pure: a new leader whose local segments do not line up with the remote manifest's last segment (replicas roll
 * segments independently) keeps the first `k` remote segments and re-uploads its own log from there. `k` is the
 * largest count whose end is the base of a local segment; 0 when the local log starts at or before the remote
 * log; null when neither works (the local data needed is gone).
 */
export function planTakeover(
  remote: readonly { baseOffset: number; lastOffset: number; firstIndex: number; lastIndex?: number | undefined }[],
  local: readonly { baseOffset: number; firstIndex: number }[],
): number | null {
  // a boundary is an offset AND a Raft index: zero-offset entries (a leader's NOOP) sit between equal offsets
  const bases = new Set(local.map((l) => `${l.baseOffset}:${l.firstIndex}`));
  for (let k = remote.length - 1; k >= 1; k--) {
    const prev = remote[k - 1]!;
    const nextIndex = (prev.lastIndex ?? remote[k]!.firstIndex - 1) + 1;
    if (bases.has(`${prev.lastOffset + 1}:${nextIndex}`)) return k;
  }
  if (local.length > 0 && local[0]!.baseOffset <= (remote[0]?.baseOffset ?? Number.MAX_SAFE_INTEGER)) return 0;
  return null;
}

/** Pure: does a local segment continue the remote log right after `last` (same offset and Raft index)? */
export function continuesRemote(last: { lastOffset: number; lastIndex?: number | undefined }, seg: { baseOffset: number; firstIndex: number }): boolean {
  return seg.baseOffset === last.lastOffset + 1 && (last.lastIndex === undefined || seg.firstIndex === last.lastIndex + 1);
}

interface PartitionState {
  tp: TieredPartition;
  manifest: Manifest | null;
  /**
   * the newest manifest known to be in the bucket (loaded or written); `manifest` can run ahead of it in memory (a
   * takeover drops remote segments before the manifest without them is written): restore points report this one
   */
  persisted: Manifest | null;
  /** a manifest load in flight (shared by passes and readers) */
  loading: Promise<void> | null;
  /** highest manifest version seen in the bucket (the next write uses +1) */
  lastVersion: number;
  fenced: boolean;
  running: Promise<void> | null;
  nextDueAt: number;
  failures: number;
  removed: boolean;
}

export interface TieredStorageOptions {
  store: ObjectStore;
  nodeId: number;
  logger: Logger;
  settings?: Partial<TieringSettings>;
  /** the server's registry; or pre-built metrics (which must then have been wired into the store's hooks) */
  metrics?: TieringMetrics;
  registry?: Registry;
  now?: () => number;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class TieredStorage {
  readonly settings: TieringSettings;
  readonly metrics: TieringMetrics | undefined;
  private readonly store: ObjectStore;
  private readonly nodeId: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly parts = new Map<string, PartitionState>();
  private readonly reader: RemoteSegmentReader;
  private readonly cache: LruCache;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(opts: TieredStorageOptions) {
    this.settings = { ...DEFAULT_TIERING_SETTINGS, ...opts.settings };
    this.store = opts.store;
    this.nodeId = opts.nodeId;
    this.log = opts.logger.child({ component: 'tiering' });
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? (opts.registry ? new TieringMetrics(opts.registry) : undefined);
    this.cache = new LruCache(this.settings.cacheBytes);
    this.reader = new RemoteSegmentReader(this.store, this.cache, this.settings.blockBytes, (n) => this.metrics?.remoteFetchBytes.inc(n));
  }

  get url(): string {
    return this.store.url;
  }

  /** Starts the pass timer (ticks at most every second, so retries after a failure are not an interval late). */
  start(): void {
    const tickMs = Math.max(10, Math.min(this.settings.uploadIntervalMs, this.settings.retryBaseMs, 1000));
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
  }

  /**
   * Stops the timer and waits for running passes, at most `waitMs`: a pass stuck on a stalled store must not hold
   * up shutdown (whatever it completes later is still correct: manifests only list verified uploads). Does not close
   * the store.
   */
  async stop(waitMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
      timer.unref();
    });
    await Promise.race([Promise.allSettled([...this.parts.values()].map((s) => s.running)), bounded]);
    clearTimeout(timer);
  }

  addPartition(tp: TieredPartition): void {
    this.parts.set(keyOf(tp.topic, tp.ref.partition), {
      tp, manifest: null, persisted: null, loading: null, lastVersion: 0, fenced: false, running: null, nextDueAt: 0, failures: 0, removed: false,
    });
  }

  /** Forgets a partition (topic deleted). Its objects stay in the bucket. */
  removePartition(topic: string, partition: number): void {
    const s = this.parts.get(keyOf(topic, partition));
    if (s) s.removed = true;
    this.parts.delete(keyOf(topic, partition));
  }

  private state(topic: string, partition: number): PartitionState | undefined {
    return this.parts.get(keyOf(topic, partition));
  }

  /**
   * Loads the partition's manifest from the bucket if not yet known (after a restart a fetch below the local log
   * start must not be answered before the remote segments are known). Errors propagate; a later call retries.
   */
  async ensureLoaded(topic: string, partition: number): Promise<void> {
    const s = this.state(topic, partition);
    if (s) await this.ensureLoadedState(s);
  }

  private ensureLoadedState(s: PartitionState): Promise<void> {
    if (s.manifest) return Promise.resolve();
    s.loading ??= this.loadManifest(s).finally(() => {
      s.loading = null;
    });
    return s.loading;
  }

  /** The latest manifest this node knows (null until the first pass loaded it). */
  /** What the bucket holds for a partition (restore points): its newest written manifest, else the placeholder. */
  manifest(topic: string, partition: number): Manifest | null {
    const st = this.state(topic, partition);
    return st?.persisted ?? st?.manifest ?? null;
  }

  /** For PartitionLog.enforceRetention / truncateBeforeOffset: only segments recorded in the manifest (or expired remotely). */
  canDelete(topic: string, partition: number): (s: SegmentInfo) => boolean {
    return (s) => {
      const m = this.state(topic, partition)?.manifest;
      if (!m) return false;
      // uploaded and verified; or already expired from the remote log by the topic retention (then the same policy
      // lets it go locally: keeping it would block every later deletion, since only a prefix can be deleted)
      return isUploaded(m, s) || (m.version > 0 && s.sealed && s.lastOffset < m.remoteLogStartOffset);
    };
  }

  /**
   * The earliest readable offset: the remote log start when the remote segments reach the local log without a
   * gap, else the local log start.
   */
  earliestOffset(topic: string, partition: number, localStart: number): number {
    const m = this.state(topic, partition)?.manifest;
    if (!m || m.segments.length === 0) return localStart;
    // walk back from the local start over contiguous remote segments
    let start = localStart;
    for (let i = m.segments.length - 1; i >= 0; i--) {
      const s = m.segments[i]!;
      if (s.baseOffset >= start) continue;
      if (s.lastOffset + 1 < start) break;
      start = s.baseOffset;
    }
    return start;
  }

  /** Entries from the remote segment holding `offset` (whole entries, like PartitionLog.read). */
  async read(topic: string, partition: number, offset: number, maxBytes: number): Promise<StoredEntry[]> {
    const st = this.state(topic, partition);
    const seg = st?.manifest ? findRemoteSegment(st.manifest, offset) : undefined;
    if (!seg) {
      throw new LanceError('OFFSET_OUT_OF_RANGE', `${topic}-${partition}: offset ${offset} is neither local nor in the object store`, { topic, partition, offset });
    }
    return this.reader.read(seg, offset, maxBytes);
  }

  /** One timer tick: start a pass for every partition that is due and not already running. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    const now = this.now();
    const runs: Promise<void>[] = [];
    for (const s of this.parts.values()) {
      if (s.running || now < s.nextDueAt) continue;
      runs.push(this.runPass(s));
    }
    await Promise.allSettled(runs);
  }

  /** Runs a pass for one partition now (tests; waits for a pass already running, then runs another). */
  async syncNow(topic: string, partition: number): Promise<void> {
    const s = this.state(topic, partition);
    if (!s) throw new LanceError('NOT_FOUND', `tiering: no partition ${topic}-${partition}`, { topic, partition });
    while (s.running) await s.running.catch(() => undefined);
    await this.runPass(s, true);
  }

  private runPass(s: PartitionState, rethrow = false): Promise<void> {
    const run = this.pass(s).then(
      () => {
        s.failures = 0;
        s.nextDueAt = this.now() + this.settings.uploadIntervalMs;
      },
      (e: unknown) => {
        if (s.removed || this.stopped) return;
        s.failures++;
        const delay = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** Math.min(20, s.failures - 1));
        s.nextDueAt = this.now() + delay * (0.5 + Math.random() / 2);
        this.metrics?.uploadErrors.inc();
        this.log.warn({ err: e, topic: s.tp.topic, partition: s.tp.ref.partition, failures: s.failures, retryInMs: Math.round(delay) }, 'tiering pass failed; will retry');
        if (rethrow) throw e;
      },
    ).finally(() => {
      s.running = null;
    });
    s.running = run.catch(() => undefined);
    return run;
  }

  private async loadManifest(s: PartitionState): Promise<void> {
    const { ref } = s.tp;
    const keys: string[] = [];
    for await (const e of this.store.list(manifestPrefix(ref))) {
      if (e.kind === 'object' && parseManifestKey(ref, e.key)) keys.push(e.key);
    }
    let found: Manifest | null = null;
    for (const key of newestFirst(keys)) {
      const parsed = parseManifestKey(ref, key)!;
      s.lastVersion = Math.max(s.lastVersion, parsed.version);
      if (found) continue;
      try {
        found = decodeManifest(key, await this.store.get(key));
      } catch (e) {
        // A damaged newest manifest: fall back to the previous version (its segments are all still there, since
        // objects are only deleted after a manifest without them was written).
        if (!isLanceError(e) || e.code !== 'CORRUPT') throw e;
        this.log.error({ err: e, key }, 'manifest is corrupt; using the previous version');
      }
    }
    const term = s.tp.term();
    if (found && found.term > term) {
      s.fenced = true;
      this.log.warn({ topic: s.tp.topic, partition: ref.partition, manifestTerm: found.term, term }, 'a newer leader term owns this partition\'s manifest; not uploading');
    }
    s.manifest = found ?? emptyManifest(ref, term, this.nodeId, s.tp.log.logStartOffset);
    s.persisted = found;
  }

  private async writeManifest(s: PartitionState, segments: RemoteSegment[]): Promise<void> {
    const { ref } = s.tp;
    const term = s.tp.term();
    const version = s.lastVersion + 1;
    const m: Manifest = {
      format: 1, clusterId: ref.clusterId, topicId: ref.topicId, partition: ref.partition, term, version, node: this.nodeId,
      writtenAt: new Date(this.now()).toISOString(),
      remoteLogStartOffset: segments.length > 0 ? segments[0]!.baseOffset : (s.manifest?.segments.at(-1)?.lastOffset ?? s.tp.log.logStartOffset - 1) + 1,
      segments,
    };
    const key = manifestKey(ref, term, version);
    await this.store.putVerified(key, encodeManifest(m), { contentType: 'application/json' });
    s.lastVersion = version;
    s.manifest = m;
    s.persisted = m;
    this.metrics?.lastSuccess.set(this.now() / 1000);
    // Keep a few older versions (a reader racing this write, or a damaged newest one, falls back to them).
    const keys: string[] = [];
    for await (const e of this.store.list(manifestPrefix(ref))) if (e.kind === 'object' && parseManifestKey(ref, e.key)) keys.push(e.key);
    const old = newestFirst(keys).slice(this.settings.keepManifests);
    if (old.length) await this.store.delete(old);
  }

  private async uploadFile(key: string, file: string): Promise<{ key: string; size: number; crc32c: string }> {
    const r = await this.store.putVerified(key, { file });
    return { key, size: r.size, crc32c: r.checksum };
  }

  private async pass(s: PartitionState): Promise<void> {
    if (s.removed || this.stopped) return;
    if (s.tp.active && !s.tp.active()) {
      s.manifest = null;
      s.persisted = null;
      s.fenced = false;
      return;
    }
    await this.ensureLoadedState(s);
    if (s.fenced) return;
    const { tp } = s;
    const hw = tp.highWatermark();
    // 1. committed data in the active segment does not wait for a size/age roll
    const active = tp.log.segments().at(-1);
    // (not while uploads are failing: sealing then would only pile up small segments)
    if (s.failures === 0 && active && !active.sealed && active.lastOffset >= active.baseOffset && active.baseOffset < hw) {
      await tp.log.rollActive();
    }
    // 2. upload sealed, committed segments the manifest does not hold yet, oldest first
    const hwAfter = tp.highWatermark();
    const localSegs = tp.log.segments();
    let tookOver = false;
    upload: for (;;) {
      for (const seg of localSegs) {
        if (s.removed || this.stopped) return;
        if (!seg.sealed || seg.lastOffset < seg.baseOffset || seg.lastOffset >= Math.max(hw, hwAfter, tp.log.durableOffset)) continue;
        const m = s.manifest!;
        const last = m.segments.at(-1);
        if (last && seg.lastOffset <= last.lastOffset) continue;
        if (last && (seg.baseOffset <= last.lastOffset || !continuesRemote(last, seg))) {
          // another replica's segment boundaries (a leader change): keep the remote prefix that ends on one of our
          // segment boundaries and continue from there with our own segments (the data is the same: Raft)
          const k = planTakeover(m.segments, localSegs.filter((x) => x.lastOffset >= x.baseOffset));
          if (k === null) {
            throw new LanceError('CONFLICT', `${tp.topic}-${tp.ref.partition}: local segment ${seg.baseOffset}..${seg.lastOffset} overlaps remote ${last.baseOffset}..${last.lastOffset} and no local segment starts on a remote boundary`, { topic: tp.topic, partition: tp.ref.partition });
          }
          this.log.info({ topic: tp.topic, partition: tp.ref.partition, keptRemoteSegments: k, of: m.segments.length }, 'taking over the remote log: re-uploading from a common segment boundary');
          if (tookOver) throw new LanceError('INTERNAL', `${tp.topic}-${tp.ref.partition}: remote log takeover did not converge`, { topic: tp.topic, partition: tp.ref.partition });
          tookOver = true;
          s.manifest = { ...m, segments: m.segments.slice(0, k) };
          // start over: our segments from the boundary on are uploaded in order
          continue upload;
        }
        const term = tp.term();
        const stem = segmentKeyStem(tp.ref, { baseOffset: seg.baseOffset, lastOffset: seg.lastOffset, term, node: this.nodeId });
        const idxFile = seg.file.replace(/\.lnc$/, '.idx');
        const tixFile = seg.file.replace(/\.lnc$/, '.tix');
        const idx = fs.existsSync(idxFile) ? await this.uploadFile(`${stem}.idx`, idxFile) : undefined;
        const tix = fs.existsSync(tixFile) ? await this.uploadFile(`${stem}.tix`, tixFile) : undefined;
        const data = await this.uploadFile(`${stem}.lnc`, seg.file);
        const rs: RemoteSegment = {
          baseOffset: seg.baseOffset, lastOffset: seg.lastOffset, firstIndex: seg.firstIndex, lastIndex: seg.lastIndex, term, maxTimestamp: seg.maxTimestamp,
          uploadedAt: new Date(this.now()).toISOString(), data, ...(idx ? { idx } : {}), ...(tix ? { tix } : {}),
        };
        // the manifest is written only after the verified upload: it is what makes the local copy deletable
        await this.writeManifest(s, [...m.segments, rs]);
        this.metrics?.segmentsUploaded.inc();
        this.metrics?.bytesUploaded.inc(data.size);
        this.log.info({ topic: tp.topic, partition: tp.ref.partition, key: data.key, bytes: data.size }, 'segment uploaded and verified');
      }
      break;
    }
    // 3. remote retention
    const m = s.manifest!;
    const drop = planRemoteRetention(m.segments, tp.remoteRetention(), this.now());
    if (drop > 0) {
      const gone = m.segments.slice(0, drop);
      await this.writeManifest(s, m.segments.slice(drop));
      await this.store.delete(gone.flatMap((g) => [g.data.key, ...(g.idx ? [g.idx.key] : []), ...(g.tix ? [g.tix.key] : [])]));
      this.cache.deleteWhere((k) => gone.some((g) => k.startsWith(`${g.data.key}#`)));
      this.log.info({ topic: tp.topic, partition: tp.ref.partition, segments: gone.length, remoteLogStartOffset: s.manifest!.remoteLogStartOffset }, 'remote retention deleted segments');
    }
    // 4. local retention: only what the manifest holds
    await this.enforceLocalRetention(s);
  }

  private async enforceLocalRetention(s: PartitionState): Promise<SegmentInfo[]> {
    const { localRetentionMs, localRetentionBytes } = this.settings;
    if (localRetentionMs === 0 && localRetentionBytes === 0) return [];
    const segs = s.tp.log.segments();
    const now = this.now();
    const n = planRetention(segs.map((g) => ({ sizeBytes: g.sizeBytes, maxTimestamp: g.maxTimestamp, mtimeMs: now, sealed: g.sealed })), { retentionMs: localRetentionMs, retentionBytes: localRetentionBytes }, now);
    if (n === 0) return [];
    const removed = await s.tp.log.truncateBeforeOffset(segs[n - 1]!.lastOffset + 1, this.canDelete(s.tp.topic, s.tp.ref.partition));
    if (removed.length) this.log.info({ topic: s.tp.topic, partition: s.tp.ref.partition, segments: removed.length, logStartOffset: s.tp.log.logStartOffset }, 'local retention deleted uploaded segments');
    return removed;
  }
}
