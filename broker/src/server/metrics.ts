/**
 * The broker's Prometheus metrics (prom-client). One Registry per server instance (not the global default), so
 * several brokers can live in one process in tests. Served on the admin port at GET /metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Kafka API key → name, for the {api} label (unknown keys are labelled by number). */
const KAFKA_API_NAMES: Record<number, string> = {
  0: 'Produce', 1: 'Fetch', 2: 'ListOffsets', 3: 'Metadata', 8: 'OffsetCommit', 9: 'OffsetFetch', 10: 'FindCoordinator',
  11: 'JoinGroup', 12: 'Heartbeat', 13: 'LeaveGroup', 14: 'SyncGroup', 15: 'DescribeGroups', 16: 'ListGroups',
  17: 'SaslHandshake', 18: 'ApiVersions', 19: 'CreateTopics', 20: 'DeleteTopics', 22: 'InitProducerId',
  32: 'DescribeConfigs', 33: 'AlterConfigs', 36: 'SaslAuthenticate', 37: 'CreatePartitions', 42: 'DeleteGroups',
  44: 'IncrementalAlterConfigs', 60: 'DescribeCluster',
};

export function kafkaApiName(apiKey: number): string {
  return KAFKA_API_NAMES[apiKey] ?? `api_${apiKey}`;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  readonly kafkaRequests: Counter<'api'>;
  readonly kafkaRequestDuration: Histogram<'api'>;
  readonly kafkaBytesIn: Counter;
  readonly kafkaBytesOut: Counter;
  readonly logEndOffset: Gauge<'topic' | 'partition'>;
  readonly logStartOffset: Gauge<'topic' | 'partition'>;
  readonly highWatermark: Gauge<'topic' | 'partition'>;
  readonly fsyncDuration: Histogram;
  readonly recordsIn: Counter<'topic'>;
  readonly adminRequests: Counter<'route' | 'status'>;
  readonly retentionDeletedSegments: Counter<'topic'>;
  readonly readOnly: Gauge;
  readonly kafkaConnections: Gauge;
  readonly buildInfo: Gauge<'version' | 'node'>;
  readonly kafkaProtocolErrors: Counter;

  constructor(version = '0.0.0') {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'lance_' });
    this.kafkaRequests = new Counter({ name: 'lance_kafka_requests_total', help: 'Kafka requests handled, by API', labelNames: ['api'], registers });
    this.kafkaRequestDuration = new Histogram({
      name: 'lance_kafka_request_duration_seconds', help: 'Kafka request handling time, by API', labelNames: ['api'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.kafkaBytesIn = new Counter({ name: 'lance_kafka_bytes_in_total', help: 'Kafka request bytes received', registers });
    this.kafkaBytesOut = new Counter({ name: 'lance_kafka_bytes_out_total', help: 'Kafka response bytes sent', registers });
    this.logEndOffset = new Gauge({ name: 'lance_log_end_offset', help: 'Next offset to be written, per partition', labelNames: ['topic', 'partition'], registers });
    this.logStartOffset = new Gauge({ name: 'lance_log_start_offset', help: 'First offset still stored, per partition', labelNames: ['topic', 'partition'], registers });
    this.highWatermark = new Gauge({ name: 'lance_high_watermark', help: 'Committed (durable) end offset, per partition', labelNames: ['topic', 'partition'], registers });
    this.fsyncDuration = new Histogram({
      name: 'lance_fsync_duration_seconds', help: 'Time from an append until the group-commit fdatasync covering it completed (per produce request)', registers,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    });
    this.recordsIn = new Counter({ name: 'lance_records_in_total', help: 'Records appended, by topic', labelNames: ['topic'], registers });
    this.adminRequests = new Counter({ name: 'lance_admin_requests_total', help: 'Admin API requests, by route and HTTP status', labelNames: ['route', 'status'], registers });
    this.retentionDeletedSegments = new Counter({ name: 'lance_retention_deleted_segments_total', help: 'Segments deleted by retention', labelNames: ['topic'], registers });
    this.readOnly = new Gauge({ name: 'lance_read_only', help: '1 when the broker is in read-only mode', registers });
    this.buildInfo = new Gauge({ name: 'lance_build_info', help: 'Always 1; labels say which build runs', labelNames: ['version', 'node'], registers });
    this.kafkaConnections = new Gauge({ name: 'lance_kafka_connections', help: 'Open Kafka client connections', registers });
    this.kafkaProtocolErrors = new Counter({ name: 'lance_kafka_protocol_errors_total', help: 'Kafka connections closed because of malformed input', registers });
    this.buildInfo.set({ version, node: process.version }, 1);
  }

  /** the Kafka server's onRequest hook */
  onKafkaRequest(apiKey: number, durationMs: number, bytesIn: number, bytesOut: number): void {
    const api = kafkaApiName(apiKey);
    this.kafkaRequests.inc({ api });
    this.kafkaRequestDuration.observe({ api }, durationMs / 1000);
    this.kafkaBytesIn.inc(bytesIn);
    this.kafkaBytesOut.inc(bytesOut);
  }

  /** hooks for startKafkaServer({ metrics }) */
  kafkaHooks(): {
    onRequest(apiKey: number, apiVersion: number, durationMs: number, bytesIn: number, bytesOut: number): void;
    onProtocolError(reason: string): void;
    onConnectionOpened(): void;
    onConnectionClosed(): void;
  } {
    return {
      onRequest: (apiKey, _v, ms, bytesIn, bytesOut) => this.onKafkaRequest(apiKey, ms, bytesIn, bytesOut),
      onProtocolError: () => this.kafkaProtocolErrors.inc(),
      onConnectionOpened: () => this.kafkaConnections.inc(),
      onConnectionClosed: () => this.kafkaConnections.dec(),
    };
  }

  removePartitionSeries(topic: string, partition: number): void {
    const labels = { topic, partition: String(partition) };
    this.logEndOffset.remove(labels);
    this.logStartOffset.remove(labels);
    this.highWatermark.remove(labels);
  }
}
