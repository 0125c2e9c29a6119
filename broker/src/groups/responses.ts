/**
 * Whole-request error answers for the group APIs: what a node that is not (or no longer, or not yet) the group
 * coordinator answers — NOT_COORDINATOR (16) sends Kafka clients back to FindCoordinator, COORDINATOR_LOAD_IN_PROGRESS
 * (14) and COORDINATOR_NOT_AVAILABLE (15) make them retry. Every errorCode of the body (top level, per partition,
 * per member, per group) carries the code, in the shape the request's version encodes.
 */
import {
  GroupApiKey, type DeleteGroupsRequest, type DeleteGroupsResponse, type DescribeGroupsRequest, type DescribeGroupsResponse, type HeartbeatResponse,
  type JoinGroupRequest, type JoinGroupResponse, type LeaveGroupRequest, type LeaveGroupResponse, type ListGroupsResponse, type OffsetCommitRequest,
  type OffsetCommitResponse, type OffsetDeleteResponse, type OffsetFetchRequest, type OffsetFetchResponse, type SyncGroupResponse,
} from '../kafka/protocol/groups.ts';
import { LanceError } from '../common/errors.ts';

export const NOT_COORDINATOR = 16;
export const COORDINATOR_LOAD_IN_PROGRESS = 14;
export const COORDINATOR_NOT_AVAILABLE = 15;

/** The error answer to a group request (JoinGroup … OffsetDelete; not FindCoordinator/InitProducerId). */
export function groupErrorResponse(apiKey: number, version: number, req: unknown, errorCode: number): object {
  switch (apiKey) {
    case GroupApiKey.JoinGroup: {
      const r = req as JoinGroupRequest;
      return {
        throttleTimeMs: 0, errorCode, generationId: -1, protocolType: null, protocolName: version >= 7 ? null : '', leader: '', skipAssignment: false, memberId: r.memberId, members: [],
      } satisfies JoinGroupResponse;
    }
    case GroupApiKey.SyncGroup:
      return { throttleTimeMs: 0, errorCode, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) } satisfies SyncGroupResponse;
    case GroupApiKey.Heartbeat:
      return { throttleTimeMs: 0, errorCode } satisfies HeartbeatResponse;
    case GroupApiKey.LeaveGroup: {
      const r = req as LeaveGroupRequest;
      return { throttleTimeMs: 0, errorCode, members: r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode })) } satisfies LeaveGroupResponse;
    }
    case GroupApiKey.OffsetCommit: {
      const r = req as OffsetCommitRequest;
      return {
        throttleTimeMs: 0, topics: r.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })) })),
      } satisfies OffsetCommitResponse;
    }
    case GroupApiKey.OffsetFetch: {
      const r = req as OffsetFetchRequest;
      if (version >= 8) return { throttleTimeMs: 0, topics: [], errorCode, groups: r.groups.map((g) => ({ groupId: g.groupId, topics: [], errorCode })) } satisfies OffsetFetchResponse;
      // v0/v1 have no top-level error code: the per-partition codes carry it
      const topics = (r.topics ?? []).map((t) => ({
        name: t.name, partitions: t.partitionIndexes.map((p) => ({ partitionIndex: p, committedOffset: -1, committedLeaderEpoch: -1, metadata: '', errorCode })),
      }));
      return { throttleTimeMs: 0, topics, errorCode, groups: [] } satisfies OffsetFetchResponse;
    }
    case GroupApiKey.DescribeGroups: {
      const r = req as DescribeGroupsRequest;
      return {
        throttleTimeMs: 0,
        groups: r.groups.map((groupId) => ({ errorCode, groupId, groupState: '', protocolType: '', protocolData: '', members: [], authorizedOperations: -2147483648 })),
      } satisfies DescribeGroupsResponse;
    }
    case GroupApiKey.ListGroups:
      return { throttleTimeMs: 0, errorCode, groups: [] } satisfies ListGroupsResponse;
    case GroupApiKey.DeleteGroups: {
      const r = req as DeleteGroupsRequest;
      return { throttleTimeMs: 0, results: r.groupsNames.map((groupId) => ({ groupId, errorCode })) } satisfies DeleteGroupsResponse;
    }
    case GroupApiKey.OffsetDelete:
      return { errorCode, throttleTimeMs: 0, topics: [] } satisfies OffsetDeleteResponse;
    default:
      throw new LanceError('INTERNAL', `groupErrorResponse: API key ${apiKey} is not a group request`);
  }
}
