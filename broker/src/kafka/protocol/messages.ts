import { arr, arrayOf, f, message, type MessageSpec } from './schema.ts';
import { GROUP_SPECS } from './groups.ts';

/**
 * Request/response schemas of the APIs Lance speaks, field-for-field after the Kafka protocol's message specs
 * (versions, nullable versions, tagged fields). Field names are camelCase; the TS interfaces below describe the
 * decoded/encoded objects the handlers use.
 */

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  CreatePartitions: 37,
  DescribeCluster: 60,
} as const;

// ------------------------------------------------------------------ ApiVersions (18)

export interface ApiVersionsRequest {
  clientSoftwareName: string;
  clientSoftwareVersion: string;
}
export interface ApiVersionsResponse {
  errorCode: number;
  apiKeys: Array<{ apiKey: number; minVersion: number; maxVersion: number }>;
  throttleTimeMs: number;
}
export const ApiVersionsRequestSpec = message('ApiVersionsRequest', 18, '0-3', '3+', [
  f('clientSoftwareName', 'string', '3+'),
  f('clientSoftwareVersion', 'string', '3+'),
]);
export const ApiVersionsResponseSpec = message('ApiVersionsResponse', 18, '0-3', '3+', [
  f('errorCode', 'int16', '0+'),
  arr('apiKeys', '0+', [f('apiKey', 'int16', '0+'), f('minVersion', 'int16', '0+'), f('maxVersion', 'int16', '0+')]),
  f('throttleTimeMs', 'int32', '1+'),
]);

// ------------------------------------------------------------------ Metadata (3)

export interface MetadataRequest {
  topics: Array<{ topicId: string; name: string | null }> | null;
  allowAutoTopicCreation: boolean;
  includeClusterAuthorizedOperations: boolean;
  includeTopicAuthorizedOperations: boolean;
}
export interface MetadataResponsePartition {
  errorCode: number;
  partitionIndex: number;
  leaderId: number;
  leaderEpoch: number;
  replicaNodes: number[];
  isrNodes: number[];
  offlineReplicas: number[];
}
export interface MetadataResponseTopic {
  errorCode: number;
  name: string | null;
  topicId: string;
  isInternal: boolean;
  partitions: MetadataResponsePartition[];
  topicAuthorizedOperations: number;
}
export interface MetadataResponse {
  throttleTimeMs: number;
  brokers: Array<{ nodeId: number; host: string; port: number; rack: string | null }>;
  clusterId: string | null;
  controllerId: number;
  topics: MetadataResponseTopic[];
  clusterAuthorizedOperations: number;
}
export const MetadataRequestSpec = message('MetadataRequest', 3, '0-12', '9+', [
  arr('topics', '0+', [f('topicId', 'uuid', '10+'), f('name', 'string', '0+', { nullable: '10+' })], { nullable: '1+' }),
  f('allowAutoTopicCreation', 'bool', '4+', { default: true }),
  f('includeClusterAuthorizedOperations', 'bool', '8-10'),
  f('includeTopicAuthorizedOperations', 'bool', '8+'),
]);
export const MetadataResponseSpec = message('MetadataResponse', 3, '0-12', '9+', [
  f('throttleTimeMs', 'int32', '3+'),
  arr('brokers', '0+', [f('nodeId', 'int32', '0+'), f('host', 'string', '0+'), f('port', 'int32', '0+'), f('rack', 'string', '1+', { nullable: '1+' })]),
  f('clusterId', 'string', '2+', { nullable: '2+' }),
  f('controllerId', 'int32', '1+', { default: -1 }),
  arr('topics', '0+', [
    f('errorCode', 'int16', '0+'),
    f('name', 'string', '0+', { nullable: '12+' }),
    f('topicId', 'uuid', '10+'),
    f('isInternal', 'bool', '1+'),
    arr('partitions', '0+', [
      f('errorCode', 'int16', '0+'),
      f('partitionIndex', 'int32', '0+'),
      f('leaderId', 'int32', '0+'),
      f('leaderEpoch', 'int32', '7+', { default: -1 }),
      f('replicaNodes', arrayOf('int32'), '0+'),
      f('isrNodes', arrayOf('int32'), '0+'),
      f('offlineReplicas', arrayOf('int32'), '5+'),
    ]),
    f('topicAuthorizedOperations', 'int32', '8+', { default: -2147483648 }),
  ]),
  f('clusterAuthorizedOperations', 'int32', '8-10', { default: -2147483648 }),
]);

