import { z } from 'zod';
import { defineCommand } from '../command.ts';
import { renderTable } from '../table.ts';
import { adminClient, serverOption } from './common.ts';

export const listTopicsCommand = defineCommand({
  name: 'list-topics',
  summary: 'list a broker\'s topics (JSON array of {id, name, partitions} by default)',
  usage: '--server <host:1992> [--table]',
  details: [
    'Prints a JSON array by default so scripts can use it, e.g. the runbook\'s backup loop:',
    '  for topic in $(lnc list-topics --server localhost:1992 | jq -r \'.[] .id\'); do ...; done',
    '`id` is the data dir\'s topic_<id> (what export-topic/verify-data --topic take).',
  ].join('\n'),
  options: z.object({
    server: serverOption,
    table: z.boolean().default(false).describe('print a human-readable table instead of JSON'),
  }),
  async run(args, io) {
    const topics = await adminClient(args.server).listTopics();
    const list = topics.map((t) => ({ id: t.id, name: t.name, partitions: t.partitions }));
    if (args.table && !io.json) {
      io.out(renderTable(['ID', 'NAME', 'PARTITIONS', 'RETENTION_MS', 'RETENTION_BYTES'],
        topics.map((t) => [t.id, t.name, t.partitions, t.config.retentionMs, t.config.retentionBytes])));
    } else {
      io.out(JSON.stringify(list, null, io.json ? 2 : undefined));
    }
    return 0;
  },
});
