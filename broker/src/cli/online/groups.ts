/** `lnc groups list|describe|reset-offsets` — consumer groups through the admin API (/v1/groups). */
import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import { defineCommand } from '../command.ts';
import { renderTable } from '../table.ts';
import { adminClient, serverOption } from './common.ts';

function oneGroup(positional: string[], cmd: string): string {
  if (positional.length !== 1 || positional[0] === '') throw new LanceError('USAGE', `groups ${cmd}: expected exactly one group name, got ${positional.length} (see lnc groups ${cmd} --help)`);
  return positional[0]!;
}
const dash = (v: number | string | null): string | number => (v === null ? '-' : v);

export const groupsListCommand = defineCommand({
  name: 'groups list',
  summary: 'list the consumer groups a broker coordinates (state, protocol type, member count)',
  usage: '--server <host:1992>',
  options: z.object({ server: serverOption }),
  async run(args, io) {
    const groups = await adminClient(args.server).listGroups();
    io.emit(groups, () => (groups.length === 0 ? 'no consumer groups' : renderTable(['GROUP', 'STATE', 'PROTOCOL_TYPE', 'MEMBERS'], groups.map((g) => [g.group, g.state, g.protocolType, g.members]))));
    return 0;
  },
});

export const groupsDescribeCommand = defineCommand({
  name: 'groups describe',
  summary: 'members, assignment, committed offset, log end offset and lag per partition of one group',
  usage: '<group> --server <host:1992>',
  options: z.object({ _: z.array(z.string()), server: serverOption }),
  async run(args, io) {
    const d = await adminClient(args.server).describeGroup(oneGroup(args._, 'describe'));
    io.emit(d, () => {
      const clientOf = new Map(d.members.map((m) => [m.memberId, `${m.clientId}/${m.clientHost}`]));
      const head = `group ${d.group}: ${d.state}, generation ${d.generation}, protocol ${d.protocolType || '-'}/${d.protocol || '-'}, ${d.members.length} member(s)`;
      const rows = d.partitions.map((p) => [d.group, p.topic, p.partition, dash(p.committedOffset), dash(p.logEndOffset), dash(p.lag), dash(p.memberId), p.memberId ? (clientOf.get(p.memberId) ?? '-') : '-']);
      return `${head}\n${renderTable(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'CLIENT'], rows)}`;
    });
    return 0;
  },
});

export const groupsResetOffsetsCommand = defineCommand({
  name: 'groups reset-offsets',
  summary: 'move an EMPTY group\'s committed offsets of a topic to the earliest/latest offset or a point in time (dry run unless --execute)',
  usage: '<group> --server <host:1992> --topic <topic> (--to-earliest | --to-latest | --to-datetime <RFC3339>) [--execute]',
  details: 'Like kafka-consumer-groups --reset-offsets: without --execute only the plan is printed. The group must have no members.',
  options: z.object({
    _: z.array(z.string()),
    server: serverOption,
    topic: z.string().min(1).describe('topic whose partitions are reset'),
    toEarliest: z.boolean().default(false).describe('the first offset still in the log'),
    toLatest: z.boolean().default(false).describe('the end of the log'),
    toDatetime: z.string().optional().describe('first record with a timestamp at/after this RFC 3339 time (e.g. 2026-11-22T10:00:00Z)'),
    execute: z.boolean().default(false).describe('apply the plan (default: dry run)'),
  }),
  async run(args, io) {
    const group = oneGroup(args._, 'reset-offsets');
    const picked = [args.toEarliest, args.toLatest, args.toDatetime !== undefined].filter(Boolean).length;
    if (picked !== 1) throw new LanceError('USAGE', 'groups reset-offsets: give exactly one of --to-earliest, --to-latest, --to-datetime <RFC3339>');
    if (args.toDatetime !== undefined && !z.iso.datetime({ offset: true }).safeParse(args.toDatetime).success) {
      throw new LanceError('USAGE', `--to-datetime: expected an RFC 3339 time like 2026-11-22T10:00:00Z, got ${JSON.stringify(args.toDatetime)}`);
    }
    const to = args.toEarliest ? 'earliest' as const : args.toLatest ? 'latest' as const : { datetime: args.toDatetime! };
    const r = await adminClient(args.server).resetOffsets(group, { topic: args.topic, to, execute: args.execute });
    io.emit(r, () => {
      const t = renderTable(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'], r.offsets.map((o) => [r.group, o.topic, o.partition, dash(o.current), o.target]));
      return r.executed ? `${t}\noffsets reset` : `${t}\ndry run: nothing changed (add --execute to apply)`;
    });
    return 0;
  },
});