// ------------------------------------------------------------------ Produce (0)

export interface ProduceRequest {
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topicData: Array<{ name: string; partitionData: Array<{ index: number; records: Buffer | null }> }>;
}
export interface ProducePartitionResponse {
  index: number;
  errorCode: number;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  recordErrors: Array<{ batchIndex: number; batchIndexErrorMessage: string | null }>;
  errorMessage: string | null;
}
export interface ProduceResponse {
  responses: Array<{ name: string; partitionResponses: ProducePartitionResponse[] }>;
  throttleTimeMs: number;
}
export const ProduceRequestSpec = message('ProduceRequest', 0, '3-9', '9+', [
  f('transactionalId', 'string', '3+', { nullable: '3+' }),
  f('acks', 'int16', '0+'),
  f('timeoutMs', 'int32', '0+'),
  arr('topicData', '0+', [f('name', 'string', '0+'), arr('partitionData', '0+', [f('index', 'int32', '0+'), f('records', 'records', '0+', { nullable: '0+' })])]),
]);
export const ProduceResponseSpec = message('ProduceResponse', 0, '3-9', '9+', [
  arr('responses', '0+', [
    f('name', 'string', '0+'),
    arr('partitionResponses', '0+', [
      f('index', 'int32', '0+'),
      f('errorCode', 'int16', '0+'),
      f('baseOffset', 'int64', '0+'),
      f('logAppendTimeMs', 'int64', '2+', { default: -1 }),
      f('logStartOffset', 'int64', '5+', { default: -1 }),
      arr('recordErrors', '8+', [f('batchIndex', 'int32', '8+'), f('batchIndexErrorMessage', 'string', '8+', { nullable: '8+' })]),
      f('errorMessage', 'string', '8+', { nullable: '8+' }),
    ]),
  ]),
  f('throttleTimeMs', 'int32', '1+'),
]);

// ------------------------------------------------------------------ Fetch (1)

export interface FetchRequestPartition {
  partition: number;
  currentLeaderEpoch: number;
  fetchOffset: number;
  lastFetchedEpoch: number;
  logStartOffset: number;
  partitionMaxBytes: number;
}
export interface FetchRequest {
  replicaId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: number;
  sessionId: number;
  sessionEpoch: number;
  topics: Array<{ topic: string; topicId: string; partitions: FetchRequestPartition[] }>;
  forgottenTopicsData: Array<{ topic: string; topicId: string; partitions: number[] }>;
  rackId: string;
}
export interface FetchResponsePartition {
  partitionIndex: number;
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  abortedTransactions: Array<{ producerId: number; firstOffset: number }> | null;
  preferredReadReplica: number;
  records: Buffer | null;
}
export interface FetchResponse {
  throttleTimeMs: number;
  errorCode: number;
  sessionId: number;
  responses: Array<{ topic: string; topicId: string; partitions: FetchResponsePartition[] }>;
}
export const FetchRequestSpec = message('FetchRequest', 1, '4-13', '12+', [
  f('clusterId', 'string', '12+', { nullable: '12+', tag: 0, default: null }),
  f('replicaId', 'int32', '0+'),
  f('maxWaitMs', 'int32', '0+'),
  f('minBytes', 'int32', '0+'),
  f('maxBytes', 'int32', '3+', { default: 0x7fffffff }),
  f('isolationLevel', 'int8', '4+'),
  f('sessionId', 'int32', '7+'),
  f('sessionEpoch', 'int32', '7+', { default: -1 }),
  arr('topics', '0+', [
    f('topic', 'string', '0-12'),
    f('topicId', 'uuid', '13+'),
    arr('partitions', '0+', [
      f('partition', 'int32', '0+'),
      f('currentLeaderEpoch', 'int32', '9+', { default: -1 }),
      f('fetchOffset', 'int64', '0+'),
      f('lastFetchedEpoch', 'int32', '12+', { default: -1 }),
      f('logStartOffset', 'int64', '5+', { default: -1 }),
      f('partitionMaxBytes', 'int32', '0+'),
    ]),
  ]),
  arr('forgottenTopicsData', '7+', [f('topic', 'string', '7-12'), f('topicId', 'uuid', '13+'), f('partitions', arrayOf('int32'), '7+')]),
  f('rackId', 'string', '11+'),
]);
export const FetchResponseSpec = message('FetchResponse', 1, '4-13', '12+', [
  f('throttleTimeMs', 'int32', '1+'),
  f('errorCode', 'int16', '7+'),
  f('sessionId', 'int32', '7+'),
  arr('responses', '0+', [
    f('topic', 'string', '0-12'),
    f('topicId', 'uuid', '13+'),
    arr('partitions', '0+', [
      f('partitionIndex', 'int32', '0+'),
      f('errorCode', 'int16', '0+'),
      f('highWatermark', 'int64', '0+'),
      f('lastStableOffset', 'int64', '4+', { default: -1 }),
      f('logStartOffset', 'int64', '5+', { default: -1 }),
      arr('abortedTransactions', '4+', [f('producerId', 'int64', '4+'), f('firstOffset', 'int64', '4+')], { nullable: '4+' }),
      f('preferredReadReplica', 'int32', '11+', { default: -1 }),
      f('records', 'records', '0+', { nullable: '0+' }),
    ]),
  ]),
]);

