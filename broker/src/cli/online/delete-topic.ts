import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import { defineCommand } from '../command.ts';
import { adminClient, serverOption } from './common.ts';

export const deleteTopicCommand = defineCommand({
  name: 'delete-topic',
  summary: 'delete a topic (and its data) on a running broker',
  usage: '--server <host:1992> (--name <topic> | --topic <id>)',
  options: z.object({
    server: serverOption,
    name: z.string().min(1).optional().describe('topic name'),
    topic: z.coerce.number().int().positive().optional().describe('topic id (as printed by list-topics)'),
  }),
  async run(args, io) {
    const client = adminClient(args.server);
    if ((args.name === undefined) === (args.topic === undefined)) {
      throw new LanceError('USAGE', 'give exactly one of --name or --topic (see lnc delete-topic --help)');
    }
    let name = args.name;
    if (name === undefined) {
      const t = (await client.listTopics()).find((x) => x.id === args.topic);
      if (!t) throw new LanceError('NOT_FOUND', `--topic ${args.topic}: no topic with that id on ${client.baseUrl}`);
      name = t.name;
    }
    const r = await client.deleteTopic(name);
    io.emit(r, () => `deleted topic ${r.deleted} (id ${r.id})`);
    return 0;
  },
});
