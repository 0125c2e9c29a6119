import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { ioError, LanceError } from '../../common/errors.ts';
import { decodeIndexFile } from '../../storage/index-file.ts';
import { defineCommand, ExitCode } from '../command.ts';
import { brokerRunningWarning, refuseIfBrokerRunning } from './broker-lock.ts';
import { renderTable, type Cell } from '../table.ts';
import { classifyDir, isTopicDirName, listIndexFiles, listPartitionDirs, listSegments, requirePath, statKind } from './layout.ts';
import { writeIndexFiles } from './repair-ops.ts';
import { checkIndexes, checkSegment, compareIndexFile, type SegmentCheck } from './segment-check.ts';
import { continuityFinding } from './verify-data.ts';

/** The log dirs a --path names: a topic dir → its partition dirs; a log dir → itself. */
async function logDirsOf(p: string): Promise<string[]> {
  const kind = await classifyDir(p);
  if (kind === 'topic') return (await listPartitionDirs(p)).map((x) => x.dir);
  if (kind === 'log') return [p];
  throw new LanceError('USAGE', `--path ${p}: is a data dir; give a topic dir (${path.join(p, 'topic_<id>')}) or a partition dir`, { path: p });
}

export const rebuildIndexCommand = defineCommand({
  name: 'rebuild-index',
  summary: 'rebuild the .idx/.tix indexes of every segment of a topic (all partitions) or of one partition',
  usage: '--path <data>/topic_<id> | --path <data>/topic_<id>/<partition>',
  details: 'Each index is rebuilt from the segment\'s entries and replaced atomically. A segment with damage gets an index of its good\nentries only and the command exits 1 (run lnc repair on it). Stop the broker first.',
  options: z.object({ path: z.string().min(1).describe('a topic dir (all partitions), a partition dir or a segment file') }),
  async run(args, io) {
    const st = await requirePath(args.path, '--path', ['dir', 'segment']);
    await refuseIfBrokerRunning(args.path);
    const logDirs = st.kind === 'segment' ? [] : await logDirsOf(args.path);
    const segmentLists = st.kind === 'segment' ? [[args.path]] : await Promise.all(logDirs.map(listSegments));
    const rows: { segment: string; entries: number; offsetSamples: number; timeSamples: number; before: { idx: string; tix: string }; damage: string | null }[] = [];
    const problems: string[] = [];
    const removed: string[] = [];
    // Index files whose segment is gone (e.g. moved to quarantine, runbook 4.2): the broker would delete them too.
    for (const d of logDirs) {
      const segs = new Set((await listSegments(d)).map((f) => f.replace(/\.lnc$/, '')));
      for (const f of await listIndexFiles(d)) {
        if (!segs.has(f.replace(/\.(idx|tix)$/, ''))) {
          await fsp.rm(f, { force: true });
          removed.push(f);
        }
      }
    }
    for (const list of segmentLists) {
      let prev: SegmentCheck | null = null;
      for (const f of list) {
        const c = await checkSegment(f);
        const before = await checkIndexes(f, c);
        await writeIndexFiles(f, c.index);
        rows.push({
          segment: f,
          entries: c.entries,
          offsetSamples: c.index.offsetEntryCount,
          timeSamples: c.index.timeEntryCount,
          before: { idx: before[0]!.status, tix: before[1]!.status },
          damage: c.error ? `corrupt at byte ${c.error.position}: ${c.error.reason}` : null,
        });
        if (c.error) problems.push(`${f}: ${c.error.reason}; the index covers the entries before it (lnc repair --path ${f})`);
        const gap = prev ? continuityFinding(prev, c, -1) : null;
        if (gap) problems.push(`${gap.message}: the broker refuses a log with a hole (lnc repair --path ${path.dirname(f)} --skip-corrupt fills it)`);
        prev = c;
      }
    }
    io.emit({ path: args.path, segments: rows, removedOrphans: removed, problems, ok: problems.length === 0 }, () =>
      [
        renderTable(
          ['segment', 'entries', 'idx samples', 'tix samples', 'idx before', 'tix before', 'segment'],
          rows.map((r) => [path.relative(args.path, r.segment) || path.basename(r.segment), r.entries, r.offsetSamples, r.timeSamples, r.before.idx, r.before.tix, r.damage ? 'DAMAGED' : 'ok']),
        ),
        ...removed.map((f) => `removed orphan index ${f} (its segment is gone)`),
        ...problems.map((p) => `PROBLEM: ${p}`),
        `rebuilt ${rows.length * 2} index file(s) for ${rows.length} segment(s)`,
      ].join('\n'),
    );
    return problems.length === 0 ? ExitCode.OK : ExitCode.PROBLEMS;
  },
});