// ------------------------------------------------------------------ ListOffsets (2)

export interface ListOffsetsRequest {
  replicaId: number;
  isolationLevel: number;
  topics: Array<{ name: string; partitions: Array<{ partitionIndex: number; currentLeaderEpoch: number; timestamp: number }> }>;
}
export interface ListOffsetsResponse {
  throttleTimeMs: number;
  topics: Array<{
    name: string;
    partitions: Array<{ partitionIndex: number; errorCode: number; timestamp: number; offset: number; leaderEpoch: number }>;
  }>;
}
export const ListOffsetsRequestSpec = message('ListOffsetsRequest', 2, '1-7', '6+', [
  f('replicaId', 'int32', '0+'),
  f('isolationLevel', 'int8', '2+'),
  arr('topics', '0+', [
    f('name', 'string', '0+'),
    arr('partitions', '0+', [f('partitionIndex', 'int32', '0+'), f('currentLeaderEpoch', 'int32', '4+', { default: -1 }), f('timestamp', 'int64', '0+')]),
  ]),
]);
export const ListOffsetsResponseSpec = message('ListOffsetsResponse', 2, '1-7', '6+', [
  f('throttleTimeMs', 'int32', '2+'),
  arr('topics', '0+', [
    f('name', 'string', '0+'),
    arr('partitions', '0+', [
      f('partitionIndex', 'int32', '0+'),
      f('errorCode', 'int16', '0+'),
      f('timestamp', 'int64', '1+', { default: -1 }),
      f('offset', 'int64', '1+', { default: -1 }),
      f('leaderEpoch', 'int32', '4+', { default: -1 }),
    ]),
  ]),
]);

// ------------------------------------------------------------------ CreateTopics (19)

