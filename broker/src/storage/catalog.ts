/**
 * Topic catalog: topic id ↔ name and per-topic config, one `<data>/topic_<id>/topic.json` per topic, written
 * atomically. This is the ONLY module that knows where topic metadata lives (it will move into the metadata
 * Raft log later; callers must not read topic.json themselves).
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { z } from 'zod';
import { LanceError, ioError } from '../common/errors.ts';
import { atomicWriteJson, mkdirDurable, fsyncDir } from '../common/fsutil.ts';

export const TOPIC_NAME_MAX = 249;
const TOPIC_NAME_RE = /^[a-zA-Z0-9._-]+$/;
const TOPIC_DIR_RE = /^topic_([1-9][0-9]*)$/;

export const TopicConfigSchema = z.object({
  /** 0 = unlimited */
  retentionMs: z.number().int().min(0).default(7 * 24 * 3600 * 1000),
  /** 0 = unlimited */
  retentionBytes: z.number().int().min(0).default(0),
  segmentBytes: z.number().int().min(1024).default(128 * 1024 * 1024),
  /** 0 = never roll by age */
  segmentMs: z.number().int().min(0).default(7 * 24 * 3600 * 1000),
  replicationFactor: z.number().int().min(1).default(1),
  cleanupPolicy: z.enum(['delete']).default('delete'),
}).strict();
export type TopicConfig = z.infer<typeof TopicConfigSchema>;

export const TopicMetaSchema = z.object({
  id: z.number().int().positive(),
  name: z.string(),
  /** Kafka topic id: 16 random bytes as 32 hex chars */
  uuid: z.string().regex(/^[0-9a-f]{32}$/),
  partitions: z.number().int().positive(),
  config: TopicConfigSchema,
  createdAt: z.string(),
});
export type TopicMeta = z.infer<typeof TopicMetaSchema>;

/** Throws INVALID_ARGUMENT naming the problem when `name` is not a legal Kafka topic name. */
export function validateTopicName(name: string): void {
  if (name.length === 0) throw new LanceError('INVALID_ARGUMENT', 'topic name: must not be empty', { field: 'name' });
  if (name.length > TOPIC_NAME_MAX) throw new LanceError('INVALID_ARGUMENT', `topic name: ${name.length} characters, maximum is ${TOPIC_NAME_MAX}`, { field: 'name' });
  if (name === '.' || name === '..') throw new LanceError('INVALID_ARGUMENT', `topic name: "${name}" is not allowed`, { field: 'name' });
  if (!TOPIC_NAME_RE.test(name)) {
    const bad = [...name].find((c) => !/[a-zA-Z0-9._-]/.test(c));
    throw new LanceError('INVALID_ARGUMENT', `topic name: character ${JSON.stringify(bad)} not allowed (use a-z A-Z 0-9 . _ -)`, { field: 'name' });
  }
}

export function topicDir(dataDir: string, id: number): string {
  return path.join(dataDir, `topic_${id}`);
}
export function partitionDir(dataDir: string, id: number, partition: number): string {
  return path.join(topicDir(dataDir, id), String(partition));
}
export function topicMetaPath(dataDir: string, id: number): string {
  return path.join(topicDir(dataDir, id), 'topic.json');
}

async function readMeta(file: string): Promise<TopicMeta> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw ioError('read topic metadata', file, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LanceError('CORRUPT', `${file}: not valid JSON (${(e as Error).message})`, { path: file });
  }
  const r = TopicMetaSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new LanceError('CORRUPT', `${file}: field ${issue?.path.join('.') || '<root>'}: ${issue?.message}`, { path: file });
  }
  return r.data;
}

