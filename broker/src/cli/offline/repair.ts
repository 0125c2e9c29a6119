import * as path from 'node:path';
import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import { defineCommand, ExitCode, type CommandIO } from '../command.ts';
import { refuseIfBrokerRunning } from './broker-lock.ts';
import { renderKeyValues, renderTable } from '../table.ts';
import { classifyDir, listPartitionDirs, listSegments, requirePath } from './layout.ts';
import { copyAside, moveSegmentAside, truncateDurable, writeIndexFiles } from './repair-ops.ts';
import { checkIndexes, checkSegment, fileSize, type IndexCheck, type SegmentCheck } from './segment-check.ts';
import { skipCorruptLog, type SkipReport } from './skip-corrupt.ts';
import { continuityFinding } from './verify-data.ts';
import { walkSegment } from './walk.ts';

export interface SegmentRepair {
  file: string;
  action: 'none' | 'indexes-rebuilt' | 'truncated' | 'unrepairable';
  reason: string | null;
  /** byte position the segment was cut at (null if not cut) */
  cutAt: number | null;
  cutBytes: number;
  corruptCopy: string | null;
  /** entries in the cut bytes that still verified (lost by the cut), and the offsets they held */
  cutEntries: number;
  cutOffsets: { from: number; to: number } | null;
  keptEntries: number;
  keptRecords: number;
  lastOffset: number;
  lastIndex: number;
  indexesBefore: IndexCheck[];
}

/** Truncates a segment at its last valid entry (keeping a copy of the cut bytes) and rebuilds its indexes. */
export async function repairSegment(file: string, io?: CommandIO): Promise<SegmentRepair> {
  const bar = io?.progress('repair', (await fileSize(file)));
  const c: SegmentCheck = await checkSegment(file, { progress: bar });
  bar?.done();
  const indexesBefore = await checkIndexes(file, c);
  const base: SegmentRepair = {
    file,
    action: 'none',
    reason: c.error?.reason ?? null,
    cutAt: null,
    cutBytes: 0,
    corruptCopy: null,
    cutEntries: 0,
    cutOffsets: null,
    keptEntries: c.entries,
    keptRecords: c.records,
    lastOffset: c.lastOffset,
    lastIndex: c.lastIndex,
    indexesBefore,
  };
  if (!c.error) {
    if (indexesBefore.every((x) => x.status === 'ok')) return base;
    await writeIndexFiles(file, c.index);
    return { ...base, action: 'indexes-rebuilt' };
  }
  if (c.baseOffset === null) {
    // No valid header: nothing in the file can be trusted to say where it belongs in the log.
    return { ...base, action: 'unrepairable', reason: `${c.error.reason}: the segment header is damaged; move the segment to quarantine (runbook 4.2) or use repair --skip-corrupt on its directory` };
  }
  // What the cut removes that still verified (so the report says what is lost, not only how many bytes).
  const w = await walkSegment(file, { from: c.validEnd, expectIndex: c.lastIndex > 0 ? c.lastIndex + 1 : c.baseIndex ?? -1, expectOffset: c.nextOffset });
  const corruptCopy = await copyAside(file, c.validEnd, c.sizeBytes);
  await truncateDurable(file, c.validEnd);
  await writeIndexFiles(file, c.index);
  return {
    ...base,
    action: 'truncated',
    cutAt: c.validEnd,
    cutBytes: c.sizeBytes - c.validEnd,
    corruptCopy,
    cutEntries: w.entries,
    cutOffsets: w.entries > 0 && w.nextOffset > c.nextOffset ? { from: c.nextOffset, to: w.nextOffset - 1 } : null,
  };
}

function segmentRepairLines(r: SegmentRepair): [string, string | number][] {
  const pairs: [string, string | number][] = [['segment', r.file]];
  switch (r.action) {
    case 'none':
      pairs.push(['result', 'nothing to repair (every entry verifies, indexes match)']);
      break;
    case 'indexes-rebuilt':
      pairs.push(['result', `segment ok; rebuilt indexes (${r.indexesBefore.filter((x) => x.status !== 'ok').map((x) => `${x.kind}: ${x.status}`).join(', ')})`]);
      break;
    case 'unrepairable':
      pairs.push(['result', `NOT repaired: ${r.reason}`]);
      break;
    case 'truncated':
      pairs.push(['damage', r.reason ?? '']);
      pairs.push(['cut', `${r.cutBytes} bytes from byte ${r.cutAt} (copy kept in ${r.corruptCopy})`]);
      pairs.push(['lost', r.cutEntries > 0 ? `${r.cutEntries} entries that still verified after the damage${r.cutOffsets ? `; offsets ${r.cutOffsets.from} .. ${r.cutOffsets.to} are no longer in this segment` : ''}` : 'no further valid entries (torn or corrupt tail only)']);
      pairs.push(['kept', `${r.keptEntries} entries, ${r.keptRecords} records; last valid offset ${r.lastOffset}, Raft index ${r.lastIndex}`]);
      pairs.push(['indexes', 'rebuilt (.idx, .tix)']);
      break;
  }
  return pairs;
}