export interface CreateTopicsRequest {
  topics: Array<{
    name: string;
    numPartitions: number;
    replicationFactor: number;
    assignments: Array<{ partitionIndex: number; brokerIds: number[] }>;
    configs: Array<{ name: string; value: string | null }>;
  }>;
  timeoutMs: number;
  validateOnly: boolean;
}
export interface CreateTopicsResponseTopic {
  name: string;
  topicId: string;
  errorCode: number;
  errorMessage: string | null;
  numPartitions: number;
  replicationFactor: number;
  configs: Array<{ name: string; value: string | null; readOnly: boolean; configSource: number; isSensitive: boolean }> | null;
}
export interface CreateTopicsResponse {
  throttleTimeMs: number;
  topics: CreateTopicsResponseTopic[];
}
export const CreateTopicsRequestSpec = message('CreateTopicsRequest', 19, '0-7', '5+', [
  arr('topics', '0+', [
    f('name', 'string', '0+'),
    f('numPartitions', 'int32', '0+'),
    f('replicationFactor', 'int16', '0+'),
    arr('assignments', '0+', [f('partitionIndex', 'int32', '0+'), f('brokerIds', arrayOf('int32'), '0+')]),
    arr('configs', '0+', [f('name', 'string', '0+'), f('value', 'string', '0+', { nullable: '0+' })]),
  ]),
  f('timeoutMs', 'int32', '0+', { default: 60000 }),
  f('validateOnly', 'bool', '1+'),
]);
export const CreateTopicsResponseSpec = message('CreateTopicsResponse', 19, '0-7', '5+', [
  f('throttleTimeMs', 'int32', '2+'),
  arr('topics', '0+', [
    f('name', 'string', '0+'),
    f('topicId', 'uuid', '7+'),
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '1+', { nullable: '0+' }),
    f('topicConfigErrorCode', 'int16', '5+', { tag: 0, default: 0 }),
    f('numPartitions', 'int32', '5+', { default: -1 }),
    f('replicationFactor', 'int16', '5+', { default: -1 }),
    arr(
      'configs',
      '5+',
      [
        f('name', 'string', '5+'),
        f('value', 'string', '5+', { nullable: '5+' }),
        f('readOnly', 'bool', '5+'),
        f('configSource', 'int8', '5+', { default: -1 }),
        f('isSensitive', 'bool', '5+'),
      ],
      { nullable: '5+' },
    ),
  ]),
]);

// ------------------------------------------------------------------ DeleteTopics (20)

export interface DeleteTopicsRequest {
  topics: Array<{ name: string | null; topicId: string }>;
  topicNames: string[];
  timeoutMs: number;
}
export interface DeleteTopicsResponse {
  throttleTimeMs: number;
  responses: Array<{ name: string | null; topicId: string; errorCode: number; errorMessage: string | null }>;
}
export const DeleteTopicsRequestSpec = message('DeleteTopicsRequest', 20, '0-6', '4+', [
  arr('topics', '6+', [f('name', 'string', '6+', { nullable: '6+' }), f('topicId', 'uuid', '6+')]),
  f('topicNames', arrayOf('string'), '0-5'),
  f('timeoutMs', 'int32', '0+'),
]);
export const DeleteTopicsResponseSpec = message('DeleteTopicsResponse', 20, '0-6', '4+', [
  f('throttleTimeMs', 'int32', '1+'),
  arr('responses', '0+', [
    f('name', 'string', '0+', { nullable: '6+' }),
    f('topicId', 'uuid', '6+'),
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '5+', { nullable: '5+' }),
  ]),
]);

// ------------------------------------------------------------------ CreatePartitions (37)

export interface CreatePartitionsRequest {
  topics: Array<{ name: string; count: number; assignments: Array<{ brokerIds: number[] }> | null }>;
  timeoutMs: number;
  validateOnly: boolean;
}
export interface CreatePartitionsResponse {
  throttleTimeMs: number;
  results: Array<{ name: string; errorCode: number; errorMessage: string | null }>;
}
export const CreatePartitionsRequestSpec = message('CreatePartitionsRequest', 37, '0-3', '2+', [
  arr('topics', '0+', [f('name', 'string', '0+'), f('count', 'int32', '0+'), arr('assignments', '0+', [f('brokerIds', arrayOf('int32'), '0+')], { nullable: '0+' })]),
  f('timeoutMs', 'int32', '0+'),
  f('validateOnly', 'bool', '0+'),
]);
export const CreatePartitionsResponseSpec = message('CreatePartitionsResponse', 37, '0-3', '2+', [
  f('throttleTimeMs', 'int32', '0+'),
  arr('results', '0+', [f('name', 'string', '0+'), f('errorCode', 'int16', '0+'), f('errorMessage', 'string', '0+', { nullable: '0+' })]),
]);

// ------------------------------------------------------------------ DescribeConfigs (32)

