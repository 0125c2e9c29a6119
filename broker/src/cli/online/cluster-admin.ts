/**
 * Cluster-mode admin commands: `lnc members raft add|promote|remove` (one Raft group's membership, low level; the
 * cluster membership commands are `lnc members list|add|remove` in members.ts), `lnc transfer-leader`, `lnc fence|unfence`.
 */
import { z } from 'zod';
import { LanceError } from '../../common/errors.ts';
import { defineCommand } from '../command.ts';
import { adminClient, serverOption } from './common.ts';

const nodeOption = z.coerce.number().int().nonnegative().describe('node id');
const groupOption = z.string().min(1).optional().describe('Raft group (default "__meta"; partition groups are "topic_<id>/<partition>", see cluster-status)');

const ACTIONS = { add: 'add-learner', promote: 'promote', remove: 'remove' } as const;

export const membersCommand = defineCommand({
  name: 'members raft',
  summary: 'low level: one Raft group\'s membership on its leader (add a learner, promote, remove); prefer lnc members add/remove',
  usage: 'add|promote|remove --server <leader host:1992> --node <id> [--group <group>]',
  options: z.object({ _: z.array(z.string()), server: serverOption, node: nodeOption, group: groupOption }),
  async run(args, io) {
    const verb = args._[0];
    if (args._.length !== 1 || (verb !== 'add' && verb !== 'promote' && verb !== 'remove')) {
      throw new LanceError('USAGE', `members: expected one of add, promote, remove, got ${JSON.stringify(args._.join(' '))} (see lnc members raft --help)`);
    }
    const r = await adminClient(args.server).members({ action: ACTIONS[verb], nodeId: args.node, ...(args.group ? { group: args.group } : {}) });
    io.emit(r, () => r.message);
    return 0;
  },
});

export const transferLeaderCommand = defineCommand({
  name: 'transfer-leader',
  summary: 'hand a group\'s leadership to another voter (run against the current leader)',
  usage: '--server <leader host:1992> --to <node id> [--group <group>]',
  options: z.object({ server: serverOption, to: nodeOption, group: groupOption }),
  async run(args, io) {
    const r = await adminClient(args.server).transferLeader({ to: args.to, ...(args.group ? { group: args.group } : {}) });
    io.emit(r, () => r.message);
    return 0;
  },
});

export const fenceCommand = defineCommand({
  name: 'fence',
  summary: 'isolate a node: it serves no client traffic, votes for no leader, and a leader steps down',
  usage: '--server <host:1992>',
  options: z.object({ server: serverOption }),
  async run(args, io) {
    const r = await adminClient(args.server).fence();
    io.emit(r, () => r.message);
    return 0;
  },
});

export const unfenceCommand = defineCommand({
  name: 'unfence',
  summary: 'undo lnc fence',
  usage: '--server <host:1992>',
  options: z.object({ server: serverOption }),
  async run(args, io) {
    const r = await adminClient(args.server).unfence();
    io.emit(r, () => r.message);
    return 0;
  },
});
