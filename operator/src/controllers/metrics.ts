/** The operator's Prometheus metrics, on its own registry (served by main.ts at /metrics). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LANCECLUSTER_PHASES, type LanceClusterPhase } from '../api/lancecluster.ts';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({ name: 'lance_operator_reconcile_total', help: 'Reconciles of LanceClusters', labelNames: ['namespace', 'cluster'], registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'lance_operator_reconcile_errors_total', help: 'Reconciles that failed (requeued with backoff)', labelNames: ['namespace', 'cluster'], registers: [this.registry] });
  readonly reconcileDuration = new Histogram({ name: 'lance_operator_reconcile_duration_seconds', help: 'Reconcile duration', labelNames: ['namespace', 'cluster'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly clusterPhase = new Gauge({ name: 'lance_operator_cluster_phase', help: '1 for the current phase of each LanceCluster, 0 for the others', labelNames: ['namespace', 'cluster', 'phase'], registers: [this.registry] });
  readonly watchStalls = new Counter({ name: 'lance_operator_watch_stalls_total', help: 'Watches restarted because no event or bookmark arrived in time', labelNames: ['kind'], registers: [this.registry] });
  readonly watchRelists = new Counter({ name: 'lance_operator_watch_relists_total', help: 'Informer relists', labelNames: ['kind'], registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'lance_operator_leader', help: '1 while this replica holds the leader lease', registers: [this.registry] });

  setPhase(namespace: string, cluster: string, phase: LanceClusterPhase | undefined): void {
    for (const p of LANCECLUSTER_PHASES) this.clusterPhase.set({ namespace, cluster, phase: p }, p === phase ? 1 : 0);
  }

  forget(namespace: string, cluster: string): void {
    for (const p of LANCECLUSTER_PHASES) this.clusterPhase.remove({ namespace, cluster, phase: p });
  }
}