export const ResourceType = { TOPIC: 2, BROKER: 4 } as const;

export interface DescribeConfigsRequest {
  resources: Array<{ resourceType: number; resourceName: string; configurationKeys: string[] | null }>;
  includeSynonyms: boolean;
  includeDocumentation: boolean;
}
export interface DescribeConfigsResponseConfig {
  name: string;
  value: string | null;
  readOnly: boolean;
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
  synonyms: Array<{ name: string; value: string | null; source: number }>;
  configType: number;
  documentation: string | null;
}
export interface DescribeConfigsResponse {
  throttleTimeMs: number;
  results: Array<{
    errorCode: number;
    errorMessage: string | null;
    resourceType: number;
    resourceName: string;
    configs: DescribeConfigsResponseConfig[];
  }>;
}
export const DescribeConfigsRequestSpec = message('DescribeConfigsRequest', 32, '0-4', '4+', [
  arr('resources', '0+', [f('resourceType', 'int8', '0+'), f('resourceName', 'string', '0+'), f('configurationKeys', arrayOf('string'), '0+', { nullable: '0+' })]),
  f('includeSynonyms', 'bool', '1+'),
  f('includeDocumentation', 'bool', '3+'),
]);
export const DescribeConfigsResponseSpec = message('DescribeConfigsResponse', 32, '0-4', '4+', [
  f('throttleTimeMs', 'int32', '0+'),
  arr('results', '0+', [
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+' }),
    f('resourceType', 'int8', '0+'),
    f('resourceName', 'string', '0+'),
    arr('configs', '0+', [
      f('name', 'string', '0+'),
      f('value', 'string', '0+', { nullable: '0+' }),
      f('readOnly', 'bool', '0+'),
      f('isDefault', 'bool', '0'),
      f('configSource', 'int8', '1+', { default: -1 }),
      f('isSensitive', 'bool', '0+'),
      arr('synonyms', '1+', [f('name', 'string', '1+'), f('value', 'string', '1+', { nullable: '0+' }), f('source', 'int8', '1+')]),
      f('configType', 'int8', '3+'),
      f('documentation', 'string', '3+', { nullable: '0+' }),
    ]),
  ]),
]);

// ------------------------------------------------------------------ AlterConfigs (33)

export interface AlterConfigsRequest {
  resources: Array<{ resourceType: number; resourceName: string; configs: Array<{ name: string; value: string | null }> }>;
  validateOnly: boolean;
}
export interface AlterConfigsResponse {
  throttleTimeMs: number;
  responses: Array<{ errorCode: number; errorMessage: string | null; resourceType: number; resourceName: string }>;
}
export const AlterConfigsRequestSpec = message('AlterConfigsRequest', 33, '0-2', '2+', [
  arr('resources', '0+', [
    f('resourceType', 'int8', '0+'),
    f('resourceName', 'string', '0+'),
    arr('configs', '0+', [f('name', 'string', '0+'), f('value', 'string', '0+', { nullable: '0+' })]),
  ]),
  f('validateOnly', 'bool', '0+'),
]);
export const AlterConfigsResponseSpec = message('AlterConfigsResponse', 33, '0-2', '2+', [
  f('throttleTimeMs', 'int32', '0+'),
  arr('responses', '0+', [
    f('errorCode', 'int16', '0+'),
    f('errorMessage', 'string', '0+', { nullable: '0+' }),
    f('resourceType', 'int8', '0+'),
    f('resourceName', 'string', '0+'),
  ]),
]);

// ------------------------------------------------------------------ DescribeCluster (60)