interface InspectResult {
  file: string;
  kind: 'offset' | 'time';
  baseOffset: number;
  intervalBytes: number;
  entries: { offset: number; position: number; index?: number; timestamp?: number }[];
  fileProblems: string[];
  segment: string;
  consistency: { status: string; detail: string | null; entriesExpected: number };
}

async function inspectOne(file: string): Promise<InspectResult> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    throw ioError('read index', file, e);
  }
  const d = decodeIndexFile(buf, file);
  const segment = file.replace(/\.(idx|tix)$/, '.lnc');
  let consistency: InspectResult['consistency'];
  if ((await statKind(segment)).kind !== 'segment') {
    consistency = { status: 'no-segment', detail: `${path.basename(segment)} does not exist: this index is an orphan (the broker deletes it on start)`, entriesExpected: 0 };
  } else {
    const c = await checkSegment(segment, { intervalBytes: d.header.intervalBytes });
    const expected = d.header.kind === 'offset' ? c.index.idxFile() : c.index.tixFile();
    const count = d.header.kind === 'offset' ? c.index.offsetEntryCount : c.index.timeEntryCount;
    const r = compareIndexFile(file, d.header.kind, buf, expected, count, c.error ? c.validEnd : null);
    consistency = { status: r.status, detail: c.error ? `${r.detail ?? ''}${r.detail ? '; ' : ''}segment damaged at byte ${c.error.position}` : r.detail, entriesExpected: count };
  }
  const entries = d.header.kind === 'offset' ? d.offsetEntries.map((e) => ({ ...e })) : d.timeEntries.map((e) => ({ ...e }));
  return { file, kind: d.header.kind, baseOffset: d.header.baseOffset, intervalBytes: d.header.intervalBytes, entries, fileProblems: d.problems, segment, consistency };
}

