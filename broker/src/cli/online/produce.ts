import { createInterface } from 'node:readline';
import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import type { ProduceRecord } from '../../admin/client.ts';
import { defineCommand } from '../command.ts';
import { adminClient, serverOption } from './common.ts';

export const produceCommand = defineCommand({
  name: 'produce',
  summary: 'append lines from stdin to a topic as records (one record per line), via the admin API',
  usage: '--server <host:1992> --topic <name> [--partition P] [--key K | --key-separator SEP] [--header k=v ...]',
  details: [
    'Each stdin line becomes one record value. Records are sent in batches of --batch-size and each batch is',
    'acknowledged only after the broker has fsynced it. Without --partition, keyed records go to Kafka\'s',
    'murmur2(key) partition and unkeyed ones round robin.',
    'Example:  printf "a\\nb\\n" | lnc produce --server localhost:1992 --topic orders',
  ].join('\n'),
  options: z.object({
    server: serverOption,
    topic: z.string().min(1).describe('topic name'),
    partition: z.coerce.number().int().nonnegative().optional().describe('write every record to this partition'),
    key: z.string().optional().describe('use this key for every record'),
    keySeparator: z.string().min(1).optional().describe('split each line at the first SEP into key and value'),
    header: z.array(z.string().regex(/^[^=]+=/, { error: 'expected key=value' })).optional().describe('add a header to every record (key=value)'),
    batchSize: z.coerce.number().int().min(1).max(10_000).default(500).describe('records per request (default 500)'),
  }),
  async run(args, io) {
    if (args.key !== undefined && args.keySeparator !== undefined) {
      throw new LanceError('USAGE', 'give at most one of --key and --key-separator (see lnc produce --help)');
    }
    const client = adminClient(args.server);
    const headers = Object.fromEntries((args.header ?? []).map((h) => [h.slice(0, h.indexOf('=')), h.slice(h.indexOf('=') + 1)]));
    const summary = new Map<number, { partition: number; firstOffset: number; lastOffset: number; count: number }>();
    let total = 0;
    let pending: ProduceRecord[] = [];
    const send = async (): Promise<void> => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      const r = await client.produce(args.topic, { records: batch });
      for (const p of r.partitions) {
        const s = summary.get(p.partition);
        const last = p.baseOffset + p.count - 1;
        if (!s) summary.set(p.partition, { partition: p.partition, firstOffset: p.baseOffset, lastOffset: last, count: p.count });
        else {
          s.lastOffset = Math.max(s.lastOffset, last);
          s.count += p.count;
        }
      }
      total += batch.length;
    };
    const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
      let key: string | null = args.key ?? null;
      let value = line;
      if (args.keySeparator !== undefined) {
        const i = line.indexOf(args.keySeparator);
        if (i >= 0) {
          key = line.slice(0, i);
          value = line.slice(i + args.keySeparator.length);
        }
      }
      const rec: ProduceRecord = { key, value };
      if (args.partition !== undefined) rec.partition = args.partition;
      if (Object.keys(headers).length) rec.headers = headers;
      pending.push(rec);
      if (pending.length >= args.batchSize) await send();
    }
    await send();
    const partitions = [...summary.values()].sort((a, b) => a.partition - b.partition);
    io.emit({ topic: args.topic, records: total, partitions }, () =>
      `produced ${total} record${total === 1 ? '' : 's'} to ${args.topic}` +
      (partitions.length ? ` (${partitions.map((p) => `partition ${p.partition}: offsets ${p.firstOffset}-${p.lastOffset}`).join(', ')})` : ''));
    return 0;
  },
});
