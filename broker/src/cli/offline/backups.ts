/** `lnc backups list --from <url>`: the restore points in an object store (time, size, topics), oldest first. */
import { z } from 'zod';
import { listRestorePoints } from '../../tiering/metadata-dr.ts';
import { defineCommand, ExitCode } from '../command.ts';
import { formatBytes } from '../progress.ts';
import { renderTable } from '../table.ts';
import { storeFromUrl } from './restore.ts';

export const backupsListCommand = defineCommand({
  name: 'backups list',
  summary: 'list the restore points in an object store (time, size, topics)',
  usage: '--from <s3://bucket/prefix | file:///dir> [--cluster-id <id>] [--limit N] [--json]',
  details: 'A restore point is complete once its restore-point.json exists (written after its metadata snapshot). Unreadable ones are listed with their error and never used by lnc restore (exit 1). MODE: standalone, or cluster (restore it per broker with lnc restore --cluster-layout, or let the brokers cold-start; `key` in --json is what --restore-point takes).',
  options: z.object({
    from: z.string().min(1).describe('object store URL: s3://bucket/prefix or file:///dir'),
    clusterId: z.string().min(1).optional().describe('only this cluster\'s restore points'),
    limit: z.coerce.number().int().min(1).default(50).describe('the newest N restore points per cluster (default 50)'),
  }),
  async run(args, io) {
    const store = storeFromUrl(args.from);
    try {
      const points = await listRestorePoints(store, { newest: args.limit, ...(args.clusterId !== undefined ? { clusterId: args.clusterId } : {}) });
      const rows = points.map((p) => ({
        time: new Date(p.takenAtMs).toISOString(), clusterId: p.clusterId, node: p.node, key: p.key, mode: p.point?.mode ?? null,
        bytes: p.point?.totalBytes ?? null, topics: p.point?.topics.map((t) => t.name) ?? [], groups: p.point?.groups ?? null,
        unuploadedRecords: p.point?.unuploadedRecords ?? null, ...(p.error ? { error: p.error } : {}),
      }));
      io.emit({ from: store.url, restorePoints: rows }, () => rows.length === 0
        ? `no restore point in ${store.url}`
        : renderTable(['TIME', 'CLUSTER', 'NODE', 'MODE', 'SIZE', 'TOPICS', 'GROUPS', 'STATUS'], rows.map((r) => [
          r.time, r.clusterId, r.node, r.mode ?? '-', r.bytes === null ? '-' : formatBytes(r.bytes), r.topics.join(',') || '-', r.groups ?? '-',
          r.error ?? (r.unuploadedRecords ? `ok (${r.unuploadedRecords} records not yet uploaded)` : 'ok'),
        ])));
      return rows.some((r) => r.error) ? ExitCode.PROBLEMS : ExitCode.OK;
    } finally {
      await store.close().catch(() => undefined);
    }
  },
});
