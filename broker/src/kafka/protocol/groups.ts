import { arr, arrayOf, f, message, type MessageSpec } from './schema.ts';

/**
 * Schemas of the consumer-group APIs and InitProducerId, field-for-field after the Kafka protocol's message specs
 * (versions, nullable versions, tagged fields). The group coordinator (broker/src/groups/) answers them.
 */

export const GroupApiKey = {
  OffsetCommit: 8,
  OffsetFetch: 9,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  InitProducerId: 22,
  DeleteGroups: 42,
  OffsetDelete: 47,
} as const;

// ------------------------------------------------------------------ JoinGroup (11)
export interface JoinGroupRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string;
  protocols: Array<{ name: string; metadata: Buffer }>;
  reason: string | null;
}
export interface JoinGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  skipAssignment: boolean;
  memberId: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; metadata: Buffer }>;
}
export const JoinGroupRequestSpec = message('JoinGroupRequest', 11, '0-9', '6+', [
  f('groupId', 'string', '0+'),
  f('sessionTimeoutMs', 'int32', '0+'),
  f('rebalanceTimeoutMs', 'int32', '1+', { default: -1 }),
  f('memberId', 'string', '0+'),
  f('groupInstanceId', 'string', '5+', { nullable: '5+', default: null }),
  f('protocolType', 'string', '0+'),
  arr('protocols', '0+', [f('name', 'string', '0+'), f('metadata', 'bytes', '0+')]),
  f('reason', 'string', '8+', { nullable: '8+', default: null }),
]);
export const JoinGroupResponseSpec = message('JoinGroupResponse', 11, '0-9', '6+', [
  f('throttleTimeMs', 'int32', '2+'),
  f('errorCode', 'int16', '0+'),
  f('generationId', 'int32', '0+', { default: -1 }),
  f('protocolType', 'string', '7+', { nullable: '7+', default: null }),
  f('protocolName', 'string', '0+', { nullable: '7+' }),
  f('leader', 'string', '0+'),
  f('skipAssignment', 'bool', '9+', { default: false }),
  f('memberId', 'string', '0+'),
  arr('members', '0+', [f('memberId', 'string', '0+'), f('groupInstanceId', 'string', '5+', { nullable: '5+', default: null }), f('metadata', 'bytes', '0+')]),
]);

// ------------------------------------------------------------------ SyncGroup (14)
export interface SyncGroupRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string | null;
  protocolName: string | null;
  assignments: Array<{ memberId: string; assignment: Buffer }>;
}
export interface SyncGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}
export const SyncGroupRequestSpec = message('SyncGroupRequest', 14, '0-5', '4+', [
  f('groupId', 'string', '0+'),
  f('generationId', 'int32', '0+'),
  f('memberId', 'string', '0+'),
  f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
  f('protocolType', 'string', '5+', { nullable: '5+', default: null }),
  f('protocolName', 'string', '5+', { nullable: '5+', default: null }),
  arr('assignments', '0+', [f('memberId', 'string', '0+'), f('assignment', 'bytes', '0+')]),
]);
export const SyncGroupResponseSpec = message('SyncGroupResponse', 14, '0-5', '4+', [
  f('throttleTimeMs', 'int32', '1+'),
  f('errorCode', 'int16', '0+'),
  f('protocolType', 'string', '5+', { nullable: '5+', default: null }),
  f('protocolName', 'string', '5+', { nullable: '5+', default: null }),
  f('assignment', 'bytes', '0+'),
]);

// ------------------------------------------------------------------ Heartbeat (12)
export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}
export interface HeartbeatResponse {
  throttleTimeMs: number;
  errorCode: number;
}
export const HeartbeatRequestSpec = message('HeartbeatRequest', 12, '0-4', '4+', [
  f('groupId', 'string', '0+'),
  f('generationId', 'int32', '0+'),
  f('memberId', 'string', '0+'),
  f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
]);
export const HeartbeatResponseSpec = message('HeartbeatResponse', 12, '0-4', '4+', [f('throttleTimeMs', 'int32', '1+'), f('errorCode', 'int16', '0+')]);

