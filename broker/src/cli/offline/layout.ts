/**
 * Where things are in a data dir, as seen by the offline tools. The runbook prints paths of an older layout
 * (`topic_<id>/<segment>.lnc`, `topic_<id>/index.idx`); the real one has a partition dir in between
 * (`topic_<id>/<partition>/<base offset>.lnc|.idx|.tix`). These helpers map what an operator types to real files
 * and, when a path does not exist, say which files do.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { ioError, LanceError } from '../../common/errors.ts';
import { getTopicById, getTopicByName, topicDir, type TopicMeta } from '../../storage/catalog.ts';

export const SEGMENT_RE = /^(\d{20})\.lnc$/;
export const INDEX_RE = /^(\d{20})\.(idx|tix)$/;
const PARTITION_RE = /^(0|[1-9]\d*)$/;
const TOPIC_DIR_RE = /^topic_([1-9]\d*)$/;

export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.lnc`;
}

export function indexPathsFor(segmentFile: string): { idx: string; tix: string } {
  const base = segmentFile.replace(/\.lnc$/, '');
  return { idx: `${base}.idx`, tix: `${base}.tix` };
}

export function baseOffsetOf(file: string): number | null {
  const m = SEGMENT_RE.exec(path.basename(file)) ?? INDEX_RE.exec(path.basename(file));
  return m ? Number(m[1]) : null;
}

export type PathKind = 'segment' | 'index' | 'file' | 'dir' | 'missing';

export async function statKind(p: string): Promise<{ kind: PathKind; size: number }> {
  try {
    const st = await fsp.stat(p);
    if (st.isDirectory()) return { kind: 'dir', size: 0 };
    const name = path.basename(p);
    if (SEGMENT_RE.test(name) || name.endsWith('.lnc')) return { kind: 'segment', size: st.size };
    if (name.endsWith('.idx') || name.endsWith('.tix')) return { kind: 'index', size: st.size };
    return { kind: 'file', size: st.size };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing', size: 0 };
    throw ioError('stat', p, e);
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    throw ioError('list directory', dir, e);
  }
}

/** `*.lnc` segment files of a log directory (a partition dir or the metadata wal dir), by base offset. */
export async function listSegments(dir: string): Promise<string[]> {
  const names = (await readdirSafe(dir)).filter((n) => SEGMENT_RE.test(n)).sort();
  return names.map((n) => path.join(dir, n));
}

/** Index files (.idx/.tix) of a log directory. */
export async function listIndexFiles(dir: string): Promise<string[]> {
  return (await readdirSafe(dir)).filter((n) => INDEX_RE.test(n)).sort().map((n) => path.join(dir, n));
}

/** Numeric partition sub-directories of a topic dir, in partition order. */
export async function listPartitionDirs(topicDirPath: string): Promise<{ partition: number; dir: string }[]> {
  const out: { partition: number; dir: string }[] = [];
  for (const n of await readdirSafe(topicDirPath)) {
    if (!PARTITION_RE.test(n)) continue;
    const st = await fsp.stat(path.join(topicDirPath, n)).catch(() => null);
    if (st?.isDirectory()) out.push({ partition: Number(n), dir: path.join(topicDirPath, n) });
  }
  return out.sort((a, b) => a.partition - b.partition);
}

export function isTopicDirName(p: string): boolean {
  return TOPIC_DIR_RE.test(path.basename(path.resolve(p)));
}

/**
 * What a directory given to --path is: a topic dir (`topic_<id>`, holds partition dirs), or a log dir (holds
 * `*.lnc` segments: a partition dir or the wal), or something else (an error naming what was expected).
 */
