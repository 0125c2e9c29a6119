/**
 * The admin API's view of consumer groups (/v1/groups; `lnc groups list|describe|reset-offsets`): the coordinator's
 * groups joined with the partitions' log end offsets — the `kafka-consumer-groups --describe` view.
 */
import { LanceError } from '../common/errors.ts';
import type { GroupDetail, GroupSummary, ResetOffsetsRequest, ResetOffsetsResponse } from '../admin/schemas.ts';
import type { GroupService } from './service.ts';

export interface GroupsBrokerView {
  /** partition count, or undefined when the topic does not exist */
  partitionCount(topic: string): number | undefined;
  highWatermarkOf(topic: string, partition: number): number | null;
  /** Kafka ListOffsets semantics: -2 earliest, -1 latest, else first record with timestamp >= t (offset -1: none) */
  listOffsets(topic: string, partition: number, timestamp: number): Promise<{ offset: number }>;
}

/** ConsumerProtocolAssignment: int16 version, [topic string, [int32 partition]], userData — unreadable → []. */
export function parseAssignment(b: Buffer): Array<{ topic: string; partitions: number[] }> {
  try {
    if (b.length < 6) return [];
    let pos = 2;
    const n = b.readInt32BE(pos);
    pos += 4;
    const out: Array<{ topic: string; partitions: number[] }> = [];
    for (let i = 0; i < n; i++) {
      const len = b.readInt16BE(pos);
      pos += 2;
      const topic = b.toString('utf8', pos, pos + len);
      pos += len;
      const k = b.readInt32BE(pos);
      pos += 4;
      const partitions: number[] = [];
      for (let j = 0; j < k; j++, pos += 4) partitions.push(b.readInt32BE(pos));
      out.push({ topic, partitions });
    }
    return out;
  } catch {
    return [];
  }
}

export function groupsAdmin(service: GroupService, broker: GroupsBrokerView) {
  return {
    list(): GroupSummary[] {
      return service.list().map((g) => ({ group: g.groupId, state: g.state, protocolType: g.protocolType, members: g.members }));
    },

    describe(group: string): GroupDetail {
      const d = service.describe(group);
      if (d.groupState === 'Dead' && d.offsets.length === 0) throw new LanceError('NOT_FOUND', `consumer group "${group}" does not exist`, { group });
      const members = d.members.map((m) => ({
        memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
        assignment: d.protocolType === 'consumer' ? parseAssignment(m.memberAssignment) : [],
      }));
      const owner = new Map<string, string>();
      const topics = new Set<string>(d.offsets.map((o) => o.topic));
      for (const m of members) for (const a of m.assignment) {
        topics.add(a.topic);
        for (const p of a.partitions) owner.set(`${a.topic}\u0000${p}`, m.memberId);
      }
      const committed = new Map(d.offsets.map((o) => [`${o.topic}\u0000${o.partition}`, o]));
      const partitions: GroupDetail['partitions'] = [];
      for (const topic of [...topics].sort()) {
        const count = broker.partitionCount(topic) ?? 0;
        const parts = new Set<number>([...Array(count).keys()]);
        for (const o of d.offsets) if (o.topic === topic) parts.add(o.partition);
        for (const partition of [...parts].sort((a, b) => a - b)) {
          const key = `${topic}\u0000${partition}`;
          const c = committed.get(key);
          const end = broker.highWatermarkOf(topic, partition);
          partitions.push({
            topic, partition, committedOffset: c?.offset ?? null, logEndOffset: end, lag: c && end !== null ? Math.max(0, end - c.offset) : null,
            memberId: owner.get(key) ?? null, metadata: c?.metadata ?? null,
          });
        }
      }
      return { group, state: d.groupState as GroupDetail['state'], protocolType: d.protocolType, protocol: d.protocolData, generation: d.generation, members, partitions };
    },

    async resetOffsets(group: string, req: ResetOffsetsRequest): Promise<ResetOffsetsResponse> {
      const count = broker.partitionCount(req.topic);
      if (count === undefined) throw new LanceError('NOT_FOUND', `topic: "${req.topic}" does not exist`, { field: 'topic', topic: req.topic });
      const state = service.list().find((g) => g.groupId === group)?.state ?? 'Dead';
      if (state !== 'Empty' && state !== 'Dead') {
        throw new LanceError('CONFLICT', `group ${group} is ${state}: offsets can only be reset while it has no members (stop its consumers first)`, { group, state });
      }
      const ts = req.to === 'earliest' ? -2 : req.to === 'latest' ? -1 : Date.parse(req.to.datetime);
      const offsets: ResetOffsetsResponse['offsets'] = [];
      for (let p = 0; p < count; p++) {
        let target = (await broker.listOffsets(req.topic, p, ts)).offset;
        // no record at/after the time: the end of the log (as kafka-consumer-groups does)
        if (target < 0) target = (await broker.listOffsets(req.topic, p, -1)).offset;
        offsets.push({ topic: req.topic, partition: p, current: service.committed(group, req.topic, p), target });
      }
      if (req.execute) await service.resetOffsets(group, offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.target })));
      return { group, executed: req.execute, offsets };
    },
  };
}

export type GroupsAdmin = ReturnType<typeof groupsAdmin>;
