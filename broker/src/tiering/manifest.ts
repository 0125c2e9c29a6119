/**
 * Tiered segments: object keys and the per-partition manifest (pure functions; I/O lives in uploader.ts and
 * remote-reader.ts). Layout (docs/format.md, "Object store layout"):
 *
 *   clusters/<clusterId>/topics/<topicUuid>/<partition>/segments/<base 20d>-<last 20d>-<term 20d>-<node 10d>.lnc
 *                                                                 ... same name with .idx / .tix
 *   clusters/<clusterId>/topics/<topicUuid>/<partition>/manifest/<term 20d>-<version 20d>.json
 *
 * Every component below `<partition>/` is fixed-width, so no key is a prefix-sibling of a "directory" (the s3rver
 * paging quirk). There are no conditional PUTs: the partition leader is the only writer, and its term is in every
 * key it writes, so a stale leader never overwrites the new leader's objects; readers take the highest
 * (term, version) manifest.
 */
import { z } from 'zod';
import { LanceError } from '../common/errors.ts';

export const MANIFEST_FORMAT = 1;

const pad20 = (n: number): string => String(n).padStart(20, '0');

export interface PartitionRef {
  clusterId: string;
  /** the Kafka topic id (UUID string) */
  topicId: string;
  partition: number;
}

export function partitionPrefix(p: PartitionRef): string {
  return `clusters/${p.clusterId}/topics/${p.topicId}/${p.partition}/`;
}

export function manifestPrefix(p: PartitionRef): string {
  return `${partitionPrefix(p)}manifest/`;
}

export function manifestKey(p: PartitionRef, term: number, version: number): string {
  return `${manifestPrefix(p)}${pad20(term)}-${pad20(version)}.json`;
}

const MANIFEST_NAME_RE = /^(\d{20})-(\d{20})\.json$/;

/** term and version of a manifest key, or null for a key that is not one */
export function parseManifestKey(p: PartitionRef, key: string): { term: number; version: number } | null {
  const pre = manifestPrefix(p);
  if (!key.startsWith(pre)) return null;
  const m = MANIFEST_NAME_RE.exec(key.slice(pre.length));
  return m ? { term: Number(m[1]), version: Number(m[2]) } : null;
}

/** key stem of a segment's objects; append `.lnc`, `.idx` or `.tix` */
export function segmentKeyStem(p: PartitionRef, s: { baseOffset: number; lastOffset: number; term: number; node: number }): string {
  return `${partitionPrefix(p)}segments/${pad20(s.baseOffset)}-${pad20(s.lastOffset)}-${pad20(s.term)}-${String(s.node).padStart(10, '0')}`;
}

const nonNeg = z.number().int().nonnegative();
const crcHex = z.string().regex(/^[0-9a-f]{8}$/);

const RemoteFileSchema = z.strictObject({ key: z.string().min(1), size: nonNeg, crc32c: crcHex });

export const RemoteSegmentSchema = z.strictObject({
  baseOffset: nonNeg,
  lastOffset: z.number().int().min(-1),
  /** Raft index of the first entry (0 if empty) */
  firstIndex: nonNeg,
  /** Raft index of the last entry (zero-offset entries such as a new leader's NOOP count: the next segment must
   *  continue at lastIndex + 1); absent in manifests written before it was recorded */
  lastIndex: nonNeg.optional(),
  /** term of the leader that uploaded it */
  term: nonNeg,
  /** newest record timestamp in the segment, -1 if none */
  maxTimestamp: z.number().int().min(-1),
  uploadedAt: z.string(),
  data: RemoteFileSchema,
  idx: RemoteFileSchema.optional(),
  tix: RemoteFileSchema.optional(),
});
export type RemoteSegment = z.infer<typeof RemoteSegmentSchema>;

