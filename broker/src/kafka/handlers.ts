import type { Logger } from '../common/log.ts';
import type { ConfigEntry, ConfigSource, FetchResult, KafkaBackend, TopicMetadata } from './backend.ts';
import { KafkaError, toKafkaError } from './errors.ts';
import {
  ApiKey,
  type AlterConfigsRequest,
  type AlterConfigsResponse,
  type ApiVersionsResponse,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type CreateTopicsResponseTopic,
  type DeleteTopicsRequest,
  type DeleteTopicsResponse,
  type DescribeClusterResponse,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
  type DescribeConfigsResponseConfig,
  type FetchRequest,
  type FetchResponse,
  type FetchResponsePartition,
  type FindCoordinatorRequest,
  type FindCoordinatorResponse,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type MetadataRequest,
  type MetadataResponse,
  type MetadataResponseTopic,
  type ProducePartitionResponse,
  type ProduceRequest,
  type ProduceResponse,
  ResourceType,
} from './protocol/messages.ts';
import { decodeRecordBatches, validateRecordSet } from './records.ts';
import type { KafkaGroupApi } from './server.ts';

/** API key → [min, max] version this broker advertises in ApiVersions. Group APIs are added by the group coordinator (KafkaGroupApi.versions) when one is attached. */
export const SUPPORTED_VERSIONS: ReadonlyMap<number, readonly [number, number]> = new Map<number, readonly [number, number]>([
  [ApiKey.Produce, [3, 9]],
  [ApiKey.Fetch, [4, 13]],
  [ApiKey.ListOffsets, [1, 7]],
  [ApiKey.Metadata, [0, 12]],
  [ApiKey.ApiVersions, [0, 3]],
  [ApiKey.CreateTopics, [0, 7]],
  [ApiKey.DeleteTopics, [0, 6]],
  [ApiKey.DescribeConfigs, [0, 4]],
  [ApiKey.AlterConfigs, [0, 2]],
  [ApiKey.CreatePartitions, [0, 3]],
  [ApiKey.DescribeCluster, [0, 1]],
]);

/**
 * APIs answered although not advertised: a client that tries consumer groups gets a clear, non-retriable error
 * response instead of a closed connection or a hang.
 */
export const ANSWERED_UNADVERTISED: ReadonlyMap<number, readonly [number, number]> = new Map<number, readonly [number, number]>([
  [ApiKey.FindCoordinator, [0, 4]],
]);

/** A handler result that means: send nothing, close the connection after the earlier responses (logged at warn). */
export class CloseConnection {
  constructor(readonly reason: string) {}
}

export interface RequestContext {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** aborted when the connection closes (ends Fetch long-polls early) */
  signal: AbortSignal;
}

const CONFIG_SOURCE: Record<ConfigSource, number> = { TOPIC: 1, DYNAMIC_BROKER: 2, STATIC_BROKER: 4, DEFAULT: 5 };
const CONFIG_TYPE: Record<ConfigEntry['type'], number> = {
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  SHORT: 4,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
  CLASS: 8,
  PASSWORD: 9,
};

function errorOf(err: unknown): { code: number; message: string } {
  return toKafkaError(err);
}

/** The per-API logic. Everything here is request object in, response object out; I/O is the backend's. */
export class KafkaHandlers {
  /** versions of the APIs the attached group coordinator serves (empty without one) */
  readonly groupVersions: ReadonlyMap<number, readonly [number, number]>;
  constructor(
    private readonly backend: KafkaBackend,
    private readonly log: Logger,
    readonly groups?: KafkaGroupApi,
  ) {
    this.groupVersions = new Map(groups?.versions ?? []);
  }

  apiVersions(): ApiVersionsResponse {
    return {
      errorCode: 0,
      apiKeys: [...SUPPORTED_VERSIONS, ...this.groupVersions].map(([apiKey, [minVersion, maxVersion]]) => ({ apiKey, minVersion, maxVersion })),
      throttleTimeMs: 0,
    };
  }

