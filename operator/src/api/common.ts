/**
 * Building blocks shared by the LanceCluster and LanceRestore schemas, and the parse helpers that turn zod issues
 * into field-named errors.
 *
 * Every regex here is also copied into the generated CRD as an openAPI `pattern`, which the kube-apiserver evaluates
 * with Go's RE2: no lookaround, no backreferences (crds.test.ts checks this).
 */
import { z } from 'zod';

export const GROUP = 'lance.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Kubernetes' own quantity grammar (resource.Quantity), without the sign: sizes and requests are never negative. */
export const QUANTITY_PATTERN =
  /^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

/**
 * A Kubernetes quantity ("10Gi", "500m", 2). YAML users write both numbers and strings, so the CRD declares it
 * int-or-string (like the built-in types do). No zod transform to string here: a transform inside an object makes
 * z.toJSONSchema drop that object's default from the CRD; builders call `quantityString`.
 */
export const quantity = z
  .union([z.int().nonnegative(), z.string().regex(QUANTITY_PATTERN, 'must be a Kubernetes quantity such as 10Gi, 500m or 2')])
  .meta({
    'x-kubernetes-int-or-string': true,
    // The int-or-string idiom must be exactly anyOf [{type: integer}, {type: string}] (no minimum inside), so the
    // non-negative check on the integer form is a CEL rule. string() takes both forms (the value is dyn); the
    // string pattern already excludes a sign.
    'x-kubernetes-validations': [{ rule: "!string(self).startsWith('-')", message: 'must not be negative' }],
  });
export type Quantity = z.output<typeof quantity>;

export function quantityString(q: Quantity): string {
  return String(q);
}

/** RFC 1123 DNS label: names of Services, pods and most namespaced objects derived from the cluster name. */
export const DNS_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain: ConfigMap/Secret/StorageClass names. */
export const DNS_SUBDOMAIN_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const dnsLabel = z.string().min(1).max(63).regex(DNS_LABEL_PATTERN, 'must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit');
export const dnsSubdomain = z.string().min(1).max(253).regex(DNS_SUBDOMAIN_PATTERN, 'must be a DNS subdomain: lower-case letters, digits, "-" and "."');

/**
 * A container image reference: [registry[:port]/]path[:tag][@sha256:digest]. Repository path components are lower
 * case (the OCI distribution grammar); tags are up to 128 word characters, dots and dashes.
 */
export const IMAGE_PATTERN =
  /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?\/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(\/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

export const image = z
  .string()
  .min(1)
  .max(512)
  .regex(IMAGE_PATTERN, 'must be an image reference such as registry.example.com/lance/broker:0.1.0 (lower-case repository, optional :tag and @sha256:digest)');

/** A Go-style duration made of whole units ("10s", "1m30s", "500ms"). */
export const DURATION_PATTERN = /^([0-9]+(ms|s|m|h))+$/;
export const duration = z.string().max(64).regex(DURATION_PATTERN, 'must be a duration such as 500ms, 10s, 5m or 1h30m');

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Converts a duration accepted by `duration` to milliseconds. */
export function durationToMs(d: string): number {
  if (!DURATION_PATTERN.test(d)) throw new SpecError([{ path: '', message: `"${d}" is not a duration`, code: 'invalid_format' }]);
  let total = 0;
  for (const m of d.matchAll(/([0-9]+)(ms|s|m|h)/g)) total += Number(m[1]) * DURATION_UNIT_MS[m[2]];
  return total;
}

/** An http(s) URL with a host (what the broker's object-store config accepts as an S3 endpoint). */
export const endpointUrl = z
  .string()
  .max(2048)
  .regex(/^https?:\/\/[^\s/?#]+([/?#]\S*)?$/, 'must be an http:// or https:// URL such as http://minio:9000');

/** RFC 3339 timestamp with a zone ("2026-11-22T10:00:00Z" or "...+01:00"). */
export const timestamp = z.iso.datetime({ offset: true });

export const port = z.int().min(1).max(65535);

/** Free-form object passed through to Kubernetes as-is (affinity, securityContext...); the apiserver validates it
 * when the StatefulSet is written. */
export const freeFormObject = z.record(z.string(), z.unknown());

export const stringMap = z.record(z.string(), z.string());

/** Reference to keys of a Secret in the same namespace. */
export const credentialsSecret = z
  .strictObject({
    name: dnsSubdomain.describe('Secret in the same namespace holding the object-store credentials.'),
    accessKeyIdKey: z.string().min(1).max(253).default('accessKeyId').describe('Key of the access key id in the Secret.'),
    secretAccessKeyKey: z.string().min(1).max(253).default('secretAccessKey').describe('Key of the secret access key in the Secret.'),
  })
  .describe('Secret with S3 credentials; injected into pods as environment variables, never written to a ConfigMap.');
export type CredentialsSecret = z.output<typeof credentialsSecret>;

// ---- Conditions (metav1.Condition shape) ----

export const CONDITION_REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

export function conditionSchema<T extends readonly [string, ...string[]]>(types: T) {
  return z.object({
    type: z.enum(types).describe('Condition type.'),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string().min(1).max(1024).regex(CONDITION_REASON_PATTERN, 'must be CamelCase'),
    message: z.string().max(32768).default(''),
    lastTransitionTime: timestamp,
    observedGeneration: z.int().nonnegative().optional().describe('metadata.generation the condition was computed from.'),
  });
}

/** Meta marking a list of conditions as a map keyed by `type` (server-side apply merges by key). */
export const conditionListMeta = {
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
} as const;

// ---- Errors and parse helpers ----

export interface FieldIssue {
  /** Dotted path from the object root, e.g. `spec.storage.size` or `spec.topics[2]`. */
  path: string;
  message: string;
  /** zod issue code (`invalid_type`, `too_small`, `custom`, ...). */
  code: string;
}

/**
 * A custom resource rejected by its schema. The operator cannot import the broker's LanceError (it may import
 * only the admin client), so it has its own error with the same shape: a stable code and details.
 */
export class SpecError extends Error {
  readonly code = 'INVALID_SPEC' as const;
  readonly issues: readonly FieldIssue[];

  constructor(issues: readonly FieldIssue[], subject = 'spec') {
    super(`invalid ${subject}: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
    this.name = 'SpecError';
    this.issues = issues;
  }

  toJSON(): { code: 'INVALID_SPEC'; message: string; details: { issues: readonly FieldIssue[] } } {
    return { code: this.code, message: this.message, details: { issues: this.issues } };
  }
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: SpecError };

export function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

export function issuesOf(error: z.ZodError, prefix: string): FieldIssue[] {
  return error.issues.map((i) => ({ path: formatPath(prefix, i.path), message: i.message, code: i.code }));
}

/** Parses `input` with `schema`; on failure the error names every offending field, prefixed with `prefix`. */
export function safeParseWith<S extends z.ZodType>(schema: S, input: unknown, prefix: string, subject: string): ParseResult<z.output<S>> {
  const r = schema.safeParse(input);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, error: new SpecError(issuesOf(r.error, prefix), subject) };
}

export function parseWith<S extends z.ZodType>(schema: S, input: unknown, prefix: string, subject: string): z.output<S> {
  const r = safeParseWith(schema, input, prefix, subject);
  if (!r.ok) throw r.error;
  return r.value;
}

/** ObjectMeta fields the operator reads; everything else the apiserver sends is kept. */
export const objectMeta = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().min(1).optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  resourceVersion: z.string().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
});
export type ObjectMeta = z.output<typeof objectMeta>;