export const inspectIndexCommand = defineCommand({
  name: 'inspect-index',
  summary: 'show an index file (.idx or .tix) and whether it matches its segment',
  usage: '--path <data>/topic_<id>/<partition>/<segment>.idx|.tix  (or a topic/partition dir: all its indexes)',
  details: [
    'The runbook\'s `topic_<id>/index.idx` does not exist: every segment has its own .idx/.tix in the partition dir.',
    'Given that path, lnc lists the real index files; given a topic or partition dir, it inspects all of them.',
    'Exit code: 0 consistent, 1 an index is stale, wrong or unreadable, 2 usage/IO.',
  ].join('\n'),
  options: z.object({
    path: z.string().min(1).describe('an .idx/.tix file, or a topic/partition dir'),
    verbose: z.boolean().default(false).describe('list every index entry'),
  }),
  async run(args, io) {
    const st = await statKind(args.path);
    let files: string[];
    const runbookName = /^index\.(idx|tix)$/.exec(path.basename(args.path));
    const parentDir = path.dirname(args.path);
    if (st.kind === 'missing' && runbookName && (await statKind(parentDir)).kind === 'dir' && (await classifyDir(parentDir).catch(() => null)) !== null) {
      // The runbook's `topic_<id>/index.idx`: one index per segment exists instead; inspect all of that kind.
      const ext = `.${runbookName[1]}`;
      files = (await Promise.all((await logDirsOf(parentDir)).map(listIndexFiles))).flat().filter((f) => f.endsWith(ext));
      io.err(`lnc: note: ${args.path} is not a file in this layout (one ${ext} per segment); inspecting the ${files.length} ${ext} file(s) under ${parentDir}`);
      if (files.length === 0) throw new LanceError('NOT_FOUND', `--path ${args.path}: no ${ext} files under ${parentDir} (lnc rebuild-index --path ${parentDir})`, { path: args.path });
    } else if (st.kind === 'missing') {
      // The runbook's path (topic_<id>/index.idx): name the files that do exist instead of a bare "not found".
      const parent = path.dirname(args.path);
      const real = (await statKind(parent)).kind === 'dir' ? (isTopicDirName(parent) ? (await Promise.all((await listPartitionDirs(parent)).map((p) => listIndexFiles(p.dir)))).flat() : await listIndexFiles(parent)) : [];
      throw new LanceError('NOT_FOUND', `--path ${args.path}: no such file; ${real.length > 0 ? `index files there: ${real.join(', ')} (or pass ${parent} to inspect all)` : `no index files under ${parent}`}`, { path: args.path });
    }
    else if (st.kind === 'index') files = [args.path];
    else if (st.kind === 'dir') files = (await Promise.all((await logDirsOf(args.path)).map(listIndexFiles))).flat();
    else throw new LanceError('USAGE', `--path ${args.path}: is ${st.kind === 'segment' ? 'a segment file' : 'not an index file'}, expected an index file (*.idx or *.tix) or a directory`, { path: args.path });
    const warn = await brokerRunningWarning(files[0] ?? args.path);
    if (warn) io.err(warn);
    const results: InspectResult[] = [];
    for (const f of files) {
      try {
        results.push(await inspectOne(f));
      } catch (e) {
        if (!(e instanceof LanceError) || e.code !== 'CORRUPT' || files.length === 1) throw e;
        results.push({ file: f, kind: f.endsWith('.tix') ? 'time' : 'offset', baseOffset: -1, intervalBytes: 0, entries: [], fileProblems: [e.message], segment: f.replace(/\.(idx|tix)$/, '.lnc'), consistency: { status: 'unreadable', detail: e.message, entriesExpected: 0 } });
      }
    }
    const bad = results.filter((r) => r.fileProblems.length > 0 || r.consistency.status !== 'ok');
    io.emit({ path: args.path, indexes: results, ok: bad.length === 0 }, () => {
      const out: string[] = [];
      for (const r of results) {
        out.push(`${r.file}: ${r.kind} index, base offset ${r.baseOffset}, interval ${r.intervalBytes} bytes, ${r.entries.length} entries`);
        out.push(`  consistency with ${path.basename(r.segment)}: ${r.consistency.status}${r.consistency.detail ? ` (${r.consistency.detail})` : ''}`);
        for (const p of r.fileProblems) out.push(`  PROBLEM: ${p}`);
        const shown = args.verbose || files.length === 1 ? r.entries : [];
        if (shown.length > 0) {
          const rows: Cell[][] = shown.map((e, i) => (r.kind === 'offset' ? [i, e.offset, e.position, e.index] : [i, e.timestamp, e.offset, e.position]));
          out.push(
            renderTable(r.kind === 'offset' ? ['#', 'offset', 'position', 'raft index'] : ['#', 'max ts before', 'offset', 'position'], rows)
              .split('\n')
              .map((l) => `  ${l}`)
              .join('\n'),
          );
        }
      }
      out.push(bad.length === 0 ? `result: OK (${results.length} index file(s))` : `result: ${bad.length} index file(s) with problems (lnc rebuild-index)`);
      return out.join('\n');
    });
    return bad.length === 0 ? ExitCode.OK : ExitCode.PROBLEMS;
  },
});
