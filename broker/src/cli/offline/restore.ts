/**
 * `lnc restore --from <url> --data-dir <dir> [--cluster-id <id>] [--node-id <n>] [--time <RFC3339>] [--topics a,b]`
 * — writes a fresh data dir from the object store's restore points (broker/src/tiering/restore.ts; cold-start
 * recovery runs the same code). The operator's restore Job runs exactly this command.
 * `--cluster-layout --node-id <n> [--cluster-id <id>]` writes node n's share of a cluster instead
 * (broker/src/tiering/cluster-restore.ts, the code of the multi-node cold start): run it once per broker, with the
 * same restore point (`--restore-point <key>`, default the newest) on every one.
 */
import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import { createObjectStore, objectStoreConfigFromUrl } from '../../tiering/config.ts';
import { restoreDataDir, type RestoreReport } from '../../tiering/restore.ts';
import { restoreClusterNode, type ClusterRestoreReport } from '../../tiering/cluster-restore.ts';
import { defineCommand, ExitCode } from '../command.ts';
import type { Progress } from '../progress.ts';
import { renderKeyValues, renderTable } from '../table.ts';
import { refuseIfBrokerRunning } from './broker-lock.ts';

/** RFC 3339 with an explicit zone (Z or ±hh:mm) → ms since the epoch; USAGE naming --time otherwise. */
export function parseRestoreTime(text: string): number {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i.test(t)) {
    throw new LanceError('USAGE', `--time ${JSON.stringify(text)}: expected an RFC 3339 time with a zone, e.g. 2026-11-22T09:00:00Z`, { flag: '--time' });
  }
  // JS Date parses at most milliseconds: drop extra fraction digits
  const ms = Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
  if (!Number.isFinite(ms)) throw new LanceError('USAGE', `--time ${JSON.stringify(text)}: not a valid date`, { flag: '--time' });
  return ms;
}

/** `--topics a,b` (repeatable) → names; USAGE on an empty name. */
export function parseTopicList(values: readonly string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  const out = values.flatMap((v) => v.split(',')).map((s) => s.trim());
  if (out.some((s) => s === '')) throw new LanceError('USAGE', `--topics ${JSON.stringify(values.join(','))}: empty topic name`, { flag: '--topics' });
  return [...new Set(out)];
}

/** The object store behind a --from URL. `client` delimiter listing: correct on every S3 endpoint (s3rver's is not). */
export function storeFromUrl(url: string, env: Record<string, string | undefined> = process.env): ReturnType<typeof createObjectStore> {
  const cfg = objectStoreConfigFromUrl(url, env);
  return createObjectStore({ ...cfg, listDelimiter: 'client' });
}

