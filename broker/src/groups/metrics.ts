/** Group metrics on the broker's registry: lance_groups, lance_group_rebalances_total, lance_offset_commits_total, lance_consumer_lag. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { GroupMetricsHooks, GroupService } from './service.ts';

const STATES = ['Empty', 'PreparingRebalance', 'CompletingRebalance', 'Stable', 'Dead'] as const;

export interface GroupMetrics {
  hooks: GroupMetricsHooks;
  /** attaches the service whose groups the gauges describe (undefined: none here — cluster mode, not the controller) */
  attach(service: GroupService | undefined, highWatermark: (topic: string, partition: number) => number | null): void;
}

export function registerGroupMetrics(registry: Registry): GroupMetrics {
  let service: GroupService | undefined;
  let hw: (topic: string, partition: number) => number | null = () => null;
  const rebalances = new Counter({ name: 'lance_group_rebalances_total', help: 'consumer-group rebalances completed (join phases)', registers: [registry] });
  const commits = new Counter({ name: 'lance_offset_commits_total', help: 'committed offsets (partitions) accepted by the group coordinator', registers: [registry] });
  new Gauge({
    name: 'lance_groups',
    help: 'consumer groups by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const g of service?.list() ?? []) counts.set(g.state, (counts.get(g.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'lance_consumer_lag',
    help: 'high watermark minus the committed offset, per group and partition',
    labelNames: ['group', 'topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of service?.list() ?? []) {
        for (const o of service?.describe(g.groupId).offsets ?? []) {
          const end = hw(o.topic, o.partition);
          if (end !== null) this.set({ group: g.groupId, topic: o.topic, partition: String(o.partition) }, Math.max(0, end - o.offset));
        }
      }
    },
  });
  return {
    hooks: { onRebalances: (n) => rebalances.inc(n), onOffsetCommits: (n) => commits.inc(n) },
    attach(s, h) {
      service = s;
      hw = h;
    },
  };
}
