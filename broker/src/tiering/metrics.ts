/**
 * Tiering and object-store metrics, registered in the server's prom-client Registry (not the global one, so
 * several brokers can share a process in tests).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ObjectStoreHooks } from './object-store.ts';

export class TieringMetrics {
  readonly segmentsUploaded: Counter;
  readonly bytesUploaded: Counter;
  readonly uploadErrors: Counter;
  readonly lastSuccess: Gauge;
  readonly remoteFetchBytes: Counter;
  readonly storeRequests: Counter<'op' | 'outcome'>;
  readonly storeRetries: Counter<'op' | 'code'>;
  readonly storeBytes: Counter<'direction'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.segmentsUploaded = new Counter({ name: 'lance_tiering_segments_uploaded_total', help: 'Sealed segments uploaded and verified (size + CRC32C) in the object store', registers });
    this.bytesUploaded = new Counter({ name: 'lance_tiering_bytes_uploaded_total', help: 'Segment bytes uploaded and verified', registers });
    this.uploadErrors = new Counter({ name: 'lance_tiering_upload_errors_total', help: 'Failed partition upload passes (retried with backoff)', registers });
    this.lastSuccess = new Gauge({ name: 'lance_tiering_last_success_timestamp_seconds', help: 'Unix time of the last manifest written after a verified upload', registers });
    this.remoteFetchBytes = new Counter({ name: 'lance_tiering_remote_fetch_bytes_total', help: 'Segment bytes read from the object store to serve fetches below the local log start', registers });
    this.storeRequests = new Counter({ name: 'lance_object_store_requests_total', help: 'Object store request attempts, by operation and outcome (ok or error code)', labelNames: ['op', 'outcome'], registers });
    this.storeRetries = new Counter({ name: 'lance_object_store_retries_total', help: 'Object store attempts retried, by operation and error code', labelNames: ['op', 'code'], registers });
    this.storeBytes = new Counter({ name: 'lance_object_store_bytes_total', help: 'Object store body bytes, by direction (in = downloaded, out = uploaded)', labelNames: ['direction'], registers });
  }

  /** hooks for createObjectStore(config, {hooks}) */
  storeHooks(): ObjectStoreHooks {
    return {
      onRequest: (op, outcome) => this.storeRequests.inc({ op, outcome }),
      onRetry: (op, code) => this.storeRetries.inc({ op, code }),
      onBytes: (direction, n) => this.storeBytes.inc({ direction }, n),
    };
  }
}