export const ManifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  clusterId: z.string().min(1),
  topicId: z.string().min(1),
  partition: nonNeg,
  term: nonNeg,
  version: nonNeg,
  node: nonNeg,
  writtenAt: z.string(),
  /** first offset readable from the bucket (= first segment's baseOffset; the next offset when empty) */
  remoteLogStartOffset: nonNeg,
  /** ascending by baseOffset, disjoint */
  segments: z.array(RemoteSegmentSchema),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** Parses and validates a manifest object's bytes; CORRUPT naming the key and field when it is not one. */
export function decodeManifest(key: string, body: Buffer): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new LanceError('CORRUPT', `manifest ${key}: not JSON: ${(e as Error).message}`, { key });
  }
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new LanceError('CORRUPT', `manifest ${key}: ${i.path.join('.') || '(root)'}: ${i.message}`, { key, field: i.path.join('.') });
  }
  const m = r.data;
  for (let i = 1; i < m.segments.length; i++) {
    // ascending and disjoint; a gap is possible (data deleted locally before tiering was enabled)
    if (m.segments[i]!.baseOffset <= m.segments[i - 1]!.lastOffset) {
      throw new LanceError('CORRUPT', `manifest ${key}: segments.${i}.baseOffset: ${m.segments[i]!.baseOffset} overlaps the previous segment (ends at ${m.segments[i - 1]!.lastOffset})`, { key, field: `segments.${i}.baseOffset` });
    }
  }
  return m;
}

export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m, null, 1) + '\n', 'utf8');
}

/** Manifest keys newest first: highest term, then highest version (keys sort that way as strings). */
export function newestFirst(keys: readonly string[]): string[] {
  return [...keys].sort().reverse();
}

export function emptyManifest(p: PartitionRef, term: number, node: number, startOffset: number): Manifest {
  return {
    format: MANIFEST_FORMAT, clusterId: p.clusterId, topicId: p.topicId, partition: p.partition, term, version: 0, node,
    writtenAt: new Date(0).toISOString(), remoteLogStartOffset: startOffset, segments: [],
  };
}

/** The remote segment holding `offset`, or undefined (binary search over the ascending list). */
export function findRemoteSegment(m: Manifest, offset: number): RemoteSegment | undefined {
  let lo = 0;
  let hi = m.segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = m.segments[mid]!;
    if (offset < s.baseOffset) hi = mid - 1;
    else if (offset > s.lastOffset) lo = mid + 1;
    else return s;
  }
  return undefined;
}

/**
 * Pure remote-retention decision: how many of the oldest remote segments to drop. retentionMs/Bytes of 0 mean
 * unlimited (as for local retention); by size, drop the oldest while the rest still holds ≥ retentionBytes.
 */
export function planRemoteRetention(segs: readonly RemoteSegment[], policy: { retentionMs: number; retentionBytes: number }, now: number): number {
  let total = 0;
  for (const s of segs) total += s.data.size;
  let n = 0;
  while (n < segs.length) {
    const s = segs[n]!;
    const ts = s.maxTimestamp >= 0 ? s.maxTimestamp : Date.parse(s.uploadedAt);
    const tooOld = policy.retentionMs > 0 && now - ts > policy.retentionMs;
    const tooBig = policy.retentionBytes > 0 && total - s.data.size >= policy.retentionBytes;
    if (!tooOld && !tooBig) break;
    total -= s.data.size;
    n++;
  }
  return n;
}

/**
 * Which local segments may be deleted: those recorded (i.e. verified) in the manifest with the same offset range.
 * A segment that is still active, or whose range the manifest does not hold exactly, is kept.
 */
export function isUploaded(m: Manifest, s: { baseOffset: number; lastOffset: number; sealed: boolean }): boolean {
  if (!s.sealed || s.lastOffset < s.baseOffset) return false;
  const r = findRemoteSegment(m, s.baseOffset);
  return r !== undefined && r.baseOffset === s.baseOffset && r.lastOffset === s.lastOffset;
}