  metadata(req: MetadataRequest, version: number): MetadataResponse {
    const b = this.backend;
    let topics: MetadataResponseTopic[];
    const all = req.topics === null || (version === 0 && req.topics.length === 0);
    if (all) {
      topics = b.listTopics().map((t) => this.topicMetadata(t));
    } else {
      topics = (req.topics ?? []).map((rt) => {
        const t = rt.name !== null ? b.getTopic(rt.name) : b.getTopicById(rt.topicId);
        if (t) return this.topicMetadata(t);
        // v0-v3 have no flag: Kafka treats them as allowing auto-creation
        const allowAuto = version < 4 || req.allowAutoTopicCreation;
        const creating = rt.name !== null && allowAuto && b.autoCreateTopic !== undefined && b.autoCreateTopic(rt.name);
        return {
          errorCode: creating ? KafkaError.LEADER_NOT_AVAILABLE : rt.name !== null ? KafkaError.UNKNOWN_TOPIC_OR_PARTITION : KafkaError.UNKNOWN_TOPIC_ID,
          name: rt.name,
          topicId: rt.topicId,
          isInternal: false,
          partitions: [],
          topicAuthorizedOperations: -2147483648,
        };
      });
    }
    return {
      throttleTimeMs: 0,
      brokers: b.brokers().map((x) => ({ nodeId: x.nodeId, host: x.host, port: x.port, rack: x.rack })),
      clusterId: b.clusterId,
      // kafkajs sends InitProducerId and admin requests to the controller id and fails on -1 ("broker not found");
      // every node answers those (cluster mode forwards to the controller), so while none is known this node stands in
      controllerId: b.controllerId() >= 0 ? b.controllerId() : b.nodeId,
      topics,
      clusterAuthorizedOperations: -2147483648,
    };
  }

  private topicMetadata(t: TopicMetadata): MetadataResponseTopic {
    return {
      errorCode: 0,
      name: t.name,
      topicId: t.topicId,
      isInternal: t.isInternal,
      partitions: t.partitions.map((p) => ({
        errorCode: p.leaderId < 0 ? KafkaError.LEADER_NOT_AVAILABLE : 0,
        partitionIndex: p.partition,
        leaderId: p.leaderId,
        leaderEpoch: p.leaderEpoch,
        replicaNodes: p.replicas,
        isrNodes: p.isr,
        offlineReplicas: p.offlineReplicas,
      })),
      topicAuthorizedOperations: -2147483648,
    };
  }

  /**
   * Produce. Validation and the backend.produce calls happen synchronously (before the first await), so pipelined
   * requests on a connection append in request order. For acks=0 resolves to null (no response) or CloseConnection.
   */
  produce(req: ProduceRequest): Promise<ProduceResponse | CloseConnection | null> {
    const acks = req.acks;
    const jobs: Array<{ topic: string; result: Promise<ProducePartitionResponse> }> = [];
    for (const td of req.topicData) {
      for (const pd of td.partitionData) {
        const base: ProducePartitionResponse = {
          index: pd.index,
          errorCode: 0,
          baseOffset: -1,
          logAppendTimeMs: -1,
          logStartOffset: -1,
          recordErrors: [],
          errorMessage: null,
        };
        const fail = (code: number, message: string): Promise<ProducePartitionResponse> =>
          Promise.resolve({ ...base, errorCode: code, errorMessage: message });
        let result: Promise<ProducePartitionResponse>;
        if (acks !== 0 && acks !== 1 && acks !== -1) {
          result = fail(KafkaError.INVALID_REQUIRED_ACKS, `acks must be -1, 0 or 1, got ${acks}`);
        } else if (pd.records === null) {
          result = fail(KafkaError.CORRUPT_MESSAGE, `topic ${td.name} partition ${pd.index}: records is null`);
        } else {
          try {
            const batches = validateRecordSet(pd.records);
            result = this.backend.produce(td.name, pd.index, batches, acks, req.timeoutMs).then(
              (r) => ({ ...base, baseOffset: r.baseOffset, logAppendTimeMs: r.logAppendTimeMs, logStartOffset: r.logStartOffset }),
              (err: unknown) => {
                const e = errorOf(err);
                return { ...base, errorCode: e.code, errorMessage: e.message };
              },
            );
          } catch (err) {
            const e = errorOf(err);
            result = fail(e.code, `topic ${td.name} partition ${pd.index}: ${e.message}`);
          }
        }
        jobs.push({ topic: td.name, result });
      }
    }
    if (acks === 0) {
      // No response is sent. Like Kafka, a failed acks=0 produce closes the connection: the only signal such a
      // producer gets (it reconnects and refreshes metadata).
      return Promise.all(jobs.map((j) => j.result)).then((results) => {
        const failed = results.map((r, i) => ({ r, topic: jobs[i]!.topic })).filter((x) => x.r.errorCode !== 0);
        if (failed.length === 0) return null;
        const f = failed[0]!;
        return new CloseConnection(`acks=0 produce to ${f.topic}/${f.r.index} failed with Kafka error ${f.r.errorCode}: ${f.r.errorMessage ?? ''}`);
      });
    }
    return Promise.all(jobs.map((j) => j.result)).then((results) => {
      const byTopic = new Map<string, ProducePartitionResponse[]>();
      results.forEach((r, i) => {
        const t = jobs[i]!.topic;
        const list = byTopic.get(t) ?? [];
        list.push(r);
        byTopic.set(t, list);
      });
      return { responses: [...byTopic].map(([name, partitionResponses]) => ({ name, partitionResponses })), throttleTimeMs: 0 };
    });
  }

