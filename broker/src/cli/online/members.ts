/**
 * `lnc members list|add|remove` — cluster membership through the admin API (/v1/members). Any broker answers
 * (changes are forwarded to the controller). add/remove are idempotent; by default they wait until the change has
 * converged (the new node is a voter of the metadata group and of every partition assigned to it / the removed node
 * is in no group's membership any more), so a script (or the operator) can chain steps.
 */
import { z } from 'zod';
import type { AdminClient, Member, MembersList } from '../../admin/client.ts';
import { LanceError } from '../../common/errors.ts';
import { defineCommand } from '../command.ts';
import { renderTable } from '../table.ts';
import { adminClient, serverOption } from './common.ts';

const port = (name: string, def: number) => z.coerce.number().int().min(1).max(65535).default(def).describe(`${name} port of the new broker (default ${def})`);
const waitOptions = {
  noWait: z.boolean().default(false).describe('return once the controller accepted the change; do not wait for it to converge'),
  timeoutMs: z.coerce.number().int().positive().default(300_000).describe('how long to wait for the change to converge (ms)'),
};

function nodeIdArg(positional: string[], cmd: string): number {
  if (positional.length !== 1 || !/^\d{1,9}$/.test(positional[0]!)) {
    throw new LanceError('USAGE', `members ${cmd}: expected exactly one node id (a non-negative integer), got ${JSON.stringify(positional.join(' '))} (see lnc members ${cmd} --help)`);
  }
  return Number(positional[0]);
}

function membersTable(l: MembersList): string {
  return renderTable(['NODE', 'HOST', 'KAFKA', 'ADMIN', 'RAFT', 'ROLE', 'STATE', 'CONTROLLER', 'PARTITIONS (assigned/voter/learner)'],
    l.members.map((m) => [m.nodeId, m.host || '-', m.kafkaPort, m.adminPort, m.raftPort, m.role, m.state, m.controller ? 'yes' : '', `${m.partitions.assigned}/${m.partitions.voter}/${m.partitions.learner}`]));
}

/**
 * Polls GET /v1/members (on the same broker) until `done(member)` holds. The polling interval is the pace of a
 * human-facing wait, not a race fix; errors while the controller moves (NOT_LEADER, TIMEOUT) are retried.
 */
async function waitMember(client: AdminClient, nodeId: number, done: (m: Member | undefined) => boolean, timeoutMs: number, what: string): Promise<Member | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last: Member | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      const l = await client.listMembers();
      last = l.members.find((m) => m.nodeId === nodeId);
      if (done(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const state = last ? `state ${last.state}, role ${last.role}, partitions ${last.partitions.voter}/${last.partitions.assigned} as voter` : 'not listed';
      throw new LanceError('TIMEOUT', `node ${nodeId}: ${what} not reached within ${timeoutMs} ms (${state})${lastErr ? `; last error: ${String(lastErr)}` : ''}`, { nodeId });
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export const membersListCommand = defineCommand({
  name: 'members list',
  summary: 'the cluster\'s brokers: endpoints, role in the metadata group (voter/learner), state (joining/active/removing/removed)',
  usage: '--server <host:1992>',
  options: z.object({ server: serverOption }),
  async run(args, io) {
    const l = await adminClient(args.server).listMembers();
    io.emit(l, () => `controller: ${l.controllerId}\n${membersTable(l)}`);
    return 0;
  },
});

export const membersAddCommand = defineCommand({
  name: 'members add',
  summary: 'add a broker (started with cluster.join or a node id outside cluster.bootstrapVoters): learner → catch-up → voter; idempotent',
  usage: '<node id> --server <host:1992> --host <host> [--kafka-port 9092] [--admin-port 1992] [--raft-port 1993] [--no-wait] [--timeout-ms 300000]',
  details: 'The new broker must already run (it waits to be added). Under-replicated partitions gain it as a replica.\n'
    + 'Waits until it is a voter of the metadata group and of every partition assigned to it (state "active").',
  options: z.object({
    _: z.array(z.string()), server: serverOption, host: z.string().min(1).describe('host the other brokers and clients reach it at'),
    kafkaPort: port('Kafka', 9092), adminPort: port('admin', 1992), raftPort: port('raft', 1993), ...waitOptions,
  }),
  async run(args, io) {
    const id = nodeIdArg(args._, 'add');
    const client = adminClient(args.server);
    const r = await client.addMember(id, { host: args.host, kafkaPort: args.kafkaPort, adminPort: args.adminPort, raftPort: args.raftPort });
    if (!io.json) io.err(r.message);
    const member = args.noWait ? undefined : await waitMember(client, id, (m) => m?.state === 'active', args.timeoutMs, 'state "active"');
    io.emit({ ...r, member: member ?? null }, () => (member ? `node ${id} is active: voter of the metadata group and of ${member.partitions.voter} partition(s)` : r.message));
    return 0;
  },
});

export const membersRemoveCommand = defineCommand({
  name: 'members remove',
  summary: 'retire a broker: its replicas move to other brokers (keeping the replication factor when possible); idempotent',
  usage: '<node id> --server <host:1992> [--no-wait] [--timeout-ms 300000]',
  details: 'Refused (CONFLICT) when it would remove the last member, leave the metadata group without a live majority,\n'
    + 'or leave a partition without any replica. Removing the controller transfers its leadership first.\n'
    + 'Waits until no Raft group lists the node any more (state "removed"). Node ids are never reused.',
  options: z.object({ _: z.array(z.string()), server: serverOption, ...waitOptions }),
  async run(args, io) {
    const id = nodeIdArg(args._, 'remove');
    const client = adminClient(args.server);
    const r = await client.removeMember(id);
    if (!io.json) io.err(r.message);
    const member = args.noWait ? undefined : await waitMember(client, id, (m) => m === undefined || m.state === 'removed', args.timeoutMs, 'state "removed"');
    io.emit({ ...r, member: member ?? null }, () => (args.noWait ? r.message : `node ${id} is removed from every group`));
    return 0;
  },
});