// ------------------------------------------------------------------ LeaveGroup (13)
export interface LeaveGroupRequest {
  groupId: string;
  memberId: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; reason: string | null }>;
}
export interface LeaveGroupResponse {
  throttleTimeMs: number;
  errorCode: number;
  members: Array<{ memberId: string; groupInstanceId: string | null; errorCode: number }>;
}
export const LeaveGroupRequestSpec = message('LeaveGroupRequest', 13, '0-5', '4+', [
  f('groupId', 'string', '0+'),
  f('memberId', 'string', '0-2'),
  arr('members', '3+', [
    f('memberId', 'string', '3+'),
    f('groupInstanceId', 'string', '3+', { nullable: '3+', default: null }),
    f('reason', 'string', '5+', { nullable: '5+', default: null }),
  ]),
]);
export const LeaveGroupResponseSpec = message('LeaveGroupResponse', 13, '0-5', '4+', [
  f('throttleTimeMs', 'int32', '1+'),
  f('errorCode', 'int16', '0+'),
  arr('members', '3+', [f('memberId', 'string', '3+'), f('groupInstanceId', 'string', '3+', { nullable: '3+' }), f('errorCode', 'int16', '3+')]),
]);

// ------------------------------------------------------------------ OffsetCommit (8)
export interface OffsetCommitRequest {
  groupId: string;
  generationIdOrMemberEpoch: number;
  memberId: string;
  groupInstanceId: string | null;
  retentionTimeMs: number;
  topics: Array<{
    name: string;
    partitions: Array<{ partitionIndex: number; committedOffset: number; committedLeaderEpoch: number; commitTimestamp: number; committedMetadata: string | null }>;
  }>;
}
export interface OffsetCommitResponse {
  throttleTimeMs: number;
  topics: Array<{ name: string; partitions: Array<{ partitionIndex: number; errorCode: number }> }>;
}
export const OffsetCommitRequestSpec = message('OffsetCommitRequest', 8, '0-8', '8+', [
  f('groupId', 'string', '0+'),
  f('generationIdOrMemberEpoch', 'int32', '1+', { default: -1 }),
  f('memberId', 'string', '1+'),
  f('groupInstanceId', 'string', '7+', { nullable: '7+', default: null }),
  f('retentionTimeMs', 'int64', '2-4', { default: -1 }),
  arr('topics', '0+', [
    f('name', 'string', '0+'),
    arr('partitions', '0+', [
      f('partitionIndex', 'int32', '0+'),
      f('committedOffset', 'int64', '0+'),
      f('committedLeaderEpoch', 'int32', '6+', { default: -1 }),
      f('commitTimestamp', 'int64', '1-1', { default: -1 }),
      f('committedMetadata', 'string', '0+', { nullable: '0+' }),
    ]),
  ]),
]);
export const OffsetCommitResponseSpec = message('OffsetCommitResponse', 8, '0-8', '8+', [
  f('throttleTimeMs', 'int32', '3+'),
  arr('topics', '0+', [f('name', 'string', '0+'), arr('partitions', '0+', [f('partitionIndex', 'int32', '0+'), f('errorCode', 'int16', '0+')])]),
]);

// ------------------------------------------------------------------ OffsetFetch (9)
export interface OffsetFetchRequest {
  groupId: string;
  topics: Array<{ name: string; partitionIndexes: number[] }> | null;
  groups: Array<{ groupId: string; topics: Array<{ name: string; partitionIndexes: number[] }> | null }>;
  requireStable: boolean;
}
export interface OffsetFetchPartition {
  partitionIndex: number;
  committedOffset: number;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: number;
}
export interface OffsetFetchResponse {
  throttleTimeMs: number;
  topics: Array<{ name: string; partitions: OffsetFetchPartition[] }>;
  errorCode: number;
  groups: Array<{ groupId: string; topics: Array<{ name: string; partitions: OffsetFetchPartition[] }>; errorCode: number }>;
}
const offsetFetchPartitionFields = (v: string, epoch: string) => [
  f('partitionIndex', 'int32', v),
  f('committedOffset', 'int64', v),
  f('committedLeaderEpoch', 'int32', epoch, { default: -1 }),
  f('metadata', 'string', v, { nullable: v }),
  f('errorCode', 'int16', v),
];
export const OffsetFetchRequestSpec = message('OffsetFetchRequest', 9, '0-8', '6+', [
  f('groupId', 'string', '0-7'),
  arr('topics', '0-7', [f('name', 'string', '0-7'), f('partitionIndexes', arrayOf('int32'), '0-7')], { nullable: '2-7' }),
  arr('groups', '8+', [f('groupId', 'string', '8+'), arr('topics', '8+', [f('name', 'string', '8+'), f('partitionIndexes', arrayOf('int32'), '8+')], { nullable: '8+' })]),
  f('requireStable', 'bool', '7+'),
]);
export const OffsetFetchResponseSpec = message('OffsetFetchResponse', 9, '0-8', '6+', [
  f('throttleTimeMs', 'int32', '3+'),
  arr('topics', '0-7', [f('name', 'string', '0-7'), arr('partitions', '0-7', offsetFetchPartitionFields('0-7', '5-7'))]),
  f('errorCode', 'int16', '2-7'),
  arr('groups', '8+', [
    f('groupId', 'string', '8+'),
    arr('topics', '8+', [f('name', 'string', '8+'), arr('partitions', '8+', offsetFetchPartitionFields('8+', '8+'))]),
    f('errorCode', 'int16', '8+'),
  ]),
]);

