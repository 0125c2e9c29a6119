import * as path from 'node:path';
import { z } from 'zod';
import { defineCommand, ExitCode } from '../command.ts';
import { brokerRunningWarning } from './broker-lock.ts';
import { renderTable } from '../table.ts';
import { listIndexFiles, listPartitionDirs, listSegments, indexPathsFor, resolveTopic } from './layout.ts';
import { checkIndexes, checkSegment, fileSize, type IndexCheck, type SegmentCheck } from './segment-check.ts';
import { rangeText, segmentJson } from './scan.ts';

export interface Finding {
  severity: 'problem' | 'warning';
  partition: number | null;
  file: string | null;
  message: string;
}

interface SegmentResult {
  check: SegmentCheck;
  indexes: IndexCheck[];
}

/** Pure: what is wrong between consecutive segments of one partition. */
export function continuityFinding(prev: SegmentCheck, next: SegmentCheck, partition: number): Finding | null {
  if (next.baseOffset === null || next.baseIndex === null) return null; // its header problem is reported already
  if (prev.error) return null; // the earlier segment's damage explains any gap
  if (next.baseOffset !== prev.nextOffset) {
    return { severity: 'problem', partition, file: next.file, message: `offset gap: ${path.basename(prev.file)} ends before offset ${prev.nextOffset}, ${path.basename(next.file)} starts at ${next.baseOffset}` };
  }
  const prevLast = prev.entries > 0 ? prev.lastIndex : (prev.baseIndex ?? 1) - 1;
  if (next.baseIndex !== prevLast + 1) {
    return { severity: 'problem', partition, file: next.file, message: `Raft index gap: ${path.basename(prev.file)} ends at index ${prevLast}, ${path.basename(next.file)} starts at ${next.baseIndex}` };
  }
  return null;
}

