import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import type { ConsumedRecord } from '../../admin/client.ts';
import { defineCommand } from '../command.ts';
import { adminClient, serverOption } from './common.ts';

interface Cursor { partition: number; offset: number; caughtUp: boolean }

export const consumeCommand = defineCommand({
  name: 'consume',
  summary: 'read records of a topic to stdout (one value per line), via the admin API',
  usage: '--server <host:1992> --topic <name> [--partition P] [--from-beginning | --offset N] [--count N] [--follow]',
  details: [
    'Starts at the end of the log (only new records) unless --from-beginning or --offset is given.',
    'Stops after --count records; without --count it stops at the end of the log, unless --follow',
    '(then it waits for new records until interrupted). --timeout-ms bounds the wait for --count.',
    'Only committed (fsynced) records are returned. --json prints one JSON array of records instead.',
  ].join('\n'),
  options: z.object({
    server: serverOption,
    topic: z.string().min(1).describe('topic name'),
    partition: z.coerce.number().int().nonnegative().optional().describe('read only this partition (default: all)'),
    fromBeginning: z.boolean().default(false).describe('start at the log start offset'),
    offset: z.coerce.number().int().nonnegative().optional().describe('start at this offset (needs --partition)'),
    count: z.coerce.number().int().min(1).optional().describe('stop after this many records'),
    follow: z.boolean().default(false).describe('keep waiting for new records'),
    timeoutMs: z.coerce.number().int().min(1).optional().describe('give up (exit 2, TIMEOUT) if --count records did not arrive in time'),
    printKey: z.boolean().default(false).describe('print key<TAB>value'),
    keySeparator: z.string().default('\t').describe('separator for --print-key (default TAB)'),
    encoding: z.enum(['utf8', 'base64']).default('utf8').describe('how keys and values are printed'),
  }),
  async run(args, io) {
    if (args.offset !== undefined && args.partition === undefined) throw new LanceError('USAGE', '--offset needs --partition (see lnc consume --help)');
    if (args.offset !== undefined && args.fromBeginning) throw new LanceError('USAGE', 'give at most one of --offset and --from-beginning (see lnc consume --help)');
    const client = adminClient(args.server);
    const topic = await client.getTopic(args.topic);
    const states = topic.partitionStates.filter((p) => args.partition === undefined || p.partition === args.partition);
    if (states.length === 0) throw new LanceError('NOT_FOUND', `--partition ${args.partition}: topic ${args.topic} has partitions 0-${topic.partitions - 1}`);
    const cursors: Cursor[] = states.map((p) => ({
      partition: p.partition,
      offset: args.offset ?? (args.fromBeginning ? p.logStartOffset : p.highWatermark),
      caughtUp: false,
    }));
    const deadline = args.timeoutMs === undefined ? Infinity : Date.now() + args.timeoutMs;
    const collected: Array<ConsumedRecord & { partition: number }> = [];
    let printed = 0;
    const want = args.count ?? Infinity;
    const emit = (partition: number, r: ConsumedRecord): void => {
      printed++;
      if (io.json) collected.push({ partition, ...r });
      else io.out(args.printKey ? `${r.key ?? ''}${args.keySeparator}${r.value ?? ''}` : (r.value ?? ''));
    };
    let turn = 0;
    while (printed < want) {
      const done = args.count === undefined && !args.follow && cursors.every((c) => c.caughtUp);
      if (done) break;
      // Poll every partition without waiting; when none had data, long-poll one of them (round robin).
      let got = 0;
      for (const c of cursors) {
        got += await step(c, 0);
        if (printed >= want) break;
      }
      // The deadline only bounds waiting: records already there are always drained first.
      if (got === 0 && printed < want && Date.now() >= deadline) {
        throw new LanceError('TIMEOUT', `consumed ${printed} of ${want} records from ${args.topic} within ${args.timeoutMs} ms`);
      }
      if (got === 0 && printed < want && (args.count !== undefined || args.follow)) {
        const c = cursors[turn++ % cursors.length]!;
        const remaining = deadline - Date.now();
        await step(c, Math.max(1, Math.min(cursors.length > 1 ? 500 : 5_000, remaining)));
      }
    }
    if (io.json) io.out(JSON.stringify(collected, null, 2));
    return 0;

    async function step(c: Cursor, waitMs: number): Promise<number> {
      const r = await client.fetchRecords(args.topic, c.partition, { offset: c.offset, waitMs, encoding: args.encoding, max: Math.min(1000, want - printed) });
      let n = 0;
      for (const rec of r.records) {
        if (printed >= want) break;
        emit(c.partition, rec);
        c.offset = rec.offset + 1;
        n++;
      }
      if (r.records.length === 0 || n === r.records.length) c.offset = Math.max(c.offset, r.nextOffset);
      c.caughtUp = c.offset >= r.highWatermark;
      return n;
    }
  },
});