/** Without --skip-corrupt, a log dir is cut at its first damage: the damaged segment is truncated and every later
 *  segment is moved aside (a Raft log must stay contiguous). */
async function repairLogDir(dir: string, io: CommandIO): Promise<{ json: Record<string, unknown>; text: string; code: number }> {
  const segs = await listSegments(dir);
  let prev: SegmentCheck | null = null;
  let cutFrom = -1;
  let repaired: SegmentRepair | null = null;
  for (const [i, f] of segs.entries()) {
    const c = await checkSegment(f);
    const gap = prev ? continuityFinding(prev, c, -1) : null;
    if (gap) {
      cutFrom = i; // this segment does not continue the previous one: it and everything after go
      break;
    }
    if (c.error) {
      repaired = await repairSegment(f, io);
      // a segment whose header is unreadable cannot be cut in place: in a log dir it goes aside with the rest
      cutFrom = repaired.action === 'unrepairable' ? i : i + 1;
      if (repaired.action === 'unrepairable') repaired = null; // listed with the moved segments instead
      break;
    }
    const ix = await checkIndexes(f, c);
    if (ix.some((x) => x.status !== 'ok' && !(x.status === 'stale' && i === segs.length - 1))) await writeIndexFiles(f, c.index);
    prev = c;
  }
  const moved: { file: string; copy: string; entries: number }[] = [];
  if (cutFrom >= 0) {
    for (const f of segs.slice(cutFrom)) {
      const w = await walkSegment(f);
      moved.push({ file: f, copy: await moveSegmentAside(f), entries: w.entries });
    }
  }
  const nothing = repaired === null && moved.length === 0;
  const json = { path: dir, mode: 'truncate', result: nothing ? 'nothing to repair' : 'repaired', segment: repaired, movedAside: moved };
  const lines: string[] = [];
  if (nothing) lines.push(`${dir}: nothing to repair (${segs.length} segment(s), every entry verifies)`);
  if (repaired) lines.push(renderKeyValues(segmentRepairLines(repaired)));
  if (moved.length > 0) {
    lines.push('', `${repaired ? 'later segments' : 'segments from the damaged one on'} moved aside (the log is cut at the first damage; use --skip-corrupt to keep what verifies):`);
    lines.push(renderTable(['segment', 'valid entries', 'moved to'], moved.map((m) => [path.basename(m.file), m.entries, path.basename(m.copy)])));
  }
  return { json, text: lines.join('\n'), code: ExitCode.OK };
}

function skipText(r: SkipReport): string {
  const lines: string[] = [];
  if (r.lost.length === 0) return `${r.path}: nothing to repair (${r.segments} segment(s), every entry verifies)`;
  lines.push(`${r.path}: skipped ${r.lost.length} damaged range(s); kept all ${r.keptEntries} entries that verify; ${r.placeholders.entries} placeholder entries fill ${r.placeholders.offsets} lost offsets`);
  lines.push(
    renderTable(
      ['segment', 'bytes', 'lost raft indexes', 'lost offsets', 'reason'],
      r.lost.map((l) => [path.basename(l.file), `${l.start} .. ${l.end} (${l.bytes})`, l.lostIndexes ? `${l.lostIndexes.from} .. ${l.lostIndexes.to ?? 'end'}` : '?', l.lostOffsets ? `${l.lostOffsets.from} .. ${l.lostOffsets.to ?? 'end'}` : '?', l.reason]),
    ),
  );
  lines.push(`originals kept in: ${r.originals.map((o) => path.basename(o)).join(', ')}`);
  lines.push(`NOTE: skipping creates a GAP in the log. Lost Raft indexes are filled with NOOP placeholder entries and lost`);
  lines.push(`offsets with an empty placeholder batch (no records), so the log stays contiguous and the broker can open it;`);
  lines.push(`consumers skip from the last offset before the gap to the first after it. The lost records are gone from this`);
  lines.push(`copy of the log: restore them from a replica or a backup if one exists.`);
  return lines.join('\n');
}