export const verifyDataCommand = defineCommand({
  name: 'verify-data',
  summary: 'verify every segment (full CRC scan) and index of every partition of a topic',
  usage: '--path <data dir> --topic <id> [--fail-fast]',
  details: [
    'Checks, per partition: every entry of every segment (framing, CRC32C, contiguous Raft index and offset), the',
    'continuity between segments, and that each .idx/.tix matches its segment. Exit 0 healthy, 1 problems found.',
    'A "stale" index on the newest segment (newest samples not yet written) is a warning: the broker completes it',
    'on start; anywhere else it is a problem. --topic takes the id (1 or topic_1); a topic name works too.',
  ].join('\n'),
  options: z.object({
    path: z.string().min(1).describe('the data directory (holds topic_<id>/)'),
    topic: z.string().min(1).describe('topic id'),
    failFast: z.boolean().default(false).describe('stop at the first problem'),
  }),
  async run(args, io) {
    const topic = await resolveTopic(args.path, args.topic);
    const warn = await brokerRunningWarning(args.path);
    if (warn) io.err(warn);
    const parts = await listPartitionDirs(topic.dir);
    const findings: Finding[] = [];
    const results: { partition: number; dir: string; segments: SegmentResult[] }[] = [];
    const problem = (f: Omit<Finding, 'severity'>): void => void findings.push({ severity: 'problem', ...f });
    if (topic.meta) {
      for (let p = 0; p < topic.meta.partitions; p++) {
        if (!parts.some((x) => x.partition === p)) problem({ partition: p, file: path.join(topic.dir, String(p)), message: `partition directory missing (topic.json declares ${topic.meta.partitions} partitions)` });
      }
    } else {
      findings.push({ severity: 'warning', partition: null, file: topic.dir, message: 'no topic.json: topic name and partition count unknown' });
    }
    const plan: { partition: number; dir: string; segments: string[] }[] = [];
    let total = 0;
    for (const p of parts) {
      const segments = await listSegments(p.dir);
      for (const s of segments) total += await fileSize(s);
      plan.push({ ...p, segments });
    }
    const progress = io.progress('verify', total);
    const stop = (): boolean => args.failFast && findings.some((f) => f.severity === 'problem');
    outer: for (const p of plan) {
      if (stop()) break;
      const pr = { partition: p.partition, dir: p.dir, segments: [] as SegmentResult[] };
      results.push(pr);
      if (p.segments.length === 0) findings.push({ severity: 'warning', partition: p.partition, file: p.dir, message: 'no segment files (empty partition)' });
      const segBases = new Set(p.segments.map((s) => indexPathsFor(s).idx));
      for (const f of await listIndexFiles(p.dir)) {
        const idx = f.replace(/\.tix$/, '.idx');
        if (!segBases.has(idx)) findings.push({ severity: 'warning', partition: p.partition, file: f, message: 'index file without a segment (left over; safe to delete)' });
      }
      for (const [i, segFile] of p.segments.entries()) {
        const check = await checkSegment(segFile, { progress });
        const indexes = await checkIndexes(segFile, check);
        pr.segments.push({ check, indexes });
        if (check.error) problem({ partition: p.partition, file: segFile, message: `corrupt at byte ${check.error.position}: ${check.error.reason} (${check.entries} good entries before it; lnc repair --path ${segFile})` });
        const prev = pr.segments[i - 1];
        const gap = prev ? continuityFinding(prev.check, check, p.partition) : null;
        if (gap) findings.push(gap);
        const newest = i === p.segments.length - 1;
        for (const ix of indexes) {
          if (ix.status === 'ok') continue;
          const sev = ix.status === 'stale' && newest && !check.error ? 'warning' : 'problem';
          findings.push({ severity: sev, partition: p.partition, file: ix.file, message: `${ix.kind} index ${ix.status}: ${ix.detail ?? ''} (lnc rebuild-index --path ${topic.dir})`.replace(': (', ' (') });
        }
        if (stop()) break outer;
      }
    }
    progress.done();
    const problems = findings.filter((f) => f.severity === 'problem');
    const segCount = results.reduce((a, p) => a + p.segments.length, 0);
    const records = results.reduce((a, p) => a + p.segments.reduce((b, s) => b + s.check.records, 0), 0);
    const json = {
      topic: { id: topic.id, name: topic.meta?.name ?? null, dir: topic.dir, partitions: topic.meta?.partitions ?? parts.length },
      ok: problems.length === 0,
      stoppedEarly: stop(),
      segments: segCount,
      records,
      findings,
      partitions: results.map((p) => ({ partition: p.partition, dir: p.dir, segments: p.segments.map((s) => ({ ...segmentJson(s.check), indexes: s.indexes })) })),
    };
    io.emit(json, () => {
      const rows = results.flatMap((p) =>
        p.segments.map((s) => [
          p.partition,
          path.basename(s.check.file),
          s.check.entries,
          s.check.records,
          rangeText(s.check.firstOffset === -1 ? s.check.nextOffset : s.check.firstOffset, s.check.lastOffset),
          s.check.error ? `CORRUPT@${s.check.error.position}` : 'ok',
          s.indexes.find((x) => x.kind === 'offset')?.status,
          s.indexes.find((x) => x.kind === 'time')?.status,
        ]),
      );
      const lines = [
        `topic ${topic.id}${topic.meta ? ` (${topic.meta.name})` : ''}: ${results.length} partition(s), ${segCount} segment(s), ${records} record(s)`,
        '',
        renderTable(['partition', 'segment', 'entries', 'records', 'offsets', 'crc', 'idx', 'tix'], rows),
        '',
      ];
      for (const f of findings) lines.push(`${f.severity.toUpperCase()}: ${f.partition !== null ? `partition ${f.partition}: ` : ''}${f.file ? `${f.file}: ` : ''}${f.message}`);
      lines.push(problems.length === 0 ? 'result: OK' : `result: ${problems.length} problem(s)${json.stoppedEarly ? ' (stopped at the first: --fail-fast)' : ''}`);
      return lines.join('\n');
    });
    return problems.length === 0 ? ExitCode.OK : ExitCode.PROBLEMS;
  },
});
