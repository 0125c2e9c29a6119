import { z } from 'zod';
import { defineCommand } from '../command.ts';
import { renderKeyValues, renderTable } from '../table.ts';
import { adminClient, serverOption } from './common.ts';

export const clusterStatusCommand = defineCommand({
  name: 'cluster-status',
  summary: 'show a broker\'s view of the cluster (role, readiness, topics and offsets); exit 1 if not ready',
  usage: '--server <host:1992>',
  options: z.object({ server: serverOption }),
  async run(args, io) {
    const client = adminClient(args.server);
    const [ready, view] = await Promise.all([client.ready(), client.cluster()]);
    io.emit({ ready, ...view }, () => [
      renderKeyValues([
        ['cluster', view.clusterId], ['node', view.nodeId], ['role', view.role], ['ready', ready.status],
        ['read-only', view.readOnly], ['kafka', `${view.listeners.kafka.host}:${view.listeners.kafka.port}`], ['version', view.version],
      ]),
      '',
      renderTable(['TOPIC', 'ID', 'PARTITION', 'LEADER', 'LOG_START', 'HIGH_WATERMARK', 'LOG_END'],
        view.topics.flatMap((t) => t.partitions.map((p) => [t.name, t.id, p.partition, p.leader, p.logStartOffset, p.highWatermark, p.logEndOffset]))),
      // cluster mode: one row per Raft group on this node (followers' match index and lag are known on the leader)
      ...(view.groups ? [
        '',
        renderKeyValues([['controller', view.controllerId ?? -1], ['fenced', view.fenced ?? false]]),
        '',
        renderTable(['GROUP', 'TOPIC', 'PARTITION', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'LAST', 'VOTERS', 'FOLLOWERS (id:match/lag)'],
          view.groups.map((g) => [
            g.group, g.topic ?? '-', g.partition ?? '-', g.role, g.term, g.leader ?? '-', g.commitIndex, g.lastIndex, g.voters.join(','),
            g.followers.length ? g.followers.map((f) => `${f.nodeId}${f.voter ? '' : '(learner)'}:${f.matchIndex}/${f.lag}`).join(' ') : '-',
          ])),
      ] : []),
    ].join('\n'));
    return ready.status === 'ready' ? 0 : 1;
  },
});