export const repairCommand = defineCommand({
  name: 'repair',
  summary: 'repair a corrupt segment (truncate at the last valid entry) or a log directory',
  usage: '--path <segment>.lnc | --path <log dir> [--skip-corrupt]',
  details: [
    'Segment: truncates at the last valid entry, keeps the cut bytes in <segment>.lnc.corrupt-<ms>, rebuilds the',
    '  indexes and reports what was cut. A healthy segment: "nothing to repair".',
    'Directory (<data>/wal, a partition dir <data>/topic_<id>/<p>, or a topic dir = all its partitions):',
    '  default: cut the log at its first damage (later segments are moved aside as *.corrupt-<ms>);',
    '  --skip-corrupt: skip damaged bytes, keep every later entry that verifies, and fill the hole with placeholder',
    '  entries so the log stays contiguous. Reports the byte ranges and the lost indexes/offsets.',
    'Exit code: 0 repaired or nothing to repair, 1 could not repair, 2 usage/IO. Stop the broker first.',
  ].join('\n'),
  options: z.object({
    path: z.string().min(1).describe('a segment file (*.lnc) or a log directory'),
    skipCorrupt: z.boolean().default(false).describe('directories only: skip corrupt entries and keep the later valid ones'),
  }),
  async run(args, io) {
    const st = await requirePath(args.path, '--path', ['segment', 'dir']);
    await refuseIfBrokerRunning(args.path);
    if (st.kind === 'segment') {
      if (args.skipCorrupt) {
        const dir = path.dirname(args.path);
        throw new LanceError('USAGE', `--skip-corrupt works on a log directory, not one segment (a gap must be filled across segments): lnc repair --path ${dir} --skip-corrupt`, { flag: '--skip-corrupt' });
      }
      const r = await repairSegment(args.path, io);
      // Cutting a segment that is not the newest of its log leaves a hole before the next one: say so (exit 1).
      const later = r.action === 'truncated' ? (await listSegments(path.dirname(args.path))).filter((f) => path.basename(f) > path.basename(args.path)) : [];
      const gap = later.length > 0 ? { nextSegment: later[0]!, offsets: { from: r.lastOffset + 1, to: Number(path.basename(later[0]!).slice(0, 20)) - 1 } } : null;
      io.emit({ ...r, gap }, () => {
        const lines = [renderKeyValues(segmentRepairLines(r))];
        if (gap) {
          lines.push(
            `PROBLEM: ${path.basename(gap.nextSegment)} follows this segment, so the log now has a gap at offsets ${gap.offsets.from} .. ${gap.offsets.to};`,
            `the broker will refuse to open it. Run: lnc repair --path ${path.dirname(args.path)} --skip-corrupt (keeps the later segments, fills the gap)`,
            `or: lnc repair --path ${path.dirname(args.path)} (cuts the log here). The cut bytes are kept in ${r.corruptCopy}.`,
          );
        }
        return lines.join('\n');
      });
      return r.action === 'unrepairable' || gap ? ExitCode.PROBLEMS : ExitCode.OK;
    }
    const kind = await classifyDir(args.path);
    if (kind === 'data') throw new LanceError('USAGE', `--path ${args.path}: is a data dir; give a log dir (${path.join(args.path, 'wal')} or topic_<id>/<partition>), a topic dir or a segment`, { path: args.path });
    const dirs = kind === 'topic' ? (await listPartitionDirs(args.path)).map((p) => p.dir) : [args.path];
    const results: Record<string, unknown>[] = [];
    const texts: string[] = [];
    let code: number = ExitCode.OK;
    for (const d of dirs) {
      if (args.skipCorrupt) {
        const r = await skipCorruptLog(d, (label, total) => io.progress(label, total));
        results.push(r as unknown as Record<string, unknown>);
        texts.push(skipText(r));
      } else {
        const r = await repairLogDir(d, io);
        results.push(r.json);
        texts.push(r.text);
        code = Math.max(code, r.code);
      }
    }
    io.emit(kind === 'topic' ? { path: args.path, partitions: results } : results[0], () => texts.join('\n\n'));
    return code;
  },
});