/** Ids of the `topic_<id>` directories in the data dir (with or without topic.json). */
export async function listTopicIds(dataDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dataDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('list data dir', dataDir, e);
  }
  return names.map((n) => TOPIC_DIR_RE.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** All topics with metadata, by id. Topic dirs without topic.json are skipped (see listTopicIds). */
export async function listTopics(dataDir: string): Promise<TopicMeta[]> {
  const out: TopicMeta[] = [];
  for (const id of await listTopicIds(dataDir)) {
    try {
      out.push(await readMeta(topicMetaPath(dataDir, id)));
    } catch (e) {
      if (e instanceof LanceError && e.code === 'NOT_FOUND') continue;
      throw e;
    }
  }
  return out;
}

export async function getTopicById(dataDir: string, id: number): Promise<TopicMeta | null> {
  try {
    return await readMeta(topicMetaPath(dataDir, id));
  } catch (e) {
    if (e instanceof LanceError && e.code === 'NOT_FOUND') return null;
    throw e;
  }
}

export async function getTopicByName(dataDir: string, name: string): Promise<TopicMeta | null> {
  return (await listTopics(dataDir)).find((t) => t.name === name) ?? null;
}

// Serialises create/delete within this process so two creates cannot pick the same id.
let catalogLock: Promise<unknown> = Promise.resolve();
function locked<T>(fn: () => Promise<T>): Promise<T> {
  const run = catalogLock.then(fn, fn);
  catalogLock = run.catch(() => undefined);
  return run;
}

/**
 * Creates a topic with the next free id (1, 2, 3 …), its partition directories and topic.json (written last,
 * atomically: a topic dir without topic.json is an unfinished create). Throws CONFLICT if the name exists.
 */
export function createTopic(dataDir: string, name: string, partitions: number, config: Partial<TopicConfig> = {}, opts: { id?: number; uuid?: string } = {}): Promise<TopicMeta> {
  return locked(async () => {
    validateTopicName(name);
    if (!Number.isInteger(partitions) || partitions < 1) throw new LanceError('INVALID_ARGUMENT', `partitions: must be a positive integer, got ${partitions}`, { field: 'partitions' });
    const cfg = TopicConfigSchema.safeParse(config);
    if (!cfg.success) {
      const issue = cfg.error.issues[0];
      throw new LanceError('INVALID_CONFIG', `topic config field ${issue?.path.join('.')}: ${issue?.message}`, { field: issue?.path.join('.') });
    }
    if (await getTopicByName(dataDir, name)) throw new LanceError('CONFLICT', `topic "${name}" already exists`, { name });
    const id = await claimTopicId(dataDir, opts.id);
    const meta: TopicMeta = {
      id,
      name,
      uuid: opts.uuid ?? randomBytes(16).toString('hex'),
      partitions,
      config: cfg.data,
      createdAt: new Date().toISOString(),
    };
    for (let p = 0; p < partitions; p++) await mkdirDurable(partitionDir(dataDir, id, p));
    await atomicWriteJson(topicMetaPath(dataDir, id), meta);
    return meta;
  });
}

/**
 * Claims a topic id by creating its directory exclusively (non-recursive mkdir, EEXIST = taken), so two processes
 * on one data dir — a running broker and `lnc import-topic` (runbook §6.2) — can never pick the same id. The dir
 * stays invisible as a topic until its topic.json is written (listTopics skips dirs without one).
 * With `wanted`, that exact id or CONFLICT; otherwise the next free id after the highest one present.
 */
export async function claimTopicId(dataDir: string, wanted?: number): Promise<number> {
  await mkdirDurable(dataDir);
  const ids = await listTopicIds(dataDir);
  let id = wanted ?? (ids.length ? ids[ids.length - 1]! + 1 : 1);
  for (;;) {
    try {
      await fsp.mkdir(topicDir(dataDir, id));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create topic dir', topicDir(dataDir, id), e);
      if (wanted !== undefined) throw new LanceError('CONFLICT', `topic id ${wanted} already exists`, { id: wanted });
      id++;
    }
  }
  await fsyncDir(dataDir);
  return id;
}

export function updateTopicConfig(dataDir: string, id: number, patch: Partial<TopicConfig>): Promise<TopicMeta> {
  return locked(async () => {
    const cur = await getTopicById(dataDir, id);
    if (!cur) throw new LanceError('NOT_FOUND', `topic id ${id}: no ${topicMetaPath(dataDir, id)}`, { id });
    const cfg = TopicConfigSchema.safeParse({ ...cur.config, ...patch });
    if (!cfg.success) {
      const issue = cfg.error.issues[0];
      throw new LanceError('INVALID_CONFIG', `topic config field ${issue?.path.join('.')}: ${issue?.message}`, { field: issue?.path.join('.') });
    }
    const next = { ...cur, config: cfg.data };
    await atomicWriteJson(topicMetaPath(dataDir, id), next);
    return next;
  });
}

/**
 * Kafka CreatePartitions: grows the topic to `count` partitions (never shrinks). The new partition directories
 * are created durably first, then topic.json is rewritten atomically, so a crash leaves either the old count
 * (with unused empty dirs) or the new one.
 */
export function setPartitionCount(dataDir: string, id: number, count: number): Promise<TopicMeta> {
  return locked(async () => {
    const cur = await getTopicById(dataDir, id);
    if (!cur) throw new LanceError('NOT_FOUND', `topic id ${id}: no ${topicMetaPath(dataDir, id)}`, { id });
    if (!Number.isInteger(count) || count <= cur.partitions) {
      throw new LanceError('INVALID_ARGUMENT', `partitions: topic "${cur.name}" has ${cur.partitions}; the new count must be a larger integer, got ${count}`, { field: 'partitions', current: cur.partitions });
    }
    for (let p = cur.partitions; p < count; p++) await mkdirDurable(partitionDir(dataDir, id, p));
    const next = { ...cur, partitions: count };
    await atomicWriteJson(topicMetaPath(dataDir, id), next);
    return next;
  });
}

/** Deletes the topic's metadata first (so a crash midway leaves no half-visible topic), then its data. */
export function deleteTopic(dataDir: string, id: number): Promise<void> {
  return locked(async () => {
    const dir = topicDir(dataDir, id);
    const meta = topicMetaPath(dataDir, id);
    try {
      await fsp.rm(meta);
    } catch (e) {
      throw ioError('delete topic', meta, e);
    }
    await fsyncDir(dir);
    try {
      await fsp.rm(dir, { recursive: true, force: true });
    } catch (e) {
      throw ioError('delete topic', dir, e);
    }
    await fsyncDir(dataDir);
  });
}
