import { z } from 'zod';
import { defineCommand } from '../command.ts';
import { adminClient, serverOption } from './common.ts';

export const createTopicCommand = defineCommand({
  name: 'create-topic',
  summary: 'create a topic on a running broker',
  usage: '--server <host:1992> --name <topic> [--partitions N] [--retention-ms MS] [--retention-bytes B]',
  options: z.object({
    server: serverOption,
    name: z.string().min(1).describe('topic name ([A-Za-z0-9._-], at most 249 characters)'),
    partitions: z.coerce.number().int().min(1).optional().describe('partition count (default: the broker\'s topics.defaultPartitions)'),
    retentionMs: z.coerce.number().int().nonnegative().optional().describe('retention by age in ms; 0 = unlimited'),
    retentionBytes: z.coerce.number().int().nonnegative().optional().describe('retention by size per partition; 0 = unlimited'),
  }),
  async run(args, io) {
    const config: { retentionMs?: number; retentionBytes?: number } = {};
    if (args.retentionMs !== undefined) config.retentionMs = args.retentionMs;
    if (args.retentionBytes !== undefined) config.retentionBytes = args.retentionBytes;
    const t = await adminClient(args.server).createTopic({
      name: args.name,
      ...(args.partitions === undefined ? {} : { partitions: args.partitions }),
      ...(Object.keys(config).length ? { config } : {}),
    });
    io.emit(t, () => `created topic ${t.name} (id ${t.id}, ${t.partitions} partition${t.partitions === 1 ? '' : 's'})`);
    return 0;
  },
});