  /** Fetch with max_wait/min_bytes: answer at once if enough data (or an error), else wait for a high-watermark advance or the timeout. */
  async fetch(req: FetchRequest, version: number, signal: AbortSignal): Promise<FetchResponse> {
    const wanted = new Set<string>();
    for (const t of req.topics) {
      const name = version >= 13 ? this.backend.getTopicById(t.topicId)?.name : t.topic;
      if (name !== undefined) for (const p of t.partitions) wanted.add(`${name}\u0000${p.partition}`);
    }
    const mayWait = req.maxWaitMs > 0 && wanted.size > 0;
    // Subscribe BEFORE the first read so an append that lands while it runs is not missed.
    let advanced = false;
    let onAdvance: () => void = () => {
      advanced = true;
    };
    const unsubscribe = mayWait
      ? this.backend.onHighWatermark((topic, partition) => {
          if (wanted.has(`${topic}\u0000${partition}`)) onAdvance();
        })
      : () => undefined;
    try {
      let latest = await this.fetchOnce(req, version);
      if (!mayWait || latest.bytes >= req.minBytes || latest.hasError || signal.aborted) return latest.response;
      const satisfied = await new Promise<boolean>((resolve) => {
        let done = false;
        let checking = false;
        let again = false;
        const finish = (enough: boolean): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve(enough);
        };
        const onAbort = (): void => finish(false);
        const timer = setTimeout(() => finish(false), req.maxWaitMs);
        const check = (): void => {
          if (done) return;
          if (checking) {
            again = true;
            return;
          }
          checking = true;
          void this.fetchOnce(req, version).then(
            (r) => {
              checking = false;
              latest = r;
              if (r.bytes >= req.minBytes || r.hasError) finish(true);
              else if (again) {
                again = false;
                check();
              }
            },
            () => {
              checking = false;
              finish(false);
            },
          );
        };
        onAdvance = check;
        signal.addEventListener('abort', onAbort);
        if (advanced) check();
      });
      if (satisfied || signal.aborted) return latest.response;
      // max wait elapsed: answer with whatever is there now
      return (await this.fetchOnce(req, version)).response;
    } finally {
      unsubscribe();
    }
  }

  private async fetchOnce(req: FetchRequest, version: number): Promise<{ response: FetchResponse; bytes: number; hasError: boolean }> {
    const maxBytes = req.maxBytes > 0 ? req.maxBytes : 0x7fffffff;
    // Read every partition concurrently (a consumer of many partitions must not pay their latencies in sequence),
    // then apply the response-level byte budget in request order.
    const reads = req.topics.map((t) => {
      const name = version >= 13 ? this.backend.getTopicById(t.topicId)?.name : t.topic;
      return {
        t,
        name,
        parts: t.partitions.map((p) =>
          name === undefined
            ? Promise.resolve<FetchResult | { error: unknown }>({ error: null })
            : this.backend.fetch(name, p.partition, p.fetchOffset, Math.max(0, Math.min(p.partitionMaxBytes, maxBytes))).catch((error: unknown) => ({ error })),
        ),
      };
    });
    let budget = maxBytes;
    let bytes = 0;
    let hasError = false;
    const responses: FetchResponse['responses'] = [];
    for (const { t, name, parts } of reads) {
      const partitions: FetchResponsePartition[] = [];
      for (let i = 0; i < t.partitions.length; i++) {
        const p = t.partitions[i]!;
        const out: FetchResponsePartition = {
          partitionIndex: p.partition,
          errorCode: 0,
          highWatermark: -1,
          lastStableOffset: -1,
          logStartOffset: -1,
          abortedTransactions: null,
          preferredReadReplica: -1,
          records: Buffer.alloc(0),
        };
        const r = await parts[i]!;
        if (name === undefined) {
          out.errorCode = KafkaError.UNKNOWN_TOPIC_ID;
          hasError = true;
        } else if ('error' in r) {
          out.errorCode = errorOf(r.error).code;
          hasError = true;
        } else {
          out.highWatermark = r.highWatermark;
          out.lastStableOffset = r.lastStableOffset;
          out.logStartOffset = r.logStartOffset;
          // KIP-74: only the first non-empty partition may exceed the budget (so a consumer always progresses).
          if (r.records.length > 0 && (bytes === 0 || r.records.length <= budget)) {
            out.records = r.records;
            bytes += r.records.length;
            budget -= r.records.length;
          }
        }
        partitions.push(out);
      }
      responses.push({ topic: name ?? '', topicId: t.topicId, partitions });
    }
    return { response: { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses }, bytes, hasError };
  }


  async listOffsets(req: ListOffsetsRequest): Promise<ListOffsetsResponse> {
    const topics: ListOffsetsResponse['topics'] = [];
    for (const t of req.topics) {
      const partitions: ListOffsetsResponse['topics'][number]['partitions'] = [];
      for (const p of t.partitions) {
        try {
          const r = await this.backend.listOffsets(t.name, p.partitionIndex, p.timestamp);
          const exact = p.timestamp >= 0 && r.offset >= 0 ? await this.firstRecordAtOrAfter(t.name, p.partitionIndex, r.offset, p.timestamp) : null;
          partitions.push({
            partitionIndex: p.partitionIndex,
            errorCode: 0,
            timestamp: exact?.timestamp ?? r.timestamp,
            offset: exact?.offset ?? r.offset,
            leaderEpoch: r.leaderEpoch,
          });
        } catch (err) {
          partitions.push({ partitionIndex: p.partitionIndex, errorCode: errorOf(err).code, timestamp: -1, offset: -1, leaderEpoch: -1 });
        }
      }
      topics.push({ name: t.name, partitions });
    }
    return { throttleTimeMs: 0, topics };
  }

  /**
   * Kafka answers a by-time ListOffsets with the first RECORD whose timestamp >= target; storage indexes whole
   * batches. Refine inside the batch the backend found (uncompressed or gzip; other codecs keep the batch offset).
   */
  private async firstRecordAtOrAfter(topic: string, partition: number, offset: number, ts: number): Promise<{ offset: number; timestamp: number } | null> {
    try {
      const r = await this.backend.fetch(topic, partition, offset, 1);
      if (r.records.length < 61) return null;
      const one = r.records.subarray(0, r.records.readInt32BE(8) + 12);
      const codec = one.readInt16BE(21) & 0x07;
      if (codec !== 0 && codec !== 1) return null;
      const hit = decodeRecordBatches(one).find((x) => x.offset >= offset && x.timestamp >= ts);
      return hit ? { offset: hit.offset, timestamp: hit.timestamp } : null;
    } catch (err) {
      // the batch-level answer stands; say why it could not be refined
      this.log.warn({ err, topic, partition, offset, timestamp: ts }, 'ListOffsets: could not refine the by-time offset inside its batch');
      return null;
    }
  }

  async createTopics(req: CreateTopicsRequest): Promise<CreateTopicsResponse> {
    const counts = new Map<string, number>();
    for (const t of req.topics) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
    const topics: CreateTopicsResponseTopic[] = [];
    for (const t of req.topics) {
      const base: CreateTopicsResponseTopic = {
        name: t.name,
        topicId: '00000000-0000-0000-0000-000000000000',
        errorCode: 0,
        errorMessage: null,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
      };
      if ((counts.get(t.name) ?? 0) > 1) {
        topics.push({ ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `topic ${t.name} appears more than once in the request` });
        continue;
      }
      const configs: Record<string, string | null> = {};
      for (const c of t.configs) configs[c.name] = c.value;
      try {
        const r = await this.backend.createTopic({
          name: t.name,
          numPartitions: t.numPartitions,
          replicationFactor: t.replicationFactor,
          assignments: t.assignments.map((a) => ({ partition: a.partitionIndex, brokerIds: a.brokerIds })),
          configs,
          validateOnly: req.validateOnly,
        });
        topics.push({
          ...base,
          topicId: r.topicId,
          numPartitions: r.numPartitions,
          replicationFactor: r.replicationFactor,
          configs: r.configs.map((c) => ({ name: c.name, value: c.value, readOnly: c.readOnly, configSource: CONFIG_SOURCE[c.source], isSensitive: c.isSensitive })),
        });
      } catch (err) {
        const e = errorOf(err);
        topics.push({ ...base, errorCode: e.code, errorMessage: e.message });
      }
    }
    return { throttleTimeMs: 0, topics };
  }

  async deleteTopics(req: DeleteTopicsRequest, version: number): Promise<DeleteTopicsResponse> {
    const wanted: Array<{ name: string | null; topicId: string }> =
      version >= 6 ? req.topics : req.topicNames.map((name) => ({ name, topicId: '00000000-0000-0000-0000-000000000000' }));
    const responses: DeleteTopicsResponse['responses'] = [];
    for (const w of wanted) {
      const t = w.name !== null ? this.backend.getTopic(w.name) : this.backend.getTopicById(w.topicId);
      if (!t) {
        responses.push({
          name: w.name,
          topicId: w.topicId,
          errorCode: w.name !== null ? KafkaError.UNKNOWN_TOPIC_OR_PARTITION : KafkaError.UNKNOWN_TOPIC_ID,
          errorMessage: `NOT_FOUND: topic ${w.name ?? w.topicId} does not exist`,
        });
        continue;
      }
      try {
        await this.backend.deleteTopic(t.name);
        responses.push({ name: t.name, topicId: t.topicId, errorCode: 0, errorMessage: null });
      } catch (err) {
        const e = errorOf(err);
        responses.push({ name: t.name, topicId: t.topicId, errorCode: e.code, errorMessage: e.message });
      }
    }
    return { throttleTimeMs: 0, responses };
  }

  async createPartitions(req: CreatePartitionsRequest): Promise<CreatePartitionsResponse> {
    const known = new Set(this.backend.brokers().map((x) => x.nodeId));
    const results: CreatePartitionsResponse['results'] = [];
    for (const t of req.topics) {
      const badBroker = (t.assignments ?? []).flatMap((a) => a.brokerIds).find((id) => !known.has(id));
      if (badBroker !== undefined) {
        results.push({ name: t.name, errorCode: KafkaError.INVALID_REPLICA_ASSIGNMENT, errorMessage: `assignments: unknown broker id ${badBroker}` });
        continue;
      }
      try {
        await this.backend.createPartitions(t.name, t.count, req.validateOnly);
        results.push({ name: t.name, errorCode: 0, errorMessage: null });
      } catch (err) {
        const e = errorOf(err);
        results.push({ name: t.name, errorCode: e.code, errorMessage: e.message });
      }
    }
    return { throttleTimeMs: 0, results };
  }

  async describeConfigs(req: DescribeConfigsRequest, version: number): Promise<DescribeConfigsResponse> {
    const results: DescribeConfigsResponse['results'] = [];
    for (const res of req.resources) {
      const base = { errorCode: 0, errorMessage: null as string | null, resourceType: res.resourceType, resourceName: res.resourceName, configs: [] as DescribeConfigsResponseConfig[] };
      try {
        let entries: ConfigEntry[];
        if (res.resourceType === ResourceType.TOPIC) entries = await this.backend.describeTopicConfigs(res.resourceName);
        else if (res.resourceType === ResourceType.BROKER) {
          if (res.resourceName !== '' && res.resourceName !== String(this.backend.nodeId)) {
            results.push({ ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `resourceName: broker ${res.resourceName} is not this broker (${this.backend.nodeId})` });
            continue;
          }
          entries = await this.backend.describeBrokerConfigs();
        } else {
          results.push({ ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `resourceType ${res.resourceType} is not supported (2 = topic, 4 = broker)` });
          continue;
        }
        const keys = res.configurationKeys;
        const selected = keys === null || keys.length === 0 ? entries : entries.filter((e) => keys.includes(e.name));
        base.configs = selected.map((c) => ({
          name: c.name,
          value: c.value,
          readOnly: c.readOnly,
          isDefault: c.isDefault,
          configSource: CONFIG_SOURCE[c.source],
          isSensitive: c.isSensitive,
          synonyms: req.includeSynonyms && version >= 1 ? [{ name: c.name, value: c.value, source: CONFIG_SOURCE[c.source] }] : [],
          configType: CONFIG_TYPE[c.type],
          documentation: req.includeDocumentation ? c.documentation : null,
        }));
        results.push(base);
      } catch (err) {
        const e = errorOf(err);
        results.push({ ...base, errorCode: e.code, errorMessage: e.message });
      }
    }
    return { throttleTimeMs: 0, results };
  }

  async alterConfigs(req: AlterConfigsRequest): Promise<AlterConfigsResponse> {
    const responses: AlterConfigsResponse['responses'] = [];
    for (const res of req.resources) {
      const base = { errorCode: 0, errorMessage: null as string | null, resourceType: res.resourceType, resourceName: res.resourceName };
      if (res.resourceType !== ResourceType.TOPIC) {
        responses.push({ ...base, errorCode: KafkaError.INVALID_REQUEST, errorMessage: `resourceType ${res.resourceType}: only topic configs can be altered (broker settings live in lance.yaml)` });
        continue;
      }
      const configs: Record<string, string | null> = {};
      for (const c of res.configs) configs[c.name] = c.value;
      try {
        await this.backend.alterTopicConfigs(res.resourceName, configs, req.validateOnly);
        responses.push(base);
      } catch (err) {
        const e = errorOf(err);
        responses.push({ ...base, errorCode: e.code, errorMessage: e.message });
      }
    }
    return { throttleTimeMs: 0, responses };
  }

  describeCluster(): DescribeClusterResponse {
    const b = this.backend;
    return {
      throttleTimeMs: 0,
      errorCode: 0,
      errorMessage: null,
      endpointType: 1,
      clusterId: b.clusterId,
      controllerId: b.controllerId(),
      brokers: b.brokers().map((x) => ({ brokerId: x.nodeId, host: x.host, port: x.port, rack: x.rack })),
      clusterAuthorizedOperations: -2147483648,
    };
  }

  findCoordinator(req: FindCoordinatorRequest, version: number): FindCoordinatorResponse {
    const message = 'consumer groups and transactions are not supported by this broker version';
    const code = KafkaError.UNSUPPORTED_VERSION;
    return {
      throttleTimeMs: 0,
      errorCode: code,
      errorMessage: message,
      nodeId: -1,
      host: '',
      port: -1,
      coordinators: version >= 4 ? req.coordinatorKeys.map((key) => ({ key, nodeId: -1, host: '', port: -1, errorCode: code, errorMessage: message })) : [],
    };
  }
}
