/**
 * The admin calls the controller needs, over the broker's typed AdminClient (the only broker module the operator
 * may use). Calls the broker's admin API does not offer yet (membership, fence, leadership transfer, topic
 * replication factors) fail with a typed UNSUPPORTED LanceError; the controller records that as a condition/Event
 * instead of crashing. No endpoint is invented here: when the broker grows one, the wrapper calls it.
 */
import { AdminClient, type ClusterView } from '../../../broker/src/admin/client.ts';
import { LanceError } from '../../../broker/src/common/errors.ts';
import type { BrokerView } from './decisions.ts';

/** Which admin operations this broker version offers (declared, so decisions need no probing calls). */
export interface AdminCapabilities {
  membership: boolean;
  fence: boolean;
  transferLeader: boolean;
  replicationFactor: boolean;
}

export interface BrokerAdmin {
  readonly supports: AdminCapabilities;
  clusterStatus(): Promise<BrokerView>;
  fence(): Promise<void>;
  unfence(): Promise<void>;
  transferLeader(toNodeId: number): Promise<void>;
  addMember(nodeId: number): Promise<void>;
  removeMember(nodeId: number): Promise<void>;
  /** Largest replication factor of any topic (scale-down floor). */
  maxReplicationFactor(): Promise<number>;
}

export type BrokerAdminFactory = (pod: string, baseUrl: string) => BrokerAdmin;

export function isUnsupported(e: unknown): boolean {
  return e instanceof LanceError && e.code === 'UNSUPPORTED';
}

function unsupported(what: string, baseUrl: string): never {
  throw new LanceError('UNSUPPORTED', `broker admin API at ${baseUrl} has no ${what} endpoint yet`, { endpoint: what });
}

/** ClusterView → BrokerView. The view carries no Raft term yet, so term stays undefined (split-brain undecidable). */
export function toBrokerView(pod: string, v: ClusterView): BrokerView {
  const role = v.role === 'leader' ? 'Leader' : v.role === 'follower' ? 'Follower' : v.role === 'learner' ? 'Learner' : 'Standalone';
  const leads: BrokerView['leads'] = [];
  if (role === 'Leader' || role === 'Standalone') leads.push({ group: 'metadata' });
  for (const t of v.topics) for (const p of t.partitions) if (p.leader === v.nodeId) leads.push({ group: `${t.name}/${p.partition}` });
  return { pod, nodeId: v.nodeId, role, leads };
}

export class AdminClientBrokerAdmin implements BrokerAdmin {
  private readonly client: AdminClient;
  // The broker's admin API (broker/src/admin) has only GET /v1/cluster of these today.
  readonly supports: AdminCapabilities = { membership: false, fence: false, transferLeader: false, replicationFactor: false };
  constructor(private readonly pod: string, baseUrl: string, timeoutMs = 5_000) {
    this.client = new AdminClient(baseUrl, { timeoutMs });
  }
  async clusterStatus(): Promise<BrokerView> {
    return toBrokerView(this.pod, await this.client.cluster());
  }
  fence(): Promise<void> {
    return Promise.resolve().then(() => unsupported('fence', this.client.baseUrl));
  }
  unfence(): Promise<void> {
    return Promise.resolve().then(() => unsupported('unfence', this.client.baseUrl));
  }
  transferLeader(_toNodeId: number): Promise<void> {
    return Promise.resolve().then(() => unsupported('transfer-leader', this.client.baseUrl));
  }
  addMember(_nodeId: number): Promise<void> {
    return Promise.resolve().then(() => unsupported('members add', this.client.baseUrl));
  }
  removeMember(_nodeId: number): Promise<void> {
    return Promise.resolve().then(() => unsupported('members remove', this.client.baseUrl));
  }
  maxReplicationFactor(): Promise<number> {
    return Promise.resolve().then(() => unsupported('topic replication factor', this.client.baseUrl));
  }
}

export const adminClientFactory: BrokerAdminFactory = (pod, baseUrl) => new AdminClientBrokerAdmin(pod, baseUrl);
