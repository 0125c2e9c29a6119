/**
 * `lnc export-topic` / `lnc import-topic`: a topic to and from a `.lance` file (format: storage/export-format.ts,
 * docs/format.md "Export file (.lance)").
 *
 * Export reads the segments read-only (no recovery, nothing on the data dir changes: the runbook exports from a
 * stale split-brain node before wiping it). Import writes the partitions through the storage engine
 * (PartitionLog.appendReplicated keeps every Raft index and offset) into a staging dir inside the data dir, and
 * only after the whole file verified (trailer, whole-file checksum) renames the topic dir into place: a truncated
 * or corrupt file leaves nothing behind.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { ioError, LanceError } from '../../common/errors.ts';
import { atomicWriteJson, fsyncDir, mkdirDurable } from '../../common/fsutil.ts';
import {
  claimTopicId,
  createTopic,
  getTopicByName,
  listTopicIds,
  partitionDir,
  topicDir,
  topicMetaPath,
  TopicConfigSchema,
  validateTopicName,
  type TopicMeta,
} from '../../storage/catalog.ts';
import { ExportWriter, fileSink, readExport, streamSink, type ExportTrailer } from '../../storage/export-format.ts';
import { PartitionLog } from '../../storage/partition-log.ts';
import { encodeSegmentHeader, SegmentScanner, type EntryMeta } from '../../storage/segment-format.ts';
import { defineCommand, ExitCode } from '../command.ts';
import { brokerRunningWarning, refuseIfBrokerRunning } from './broker-lock.ts';
import { renderKeyValues } from '../table.ts';
import { listSegments, requirePath, resolveTopic, segmentFileName, statKind } from './layout.ts';

const VERSION = '0.1.0';

export interface ExportSummary {
  topic: { id: number; name: string; partitions: number };
  output: string;
  trailer: ExportTrailer;
  bytes: number;
  warnings: string[];
}

/** Streams one topic of `dataDir` into `out` ('-' = stdout). Never holds more than one chunk of entries. */
export async function exportTopic(dataDir: string, topicArg: string, out: string, stdout: Writable, progress?: (total: number) => { advance(n: number): void; done(): void }): Promise<ExportSummary> {
  const t = await resolveTopic(dataDir, topicArg);
  if (!t.meta) throw new LanceError('NOT_FOUND', `--topic ${topicArg}: ${t.dir} has no topic.json (name, partition count and config are needed to export)`, { path: t.dir });
  const meta: TopicMeta = t.meta;
  const plan: { partition: number; segments: string[] }[] = [];
  let total = 0;
  for (let p = 0; p < meta.partitions; p++) {
    const dir = partitionDir(dataDir, meta.id, p);
    const segs = (await fsp.stat(dir).catch(() => null))?.isDirectory() ? await listSegments(dir) : [];
    for (const s of segs) total += (await fsp.stat(s)).size;
    plan.push({ partition: p, segments: segs });
  }
  const bar = progress?.(total);
  const sink = out === '-' ? streamSink(stdout) : await fileSink(out);
  const warnings: string[] = [];
  const w = await ExportWriter.create(sink, {
    topic: { id: String(meta.id), name: meta.name, partitions: meta.partitions, config: meta.config },
    exportedAt: new Date().toISOString(),
    tool: `lnc ${VERSION}`,
  });
  try {
    for (const p of plan) {
      let started = false;
      let expectIndex = -1;
      let expectOffset = -1;
      for (const [i, f] of p.segments.entries()) {
        const s = await SegmentScanner.open(f);
        try {
          if (!s.header) throw new LanceError('CORRUPT', `${f}: ${s.error?.reason ?? 'unreadable segment header'}; run lnc verify-data / lnc repair first`, { path: f, position: s.error?.position ?? 0 });
          if (!started) {
            await w.beginPartition({ partition: p.partition, startOffset: s.header.baseOffset, startIndex: s.header.baseIndex, prevTerm: s.header.prevTerm });
            started = true;
          } else if (s.header.baseIndex !== expectIndex || s.header.baseOffset !== expectOffset) {
            throw new LanceError('CORRUPT', `${f}: starts at Raft index ${s.header.baseIndex}, offset ${s.header.baseOffset}, but the previous segment ends before index ${expectIndex}, offset ${expectOffset}; run lnc verify-data`, { path: f, position: 16 });
          }
          expectIndex = s.header.baseIndex;
          expectOffset = s.header.baseOffset;
          let m: EntryMeta | null;
          let last = 0;
          while ((m = await s.next())) {
            await w.append(s.currentEntry(m));
            expectIndex = m.index + 1;
            expectOffset = m.firstOffset + m.offsetCount;
            bar?.advance(s.validEnd - last);
            last = s.validEnd;
          }
          if (s.error) {
            const newest = i === p.segments.length - 1;
            if (!newest) throw new LanceError('CORRUPT', `${f}: corrupt at byte ${s.error.position}: ${s.error.reason}; run lnc repair --path ${f} first`, { path: f, position: s.error.position });
            // The newest segment's torn tail is what recovery on open would cut: export what verifies, and say so.
            warnings.push(`partition ${p.partition}: ${path.basename(f)} has a damaged tail from byte ${s.error.position} (${s.error.reason}); exported the ${expectOffset} offsets before it`);
          }
        } finally {
          await s.close();
        }
      }
      if (!started) await w.beginPartition({ partition: p.partition, startOffset: 0, startIndex: 1, prevTerm: 0 });
      await w.endPartition();
    }
    const trailer = await w.finish();
    bar?.done();
    return { topic: { id: meta.id, name: meta.name, partitions: meta.partitions }, output: out, trailer, bytes: w.position, warnings };
  } catch (e) {
    bar?.done();
    await w.abort();
    throw e;
  }
}