export interface DescribeClusterRequest {
  includeClusterAuthorizedOperations: boolean;
  endpointType: number;
}
export interface DescribeClusterResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string | null;
  endpointType: number;
  clusterId: string;
  controllerId: number;
  brokers: Array<{ brokerId: number; host: string; port: number; rack: string | null }>;
  clusterAuthorizedOperations: number;
}
export const DescribeClusterRequestSpec = message('DescribeClusterRequest', 60, '0-1', '0+', [
  f('includeClusterAuthorizedOperations', 'bool', '0+'),
  f('endpointType', 'int8', '1+', { default: 1 }),
]);
export const DescribeClusterResponseSpec = message('DescribeClusterResponse', 60, '0-1', '0+', [
  f('throttleTimeMs', 'int32', '0+'),
  f('errorCode', 'int16', '0+'),
  f('errorMessage', 'string', '0+', { nullable: '0+' }),
  f('endpointType', 'int8', '1+', { default: 1 }),
  f('clusterId', 'string', '0+'),
  f('controllerId', 'int32', '0+', { default: -1 }),
  arr('brokers', '0+', [f('brokerId', 'int32', '0+'), f('host', 'string', '0+'), f('port', 'int32', '0+'), f('rack', 'string', '0+', { nullable: '0+' })]),
  f('clusterAuthorizedOperations', 'int32', '0+', { default: -2147483648 }),
]);

// ------------------------------------------------------------------ FindCoordinator (10): answered with an error

export interface FindCoordinatorRequest {
  key: string;
  keyType: number;
  coordinatorKeys: string[];
}
export interface FindCoordinatorResponse {
  throttleTimeMs: number;
  errorCode: number;
  errorMessage: string | null;
  nodeId: number;
  host: string;
  port: number;
  coordinators: Array<{ key: string; nodeId: number; host: string; port: number; errorCode: number; errorMessage: string | null }>;
}
export const FindCoordinatorRequestSpec = message('FindCoordinatorRequest', 10, '0-4', '3+', [
  f('key', 'string', '0-3'),
  f('keyType', 'int8', '1+'),
  f('coordinatorKeys', arrayOf('string'), '4+'),
]);
export const FindCoordinatorResponseSpec = message('FindCoordinatorResponse', 10, '0-4', '3+', [
  f('throttleTimeMs', 'int32', '1+'),
  f('errorCode', 'int16', '0-3'),
  f('errorMessage', 'string', '1-3', { nullable: '1-3' }),
  f('nodeId', 'int32', '0-3', { default: -1 }),
  f('host', 'string', '0-3'),
  f('port', 'int32', '0-3', { default: -1 }),
  arr('coordinators', '4+', [
    f('key', 'string', '4+'),
    f('nodeId', 'int32', '4+'),
    f('host', 'string', '4+'),
    f('port', 'int32', '4+'),
    f('errorCode', 'int16', '4+'),
    f('errorMessage', 'string', '4+', { nullable: '4+' }),
  ]),
]);

/** Every (request, response) pair by API key. */
export const SPECS: ReadonlyMap<number, { request: MessageSpec; response: MessageSpec }> = new Map([
  [ApiKey.Produce, { request: ProduceRequestSpec, response: ProduceResponseSpec }],
  [ApiKey.Fetch, { request: FetchRequestSpec, response: FetchResponseSpec }],
  [ApiKey.ListOffsets, { request: ListOffsetsRequestSpec, response: ListOffsetsResponseSpec }],
  [ApiKey.Metadata, { request: MetadataRequestSpec, response: MetadataResponseSpec }],
  [ApiKey.FindCoordinator, { request: FindCoordinatorRequestSpec, response: FindCoordinatorResponseSpec }],
  [ApiKey.ApiVersions, { request: ApiVersionsRequestSpec, response: ApiVersionsResponseSpec }],
  [ApiKey.CreateTopics, { request: CreateTopicsRequestSpec, response: CreateTopicsResponseSpec }],
  [ApiKey.DeleteTopics, { request: DeleteTopicsRequestSpec, response: DeleteTopicsResponseSpec }],
  [ApiKey.DescribeConfigs, { request: DescribeConfigsRequestSpec, response: DescribeConfigsResponseSpec }],
  [ApiKey.AlterConfigs, { request: AlterConfigsRequestSpec, response: AlterConfigsResponseSpec }],
  [ApiKey.CreatePartitions, { request: CreatePartitionsRequestSpec, response: CreatePartitionsResponseSpec }],
  [ApiKey.DescribeCluster, { request: DescribeClusterRequestSpec, response: DescribeClusterResponseSpec }],
  ...GROUP_SPECS,
]);
