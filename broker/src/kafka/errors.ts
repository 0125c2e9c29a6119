import { isLanceError, type LanceErrorCode } from '../common/errors.ts';
import type { KafkaFieldHint } from './backend.ts';

/** The Kafka protocol error codes Lance sends (subset of the protocol's table). */
export const KafkaError = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_FETCH_SIZE: 4,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  COORDINATOR_NOT_AVAILABLE: 15,
  INVALID_TOPIC_EXCEPTION: 17,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  INVALID_REQUIRED_ACKS: 21,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  NOT_CONTROLLER: 41,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  POLICY_VIOLATION: 44,
  KAFKA_STORAGE_ERROR: 56,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_TOPIC_ID: 100,
  INCONSISTENT_TOPIC_ID: 103,
  INVALID_RECORD: 87,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
} as const;
export type KafkaErrorCode = (typeof KafkaError)[keyof typeof KafkaError];

/**
 * THE table: LanceError code → Kafka error code. Read-only mode answers POLICY_VIOLATION (non-retriable in
 * kafkajs and librdkafka, so producers fail fast with the message "broker is read-only" instead of retrying).
 */
const BY_LANCE_CODE: Record<LanceErrorCode, KafkaErrorCode> = {
  USAGE: KafkaError.INVALID_REQUEST,
  IO: KafkaError.KAFKA_STORAGE_ERROR,
  NOT_FOUND: KafkaError.UNKNOWN_TOPIC_OR_PARTITION,
  CORRUPT: KafkaError.CORRUPT_MESSAGE,
  INVALID_CONFIG: KafkaError.INVALID_CONFIG,
  INVALID_ARGUMENT: KafkaError.INVALID_REQUEST,
  OFFSET_OUT_OF_RANGE: KafkaError.OFFSET_OUT_OF_RANGE,
  NOT_LEADER: KafkaError.NOT_LEADER_OR_FOLLOWER,
  READ_ONLY: KafkaError.POLICY_VIOLATION,
  FENCED: KafkaError.FENCED_LEADER_EPOCH,
  TIMEOUT: KafkaError.REQUEST_TIMED_OUT,
  CONFLICT: KafkaError.TOPIC_ALREADY_EXISTS,
  UNSUPPORTED: KafkaError.INVALID_REQUEST,
  INTERNAL: KafkaError.UNKNOWN_SERVER_ERROR,
};

/** Refinement of INVALID_ARGUMENT by `details.field` (see KafkaFieldHint in backend.ts). */
const BY_FIELD: Record<KafkaFieldHint, KafkaErrorCode> = {
  topic: KafkaError.INVALID_TOPIC_EXCEPTION,
  numPartitions: KafkaError.INVALID_PARTITIONS,
  replicationFactor: KafkaError.INVALID_REPLICATION_FACTOR,
  assignments: KafkaError.INVALID_REPLICA_ASSIGNMENT,
  config: KafkaError.INVALID_CONFIG,
  timestamp: KafkaError.INVALID_TIMESTAMP,
  records: KafkaError.INVALID_RECORD,
  sequence: KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
  producerEpoch: KafkaError.INVALID_PRODUCER_EPOCH,
};

export interface MappedError {
  code: KafkaErrorCode;
  message: string;
}

/** Maps anything a backend threw to a Kafka error code + message (the message goes into error_message fields). */
export function toKafkaError(err: unknown): MappedError {
  if (isLanceError(err)) {
    let code = BY_LANCE_CODE[err.code];
    const field = err.details?.['field'];
    if (err.code === 'INVALID_ARGUMENT' && typeof field === 'string' && field in BY_FIELD) {
      code = BY_FIELD[field as KafkaFieldHint];
    }
    return { code, message: `${err.code}: ${err.message}` };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: KafkaError.UNKNOWN_SERVER_ERROR, message: `INTERNAL: ${message}` };
}