// ------------------------------------------------------------------ DescribeGroups (15)
export interface DescribeGroupsRequest {
  groups: string[];
  includeAuthorizedOperations: boolean;
}
export interface DescribedGroup {
  errorCode: number;
  groupId: string;
  groupState: string;
  protocolType: string;
  protocolData: string;
  members: Array<{ memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; memberMetadata: Buffer; memberAssignment: Buffer }>;
  authorizedOperations: number;
}
export interface DescribeGroupsResponse {
  throttleTimeMs: number;
  groups: DescribedGroup[];
}
export const DescribeGroupsRequestSpec = message('DescribeGroupsRequest', 15, '0-5', '5+', [
  f('groups', arrayOf('string'), '0+'),
  f('includeAuthorizedOperations', 'bool', '3+'),
]);
export const DescribeGroupsResponseSpec = message('DescribeGroupsResponse', 15, '0-5', '5+', [
  f('throttleTimeMs', 'int32', '1+'),
  arr('groups', '0+', [
    f('errorCode', 'int16', '0+'),
    f('groupId', 'string', '0+'),
    f('groupState', 'string', '0+'),
    f('protocolType', 'string', '0+'),
    f('protocolData', 'string', '0+'),
    arr('members', '0+', [
      f('memberId', 'string', '0+'),
      f('groupInstanceId', 'string', '4+', { nullable: '4+', default: null }),
      f('clientId', 'string', '0+'),
      f('clientHost', 'string', '0+'),
      f('memberMetadata', 'bytes', '0+'),
      f('memberAssignment', 'bytes', '0+'),
    ]),
    f('authorizedOperations', 'int32', '3+', { default: -2147483648 }),
  ]),
]);

// ------------------------------------------------------------------ ListGroups (16)
export interface ListGroupsRequest {
  statesFilter: string[];
}
export interface ListGroupsResponse {
  throttleTimeMs: number;
  errorCode: number;
  groups: Array<{ groupId: string; protocolType: string; groupState: string }>;
}
export const ListGroupsRequestSpec = message('ListGroupsRequest', 16, '0-4', '3+', [f('statesFilter', arrayOf('string'), '4+')]);
export const ListGroupsResponseSpec = message('ListGroupsResponse', 16, '0-4', '3+', [
  f('throttleTimeMs', 'int32', '1+'),
  f('errorCode', 'int16', '0+'),
  arr('groups', '0+', [f('groupId', 'string', '0+'), f('protocolType', 'string', '0+'), f('groupState', 'string', '4+')]),
]);

// ------------------------------------------------------------------ DeleteGroups (42)
export interface DeleteGroupsRequest {
  groupsNames: string[];
}
export interface DeleteGroupsResponse {
  throttleTimeMs: number;
  results: Array<{ groupId: string; errorCode: number }>;
}
export const DeleteGroupsRequestSpec = message('DeleteGroupsRequest', 42, '0-2', '2+', [f('groupsNames', arrayOf('string'), '0+')]);
export const DeleteGroupsResponseSpec = message('DeleteGroupsResponse', 42, '0-2', '2+', [
  f('throttleTimeMs', 'int32', '0+'),
  arr('results', '0+', [f('groupId', 'string', '0+'), f('errorCode', 'int16', '0+')]),
]);

