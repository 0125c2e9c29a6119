/**
 * The admin calls the controller needs, over the broker's typed AdminClient (the only broker module the operator
 * may use). Calls the broker's admin API does not offer yet (membership, fence, leadership transfer, topic
 * replication factors) fail with a typed UNSUPPORTED LanceError; the controller records that as a condition/Event
 * instead of crashing. No endpoint is invented here: when the broker grows one, the wrapper calls it.
 */
import { AdminClient, type ClusterView, type MemberEndpoints } from '../../../broker/src/admin/client.ts';
import { LanceError } from '../../../broker/src/common/errors.ts';
import type { BrokerGroupView, BrokerView, MemberState } from './decisions.ts';

export type { MemberEndpoints };

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
  /** `group`: "metadata" (default) or a partition group id as /v1/cluster names it. */
  transferLeader(toNodeId: number, group?: string): Promise<void>;
  /** Make `nodeId` a member (idempotent): learner → caught up → promoted by the broker's controller. */
  addMember(nodeId: number, endpoints: MemberEndpoints): Promise<void>;
  /** Retire `nodeId` (idempotent); its replicas move asynchronously. */
  removeMember(nodeId: number): Promise<void>;
  /** The controller's registry: every broker and its membership state. */
  listMembers(): Promise<MemberState[]>;
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

/**
 * ClusterView → BrokerView. In cluster mode the view lists every Raft group on the node with its role and term
 * ("__meta" is the metadata group): those give the claimed leaderships and the term split-brain decisions need.
 * A standalone node leads everything and reports no term.
 */
export function toBrokerView(pod: string, v: ClusterView): BrokerView {
  const meta = v.groups?.find((g) => g.group === '__meta');
  const role: BrokerView['role'] = v.role === 'standalone' ? 'Standalone' : meta ? (meta.role === 'leader' ? 'Leader' : 'Follower') : v.role === 'leader' ? 'Leader' : v.role === 'learner' ? 'Learner' : 'Follower';
  const leads: BrokerView['leads'] = [];
  if (v.groups) {
    for (const g of v.groups) if (g.role === 'leader') leads.push({ group: groupName(g.group), term: g.term });
  } else {
    if (role === 'Leader' || role === 'Standalone') leads.push({ group: 'metadata' });
    for (const t of v.topics) for (const p of t.partitions) if (p.leader === v.nodeId) leads.push({ group: `${t.name}/${p.partition}` });
  }
  const groups: BrokerGroupView[] | undefined = v.groups?.map((g) => ({
    group: groupName(g.group), leader: g.leader, term: g.term, voters: g.voters, followers: g.followers.map((f) => ({ nodeId: f.nodeId, lag: f.lag })),
  }));
  return {
    pod, nodeId: v.nodeId, role, ...(meta ? { term: meta.term, leaderId: meta.leader } : {}), leads,
    ...(v.fenced !== undefined ? { fenced: v.fenced } : {}), ...(groups ? { groups } : {}),
  };
}

function groupName(g: string): string {
  return g === '__meta' ? 'metadata' : g;
}

export class AdminClientBrokerAdmin implements BrokerAdmin {
  private readonly client: AdminClient;
  // Everything the controller needs exists in cluster mode (a standalone broker answers UNSUPPORTED → Warning Event).
  // Replication factors are read from /v1/cluster's partition groups (maxReplicationFactor in decisions.ts).
  readonly supports: AdminCapabilities = { membership: true, fence: true, transferLeader: true, replicationFactor: false };
  constructor(private readonly pod: string, baseUrl: string, timeoutMs = 5_000) {
    this.client = new AdminClient(baseUrl, { timeoutMs });
  }
  async clusterStatus(): Promise<BrokerView> {
    return toBrokerView(this.pod, await this.client.cluster());
  }
  async fence(): Promise<void> {
    await this.client.fence();
  }
  async unfence(): Promise<void> {
    await this.client.unfence();
  }
  async transferLeader(toNodeId: number, group?: string): Promise<void> {
    await this.client.transferLeader({ to: toNodeId, ...(group !== undefined && group !== 'metadata' ? { group } : {}) });
  }
  async addMember(nodeId: number, endpoints: MemberEndpoints): Promise<void> {
    await this.client.addMember(nodeId, endpoints);
  }
  async removeMember(nodeId: number): Promise<void> {
    await this.client.removeMember(nodeId);
  }
  async listMembers(): Promise<MemberState[]> {
    return (await this.client.listMembers()).members.map((m) => ({ nodeId: m.nodeId, state: m.state }));
  }
  maxReplicationFactor(): Promise<number> {
    return Promise.resolve().then(() => unsupported('topic replication factor', this.client.baseUrl));
  }
}

export const adminClientFactory: BrokerAdminFactory = (pod, baseUrl) => new AdminClientBrokerAdmin(pod, baseUrl);