export async function classifyDir(dir: string): Promise<'topic' | 'log' | 'data'> {
  if (isTopicDirName(dir)) return 'topic';
  const names = await readdirSafe(dir);
  if (names.some((n) => SEGMENT_RE.test(n))) return 'log';
  if (names.some((n) => TOPIC_DIR_RE.test(n))) return 'data';
  if (PARTITION_RE.test(path.basename(path.resolve(dir))) && isTopicDirName(path.dirname(path.resolve(dir)))) return 'log';
  if (path.basename(path.resolve(dir)) === 'wal') return 'log';
  throw new LanceError('USAGE', `${dir}: not a topic dir (topic_<id>), a partition dir or a log dir with *.lnc segments`, { path: dir });
}

export interface ResolvedTopic {
  id: number;
  dir: string;
  meta: TopicMeta | null;
}

/**
 * `--topic` as the runbook uses it: a topic id (`1`, or `topic_1`); a name is accepted too.
 * A topic dir without topic.json still resolves (its data can be verified; export needs the metadata).
 */
export async function resolveTopic(dataDir: string, topic: string): Promise<ResolvedTopic> {
  const st = await statKind(dataDir);
  if (st.kind === 'missing') throw new LanceError('NOT_FOUND', `--path ${dataDir}: no such directory`, { path: dataDir });
  if (st.kind !== 'dir') throw new LanceError('USAGE', `--path ${dataDir}: is a file, expected the data directory`, { path: dataDir });
  const m = /^(?:topic_)?([1-9]\d*)$/.exec(topic);
  if (m) {
    const id = Number(m[1]);
    const dir = topicDir(dataDir, id);
    if ((await statKind(dir)).kind !== 'dir') throw new LanceError('NOT_FOUND', `--topic ${topic}: no directory ${dir}${await knownTopicsHint(dataDir)}`, { path: dir });
    return { id, dir, meta: await getTopicById(dataDir, id) };
  }
  const meta = await getTopicByName(dataDir, topic);
  if (!meta) throw new LanceError('NOT_FOUND', `--topic ${topic}: no topic with that id or name in ${dataDir}${await knownTopicsHint(dataDir)}`, { topic });
  return { id: meta.id, dir: topicDir(dataDir, meta.id), meta };
}

async function knownTopicsHint(dataDir: string): Promise<string> {
  const ids = (await readdirSafe(dataDir)).map((n) => TOPIC_DIR_RE.exec(n)?.[1]).filter((x): x is string => x !== undefined);
  return ids.length > 0 ? ` (topics here: ${ids.sort((a, b) => Number(a) - Number(b)).join(', ')})` : ' (no topic_<id> directories here)';
}

/**
 * For a missing `topic_<id>/<name>.lnc` (the runbook's layout, without the partition dir): the real files of that
 * name in the topic's partition dirs.
 */
async function partitionCandidates(p: string): Promise<string[]> {
  const parent = path.dirname(path.resolve(p));
  if (!isTopicDirName(parent) || !/\.(lnc|idx|tix)$/.test(p)) return [];
  const found: string[] = [];
  for (const d of await listPartitionDirs(parent).catch(() => [])) {
    const c = path.join(d.dir, path.basename(p));
    if ((await statKind(c)).kind !== 'missing') found.push(c);
  }
  return found;
}

/** Requires that `p` exists and is of the expected kind; the error names the flag and the path. */
export async function requirePath(p: string, flag: string, expected: PathKind[]): Promise<{ kind: PathKind; size: number }> {
  const st = await statKind(p);
  if (st.kind === 'missing') {
    const c = await partitionCandidates(p);
    const hint = c.length > 0 ? ` (segments live in partition dirs: ${c.join(', ')})` : '';
    throw new LanceError('NOT_FOUND', `${flag} ${p}: no such file or directory${hint}`, { path: p });
  }
  if (!expected.includes(st.kind)) {
    const what = (k: PathKind): string => ({ segment: 'a segment file (*.lnc)', index: 'an index file (*.idx or *.tix)', dir: 'a directory', file: 'a file', missing: '' })[k];
    const actual = st.kind === 'file' ? 'a file that is not a segment or index' : what(st.kind);
    throw new LanceError('USAGE', `${flag} ${p}: is ${actual}, expected ${expected.map(what).join(' or ')}`, { path: p });
  }
  return st;
}
