/** Standalone wiring: the group coordinator on this node, persisted in `<data>/groups/`, ids in `<data>/producer-ids.json`. */
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.ts';
import type { BrokerEndpoint } from '../kafka/backend.ts';
import { FileGroupCommandLog } from './command-log.ts';
import { registerGroupMetrics } from './metrics.ts';
import { FileProducerIdAllocator, GroupService } from './service.ts';

export interface StandaloneBrokerView {
  brokers(): BrokerEndpoint[];
  highWatermarkOf(topic: string, partition: number): number | null;
}

export async function startStandaloneGroups(dataDir: string, broker: StandaloneBrokerView, registry: Registry, logger: Logger): Promise<GroupService> {
  const metrics = registerGroupMetrics(registry);
  const log = await FileGroupCommandLog.open(dataDir, logger);
  const service = await GroupService.start({
    log,
    producerIds: await FileProducerIdAllocator.open(dataDir),
    logger,
    // the endpoint is read per request: the Kafka listener's advertised address is known only after it binds
    coordinatorEndpoint: () => broker.brokers()[0] ?? null,
    metrics: metrics.hooks,
    // a partition with a high watermark exists
    coordinator: { partitionExists: (t, p) => broker.highWatermarkOf(t, p) !== null },
  });
  metrics.attach(service, (t, p) => broker.highWatermarkOf(t, p));
  return service;
}
