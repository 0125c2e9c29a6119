/**
 * LanceRestore (lance.dev/v1alpha1): restore a cluster from the object store, optionally to a point in time.
 * A restore is a one-shot request (like a Job), so the fields that define what is restored are immutable.
 */
import { z } from 'zod';
import {
  API_VERSION,
  conditionListMeta,
  conditionSchema,
  credentialsSecret,
  dnsLabel,
  endpointUrl,
  objectMeta,
  parseWith,
  safeParseWith,
  timestamp,
  type ParseResult,
} from './common.ts';
import { lanceClusterSpec, restorePoint } from './lancecluster.ts';

export const LANCERESTORE_KIND = 'LanceRestore';
export const LANCERESTORE_PLURAL = 'lancerestores';
export const LANCERESTORE_SINGULAR = 'lancerestore';
export const LANCERESTORE_SHORT_NAMES = ['lrs'] as const;

const immutable = (what: string) => ({
  'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: `${what} is immutable` }],
});

/** Kafka topic name rules: 1–249 of [a-zA-Z0-9._-]. */
export const topicName = z.string().min(1).max(249).regex(/^[a-zA-Z0-9._-]+$/, 'must be a topic name: letters, digits, ".", "_" and "-"');

export const restoreSource = z
  .strictObject({
    backend: z.enum(['s3', 'file']).default('s3'),
    bucket: z.string().min(3).max(63).regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'must be an S3 bucket name').optional(),
    path: z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path').optional().describe('Directory (backend file).'),
    prefix: z.string().max(1024).default('').describe('Key prefix the source cluster wrote under.'),
    endpoint: endpointUrl.optional().describe('S3 endpoint URL; AWS when unset.'),
    region: z.string().min(1).max(64).default('us-east-1'),
    forcePathStyle: z.boolean().default(false),
    credentialsSecret: credentialsSecret.optional(),
  })
  .superRefine((o, ctx) => {
    if (o.backend === 's3' && o.bucket === undefined) ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'is required when backend is s3' });
    if (o.backend === 'file' && o.path === undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'is required when backend is file' });
  })
  .meta({
    'x-kubernetes-validations': [
      { rule: "self.backend != 's3' || has(self.bucket)", message: 'bucket is required when backend is s3', fieldPath: '.bucket' },
      { rule: "self.backend != 'file' || has(self.path)", message: 'path is required when backend is file', fieldPath: '.path' },
      { rule: 'self == oldSelf', message: 'source is immutable' },
    ],
  })
  .describe('Where the restore points are: the object-store settings of the cluster that wrote them.');
export type RestoreSource = z.output<typeof restoreSource>;

export const restoreTarget = z
  .strictObject({
    clusterName: dnsLabel.max(52).meta(immutable('target.clusterName')).describe('LanceCluster to restore into.'),
    spec: lanceClusterSpec.optional().describe('Spec of a new LanceCluster the restore creates.'),
    existing: z
      .boolean()
      .optional()
      .describe('Restore into an existing LanceCluster that has no data; refused with a condition if it has any.'),
  })
  .superRefine((t, ctx) => {
    if ((t.spec !== undefined) === (t.existing === true)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of target.spec (create a new cluster) or target.existing: true' });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: 'has(self.spec) != (has(self.existing) && self.existing)',
        message: 'set exactly one of spec (create a new cluster) or existing: true',
      },
    ],
  });
export type RestoreTarget = z.output<typeof restoreTarget>;

export const lanceRestoreSpec = z
  .strictObject({
    source: restoreSource.optional(),
    clusterRef: z
      .strictObject({ name: dnsLabel.describe('LanceCluster in the same namespace whose objectStore settings are the source.') })
      .meta(immutable('clusterRef'))
      .optional(),
    pointInTime: timestamp
      .optional()
      .meta(immutable('pointInTime'))
      .describe('RFC 3339 time: restore the newest restore point at or before it and drop later records. Latest when unset.'),
    topics: z.array(topicName).max(1000).optional().meta(immutable('topics')).describe('Restore only these topics; all when unset.'),
    target: restoreTarget,
  })
  .superRefine((s, ctx) => {
    if ((s.source !== undefined) === (s.clusterRef !== undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of source or clusterRef' });
    }
  })
  .meta({
    'x-kubernetes-validations': [
      { rule: 'has(self.source) != has(self.clusterRef)', message: 'set exactly one of source or clusterRef' },
    ],
  })
  .describe('What to restore and where.');
export type LanceRestoreSpec = z.output<typeof lanceRestoreSpec>;
export type LanceRestoreSpecInput = z.input<typeof lanceRestoreSpec>;

export const LANCERESTORE_PHASES = ['Pending', 'Restoring', 'Starting', 'Succeeded', 'Failed'] as const;
export type LanceRestorePhase = (typeof LANCERESTORE_PHASES)[number];

export const LANCERESTORE_CONDITION_TYPES = ['Ready', 'Progressing', 'Failed', 'TargetNotEmpty'] as const;
export type LanceRestoreConditionType = (typeof LANCERESTORE_CONDITION_TYPES)[number];

export const lanceRestoreCondition = conditionSchema(LANCERESTORE_CONDITION_TYPES);
export type LanceRestoreCondition = z.output<typeof lanceRestoreCondition>;

export const lanceRestoreStatus = z
  .object({
    phase: z.enum(LANCERESTORE_PHASES).optional(),
    conditions: z.array(lanceRestoreCondition).max(16).optional().meta(conditionListMeta),
    observedGeneration: z.int().nonnegative().optional(),
    restorePoint: restorePoint.optional().describe('The restore point chosen.'),
    topicsRestored: z.int().nonnegative().optional(),
    bytesRestored: z.int().nonnegative().optional(),
    jobNames: z.array(z.string().max(253)).max(99).optional().describe('Restore Jobs created, one per broker PVC.'),
    startTime: timestamp.optional(),
    completionTime: timestamp.optional(),
  })
  .describe('Observed state, written by the operator.');
export type LanceRestoreStatus = z.output<typeof lanceRestoreStatus>;

export const lanceRestore = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(LANCERESTORE_KIND),
  metadata: objectMeta,
  spec: lanceRestoreSpec,
  status: lanceRestoreStatus.optional(),
});
export type LanceRestore = z.output<typeof lanceRestore>;
export type LanceRestoreInput = z.input<typeof lanceRestore>;

export function safeParseLanceRestoreSpec(input: unknown): ParseResult<LanceRestoreSpec> {
  return safeParseWith(lanceRestoreSpec, input, 'spec', 'LanceRestore spec');
}

export function parseLanceRestoreSpec(input: unknown): LanceRestoreSpec {
  return parseWith(lanceRestoreSpec, input, 'spec', 'LanceRestore spec');
}

export function safeParseLanceRestore(input: unknown): ParseResult<LanceRestore> {
  return safeParseWith(lanceRestore, input, '', 'LanceRestore');
}

export function parseLanceRestore(input: unknown): LanceRestore {
  return parseWith(lanceRestore, input, '', 'LanceRestore');
}

export function parseLanceRestoreStatus(input: unknown): LanceRestoreStatus {
  return parseWith(lanceRestoreStatus, input, 'status', 'LanceRestore status');
}