/** Staging dirs of imports whose process died (SIGKILL, power loss) are garbage: nothing in them was visible. */
async function removeDeadStagingDirs(dataDir: string): Promise<void> {
  for (const n of await fsp.readdir(dataDir).catch(() => [] as string[])) {
    const m = /^\.import-(\d+)-\d+$/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await fsp.rm(path.join(dataDir, n), { recursive: true, force: true });
  }
}

export interface ImportSummary {
  topic: { id: number; name: string; partitions: number; dir: string };
  input: string;
  entries: number;
  records: number;
  sourceTopic: { id: string; name: string };
}

/** Imports a `.lance` stream as a new topic named `name`; nothing is visible in `dataDir` unless it all verified. */
export async function importTopic(dataDir: string, name: string, input: Readable, inputName: string, progress?: { set(n: number): void; done(): void }): Promise<ImportSummary> {
  validateTopicName(name);
  if (await getTopicByName(dataDir, name)) throw new LanceError('CONFLICT', `--name ${name}: a topic with this name already exists in ${dataDir}`, { name });
  await removeDeadStagingDirs(dataDir);
  const staging = path.join(dataDir, `.import-${process.pid}-${Date.now()}`);
  await mkdirDurable(staging);
  let log: PartitionLog | null = null;
  let meta: TopicMeta | null = null;
  let source: { id: string; name: string } | null = null;
  let entries = 0;
  let records = 0;
  try {
    for await (const ev of readExport(input, inputName)) {
      switch (ev.kind) {
        case 'header': {
          const cfg = TopicConfigSchema.partial().safeParse(ev.header.topic.config);
          if (!cfg.success) {
            const i = cfg.error.issues[0]!;
            throw new LanceError('INVALID_CONFIG', `${inputName}: topic config field ${i.path.join('.')}: ${i.message}`, { field: i.path.join('.') });
          }
          // the id inside the staging dir is provisional; the real one is claimed when the topic is published
          meta = await createTopic(staging, name, ev.header.topic.partitions, cfg.data);
          source = { id: ev.header.topic.id, name: ev.header.topic.name };
          break;
        }
        case 'partition': {
          const dir = partitionDir(staging, meta!.id, ev.start.partition);
          if (ev.start.startIndex > 1 || ev.start.startOffset > 0) {
            // A log trimmed by retention: its first segment starts where the exported one did.
            const file = path.join(dir, segmentFileName(ev.start.startOffset));
            await fsp.writeFile(file, encodeSegmentHeader({ baseOffset: ev.start.startOffset, baseIndex: ev.start.startIndex, prevTerm: ev.start.prevTerm }));
          }
          log = await PartitionLog.open(dir, { segmentBytes: meta!.config.segmentBytes, segmentMs: 0, retention: { retentionBytes: 0, retentionMs: 0 } });
          break;
        }
        case 'entries':
          progress?.set(ev.position);
          log!.appendReplicated(ev.entries);
          entries += ev.entries.length;
          for (const e of ev.entries) records += e.offsetCount;
          break;
        case 'partition-end':
          await log!.close(); // flushes and fsyncs
          log = null;
          break;
        case 'trailer':
          break;
      }
    }
    if (!meta || !source) throw new LanceError('INTERNAL', `${inputName}: no header read`);
    // Publish into a data dir a running broker may be using (runbook §6.2): claim an id exclusively, move the
    // verified partition dirs in, and write topic.json last — the broker sees the topic only once it is complete.
    if (await getTopicByName(dataDir, name)) throw new LanceError('CONFLICT', `--name ${name}: a topic with this name appeared in ${dataDir} while importing; nothing was imported`, { name });
    const id = await claimTopicId(dataDir);
    const finalDir = topicDir(dataDir, id);
    try {
      for (let p = 0; p < meta.partitions; p++) await fsp.rename(partitionDir(staging, meta.id, p), partitionDir(dataDir, id, p));
      await fsyncDir(finalDir);
      meta = { ...meta, id };
      await atomicWriteJson(topicMetaPath(dataDir, id), meta);
    } catch (e) {
      await fsp.rm(finalDir, { recursive: true, force: true }).catch(() => undefined);
      throw e instanceof LanceError ? e : ioError('move imported topic into place', finalDir, e);
    }
    await fsp.rm(staging, { recursive: true, force: true });
    progress?.done();
    return { topic: { id, name, partitions: meta.partitions, dir: finalDir }, input: inputName, entries, records, sourceTopic: source };
  } catch (e) {
    progress?.done();
    await log?.close().catch(() => undefined);
    await fsp.rm(staging, { recursive: true, force: true });
    throw e;
  }
}