// ------------------------------------------------------------------ OffsetDelete (47)
export interface OffsetDeleteRequest {
  groupId: string;
  topics: Array<{ name: string; partitions: Array<{ partitionIndex: number }> }>;
}
export interface OffsetDeleteResponse {
  errorCode: number;
  throttleTimeMs: number;
  topics: Array<{ name: string; partitions: Array<{ partitionIndex: number; errorCode: number }> }>;
}
export const OffsetDeleteRequestSpec = message('OffsetDeleteRequest', 47, '0', 'none', [
  f('groupId', 'string', '0+'),
  arr('topics', '0+', [f('name', 'string', '0+'), arr('partitions', '0+', [f('partitionIndex', 'int32', '0+')])]),
]);
export const OffsetDeleteResponseSpec = message('OffsetDeleteResponse', 47, '0', 'none', [
  f('errorCode', 'int16', '0+'),
  f('throttleTimeMs', 'int32', '0+'),
  arr('topics', '0+', [f('name', 'string', '0+'), arr('partitions', '0+', [f('partitionIndex', 'int32', '0+'), f('errorCode', 'int16', '0+')])]),
]);

// ------------------------------------------------------------------ InitProducerId (22)
export interface InitProducerIdRequest {
  transactionalId: string | null;
  transactionTimeoutMs: number;
  producerId: number;
  producerEpoch: number;
}
export interface InitProducerIdResponse {
  throttleTimeMs: number;
  errorCode: number;
  producerId: number;
  producerEpoch: number;
}
export const InitProducerIdRequestSpec = message('InitProducerIdRequest', 22, '0-4', '2+', [
  f('transactionalId', 'string', '0+', { nullable: '0+' }),
  f('transactionTimeoutMs', 'int32', '0+'),
  f('producerId', 'int64', '3+', { default: -1 }),
  f('producerEpoch', 'int16', '3+', { default: -1 }),
]);
export const InitProducerIdResponseSpec = message('InitProducerIdResponse', 22, '0-4', '2+', [
  f('throttleTimeMs', 'int32', '0+'),
  f('errorCode', 'int16', '0+'),
  f('producerId', 'int64', '0+', { default: -1 }),
  f('producerEpoch', 'int16', '0+'),
]);

/** (request, response) schemas by API key, merged into the protocol registry (messages.ts SPECS). */
export const GROUP_SPECS: ReadonlyArray<readonly [number, { request: MessageSpec; response: MessageSpec }]> = [
  [GroupApiKey.JoinGroup, { request: JoinGroupRequestSpec, response: JoinGroupResponseSpec }],
  [GroupApiKey.SyncGroup, { request: SyncGroupRequestSpec, response: SyncGroupResponseSpec }],
  [GroupApiKey.Heartbeat, { request: HeartbeatRequestSpec, response: HeartbeatResponseSpec }],
  [GroupApiKey.LeaveGroup, { request: LeaveGroupRequestSpec, response: LeaveGroupResponseSpec }],
  [GroupApiKey.OffsetCommit, { request: OffsetCommitRequestSpec, response: OffsetCommitResponseSpec }],
  [GroupApiKey.OffsetFetch, { request: OffsetFetchRequestSpec, response: OffsetFetchResponseSpec }],
  [GroupApiKey.DescribeGroups, { request: DescribeGroupsRequestSpec, response: DescribeGroupsResponseSpec }],
  [GroupApiKey.ListGroups, { request: ListGroupsRequestSpec, response: ListGroupsResponseSpec }],
  [GroupApiKey.DeleteGroups, { request: DeleteGroupsRequestSpec, response: DeleteGroupsResponseSpec }],
  [GroupApiKey.OffsetDelete, { request: OffsetDeleteRequestSpec, response: OffsetDeleteResponseSpec }],
  [GroupApiKey.InitProducerId, { request: InitProducerIdRequestSpec, response: InitProducerIdResponseSpec }],
];

/** Versions advertised when a group coordinator is attached. FindCoordinator (10) is advertised alongside (v0–v4). */
export const GROUP_API_VERSIONS: ReadonlyArray<readonly [number, readonly [number, number]]> = [
  [10, [0, 4]],
  [GroupApiKey.JoinGroup, [0, 9]],
  [GroupApiKey.SyncGroup, [0, 5]],
  [GroupApiKey.Heartbeat, [0, 4]],
  [GroupApiKey.LeaveGroup, [0, 5]],
  [GroupApiKey.OffsetCommit, [0, 8]],
  [GroupApiKey.OffsetFetch, [0, 8]],
  [GroupApiKey.DescribeGroups, [0, 5]],
  [GroupApiKey.ListGroups, [0, 4]],
  [GroupApiKey.DeleteGroups, [0, 2]],
  [GroupApiKey.OffsetDelete, [0, 0]],
  [GroupApiKey.InitProducerId, [0, 4]],
];
