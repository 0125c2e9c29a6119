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
    ].join('\n'));
    return ready.status === 'ready' ? 0 : 1;
  },
});