export const exportTopicCommand = defineCommand({
  name: 'export-topic',
  summary: 'export a topic (all partitions, every entry with its offsets) to a checksummed .lance file',
  usage: '--path <data dir> --topic <id> --output <file>.lance',
  details: [
    'Streams the segments read-only (the data dir is not modified) into a versioned, checksummed file; the file',
    'appears only when complete (temp + fsync + rename). --output - writes to stdout. --topic takes the id (a name',
    'works too). A damaged tail of a partition\'s newest segment is left out with a warning; damage elsewhere stops',
    'the export (exit 1): run lnc repair first.',
  ].join('\n'),
  options: z.object({
    path: z.string().min(1).describe('the data directory'),
    topic: z.string().min(1).describe('topic id'),
    output: z.string().min(1).describe('the .lance file to write (- for stdout)'),
  }),
  async run(args, io) {
    if (args.output === '-' && io.json) throw new LanceError('USAGE', '--output - and --json both want stdout (see lnc export-topic --help)', { flag: '--output' });
    if (args.output !== '-') {
      const st = await statKind(args.output);
      if (st.kind === 'dir') throw new LanceError('USAGE', `--output ${args.output}: is a directory, expected a file name (e.g. ${path.join(args.output, `topic_${args.topic}.lance`)})`, { flag: '--output' });
      if ((await statKind(path.dirname(path.resolve(args.output)))).kind !== 'dir') throw new LanceError('NOT_FOUND', `--output ${args.output}: directory ${path.dirname(path.resolve(args.output))} does not exist`, { flag: '--output' });
    }
    const warn = await brokerRunningWarning(args.path);
    if (warn) io.err(warn);
    const r = await exportTopic(args.path, args.topic, args.output, io.stdout, (total) => io.progress('export', total));
    for (const w of r.warnings) io.err(`lnc: warning: ${w}`);
    const human = (): string =>
      renderKeyValues([
        ['exported', `topic ${r.topic.id} (${r.topic.name}), ${r.topic.partitions} partition(s)`],
        ['records', r.trailer.records],
        ['entries', r.trailer.entries],
        ['file', `${r.output} (${r.bytes} bytes, crc32c ${r.trailer.fileCrc32c.toString(16).padStart(8, '0')})`],
      ]);
    if (args.output === '-') io.err(human());
    else io.emit(r, human);
    return r.warnings.length > 0 ? ExitCode.PROBLEMS : ExitCode.OK;
  },
});

export const importTopicCommand = defineCommand({
  name: 'import-topic',
  summary: 'import a .lance export as a new topic (same offsets and payloads); prints the new topic id',
  usage: '--path <data dir> --name <topic name> --input <file>.lance',
  details: [
    'Verifies the whole file while writing into a staging dir inside the data dir, then renames the topic into',
    'place: a truncated or corrupt file is refused with the byte position and leaves nothing behind (exit 1).',
    '--input - reads stdin. Works on the data dir of a running standalone broker (runbook §6.2): the topic gets its',
    'own id and topic.json is written last, so the broker picks it up only once it is complete.',
  ].join('\n'),
  options: z.object({
    path: z.string().min(1).describe('the data directory'),
    name: z.string().min(1).describe('name of the new topic'),
    input: z.string().min(1).describe('the .lance file (- for stdin)'),
  }),
  async run(args, io) {
    await requirePath(args.path, '--path', ['dir']);
    let input: Readable;
    let size = 0;
    if (args.input === '-') input = io.stdin;
    else {
      size = (await requirePath(args.input, '--input', ['file', 'segment', 'index'])).size;
      input = createReadStream(args.input);
    }
    const bar = size > 0 ? io.progress('import', size) : undefined;
    const r = await importTopic(args.path, args.name, input, args.input === '-' ? 'stdin' : args.input, bar);
    io.emit(r, () =>
      [
        renderKeyValues([
          ['imported', `${r.input} (topic ${r.sourceTopic.id} "${r.sourceTopic.name}")`],
          ['as topic', `${r.topic.name}, ${r.topic.partitions} partition(s), ${r.records} records, ${r.entries} entries`],
          ['topic id', r.topic.id],
          ['dir', r.topic.dir],
        ]),
        `next: lnc verify-data --path ${args.path} --topic ${r.topic.id}`,
      ].join('\n'),
    );
    return ExitCode.OK;
  },
});