function humanReport(r: RestoreReport): string {
  return [
    renderKeyValues([
      ['restored from', `${r.from} ${r.restorePoint.key}`],
      ['restore point', `${r.restorePoint.takenAt} (cluster ${r.restorePoint.clusterId}, written by node ${r.restorePoint.node})`],
      ['point in time', r.atMs === null ? '(newest)' : new Date(r.atMs).toISOString()],
      ['data dir', `node ${r.nodeId} of cluster ${r.clusterId}`],
      ['topics', r.topics.map((t) => t.name).join(', ') || '(none)'],
      ['groups', r.groups.length],
      ['downloaded', `${r.bytes} bytes in ${r.objects} objects, ${(r.durationMs / 1000).toFixed(1)} s`],
    ]),
    '',
    renderTable(['TOPIC', 'PARTITION', 'LOG START', 'NEXT OFFSET', 'SEGMENTS', 'CUT AT'], r.partitions.map((p) => [p.topic, p.partition, p.logStartOffset, p.nextOffset, p.segments, p.truncatedAt ?? '-'])),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

function humanClusterReport(r: ClusterRestoreReport): string {
  return [
    renderKeyValues([
      ['restored from', `${r.from} ${r.restorePoint.key}`],
      ['restore point', `${r.restorePoint.takenAt} (cluster ${r.restorePoint.clusterId}, written by node ${r.restorePoint.node})`],
      ['data dir', `node ${r.nodeId} of cluster ${r.clusterId} (cluster layout; metadata voters ${r.metaVoters.join(', ')}, term ${r.metaTerm})`],
      ['topics', r.topics.map((t) => t.name).join(', ') || '(none)'],
      ['groups', r.groups.length],
      ['downloaded', `${r.bytes} bytes in ${r.objects} objects, ${(r.durationMs / 1000).toFixed(1)} s`],
    ]),
    '',
    renderTable(['TOPIC', 'PARTITION', 'LOG START', 'NEXT OFFSET', 'RAFT INDEX', 'TERM', 'SEGMENTS'], r.partitions.map((p) => [p.topic, p.partition, p.logStartOffset, p.nextOffset, `${p.firstIndex}..${p.lastIndex}`, p.term, p.segments])),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join('\n');
}

export const restoreCommand = defineCommand({
  name: 'restore',
  summary: 'write a fresh data dir from the object store (newest restore point, or the newest at or before --time)',
  usage: '--from <s3://bucket/prefix | file:///dir> --data-dir <dir> [--cluster-id <id>] [--node-id <n>] [--time <RFC3339>] [--topics a,b] | ... --cluster-layout --node-id <n> [--cluster-id <id>] [--restore-point <key>]',
  details: [
    'Chooses the newest restore point taken at or before --time (default: the newest), downloads every partition\'s',
    'segments from the bucket (each checked against its recorded size and CRC32C), cuts each partition after the last',
    'batch whose records are all ≤ --time, clamps committed group offsets into the restored logs, and writes node.json',
    'last. The data dir must be empty (an interrupted restore is redone). S3 connection settings come from the URL',
    '(?endpoint=..&region=..&forcePathStyle=true) and the S3_* environment (credentials). Then start lance on it.',
    'Examples:',
    '  lnc backups list --from s3://lance-dr/prod',
    '  lnc restore --from s3://lance-dr/prod --data-dir /var/lib/lance --time 2026-11-22T09:00:00Z',
    'Cluster layout (one data dir per broker, the same restore point for all; --time and --topics do not apply):',
    '  lnc restore --from s3://lance-dr/prod --data-dir /data/node-2 --cluster-layout --cluster-id prod --node-id 2',
  ].join('\n'),
  options: z.object({
    from: z.string().min(1).describe('object store URL: s3://bucket/prefix or file:///dir'),
    dataDir: z.string().min(1).describe('the data directory to write (must be empty)'),
    clusterId: z.string().min(1).optional().describe('cluster id for node.json (default: the source cluster\'s)'),
    sourceClusterId: z.string().min(1).optional().describe('restore points of this cluster (needed only when the bucket holds several)'),
    nodeId: z.coerce.number().int().nonnegative().default(1).describe('node id for node.json (default 1)'),
    time: z.string().min(1).optional().describe('point in time, RFC 3339 (e.g. 2026-11-22T09:00:00Z)'),
    topics: z.array(z.string()).optional().describe('only these topics (comma-separated, repeatable)'),
    concurrency: z.coerce.number().int().min(1).max(64).default(8).describe('parallel downloads (default 8)'),
    clusterLayout: z.boolean().default(false).describe('write the share of broker --node-id of a cluster (--cluster-id default: the backup\'s, which brokers with the same peers derive)'),
    restorePoint: z.string().min(1).optional().describe('cluster layout: the restore point key (default: the newest); the same on every broker'),
  }),
  async run(args, io) {
    const atMs = args.time !== undefined ? parseRestoreTime(args.time) : undefined;
    const topics = parseTopicList(args.topics);
    await refuseIfBrokerRunning(args.dataDir, '--data-dir');
    if (args.clusterLayout) {
      if (atMs !== undefined || topics) throw new LanceError('USAGE', '--cluster-layout restores a whole restore point: --time and --topics do not apply (choose one with --restore-point)', { flag: atMs !== undefined ? '--time' : '--topics' });
    } else if (args.restorePoint !== undefined) {
      throw new LanceError('USAGE', '--restore-point applies to --cluster-layout only (a standalone restore chooses with --time)', { flag: '--restore-point' });
    }
    const store = storeFromUrl(args.from);
    let bar: Progress | undefined;
    const progress = {
      start: (total: number) => {
        bar = io.progress('restore', total);
      },
      advance: (n: number) => bar?.advance(n),
      done: () => bar?.done(),
    };
    try {
      if (args.clusterLayout) {
        const report = await restoreClusterNode({
          store, dataDir: args.dataDir, nodeId: args.nodeId, concurrency: args.concurrency, progress,
          ...(args.clusterId !== undefined ? { clusterId: args.clusterId } : {}),
          ...(args.restorePoint !== undefined ? { restorePointKey: args.restorePoint } : {}),
        });
        io.emit(report, () => humanClusterReport(report));
        return ExitCode.OK;
      }
      const report = await restoreDataDir({
        store, dataDir: args.dataDir, nodeId: args.nodeId, concurrency: args.concurrency,
        ...(args.clusterId !== undefined ? { clusterId: args.clusterId } : {}),
        ...(args.sourceClusterId !== undefined ? { sourceClusterId: args.sourceClusterId } : {}),
        ...(atMs !== undefined ? { atMs } : {}),
        ...(topics ? { topics } : {}),
        progress,
      });
      io.emit(report, () => humanReport(report));
      return ExitCode.OK;
    } finally {
      await store.close().catch(() => undefined);
    }
  },
});
