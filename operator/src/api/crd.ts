/**
 * CustomResourceDefinitions generated from the zod schemas (pure: no I/O; scripts/gen-crds.ts writes the files and
 * crds.test.ts compares them with a fresh render).
 *
 * z.toJSONSchema gives JSON Schema; the apiserver wants a *structural* OpenAPI v3 schema: every node typed, no $ref,
 * no `additionalProperties` beside `properties`, no unions except the int-or-string idiom, Go RE2 patterns, free-form
 * maps marked `x-kubernetes-preserve-unknown-fields`. `toStructural` converts and `structuralProblems` checks.
 */
import { z } from 'zod';
import { stringify } from 'yaml';
import { GROUP, VERSION } from './common.ts';
import {
  LANCECLUSTER_KIND,
  LANCECLUSTER_PLURAL,
  LANCECLUSTER_SHORT_NAMES,
  LANCECLUSTER_SINGULAR,
  lanceClusterSpec,
  lanceClusterStatus,
} from './lancecluster.ts';
import {
  LANCERESTORE_KIND,
  LANCERESTORE_PLURAL,
  LANCERESTORE_SHORT_NAMES,
  LANCERESTORE_SINGULAR,
  lanceRestoreSpec,
  lanceRestoreStatus,
} from './lancerestore.ts';

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this generator emits. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps;
  required?: string[];
  items?: JSONSchemaProps;
  anyOf?: JSONSchemaProps[];
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: ValidationRule[];
}

export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
  optionalOldSelf?: boolean;
}

/** Keywords JSONSchemaProps has and a structural schema may use. Anything else in zod's output is a bug to fix. */
const ALLOWED_KEYS = new Set<string>([
  'type', 'description', 'properties', 'additionalProperties', 'required', 'items', 'anyOf', 'enum', 'default',
  'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'minItems', 'maxItems', 'minProperties', 'maxProperties', 'nullable', 'title', 'example',
  'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys', 'x-kubernetes-validations', 'x-kubernetes-map-type', 'x-kubernetes-embedded-resource',
]);

/** Keys zod emits that carry no meaning for Kubernetes and are dropped. */
const DROPPED_KEYS = new Set<string>(['$schema', '$id', 'id', 'propertyNames', 'examples']);

const SAFE_INT = Number.MAX_SAFE_INTEGER;

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(path: string, what: string): never {
  throw new Error(`CRD generation: ${path || '<root>'}: ${what}`);
}

/** Converts one node of zod's OpenAPI 3.0 output into a structural schema node. */
export function toStructuralNode(node: unknown, path = ''): JSONSchemaProps {
  if (!isObj(node)) fail(path, 'schema node is not an object');
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (DROPPED_KEYS.has(k)) continue;
    if (k === '$ref' || k === '$defs' || k === 'definitions') fail(path, `${k} is not allowed in a structural schema (generate with reused: "inline")`);
    if (k === 'const') {
      out.enum = [v];
      continue;
    }
    out[k] = v;
  }

  // Integers: zod bounds z.int() by ±2^53-1; Kubernetes integers are int64 already, so those bounds are noise.
  if (out.type === 'integer') {
    if (out.maximum === SAFE_INT) delete out.maximum;
    if (out.minimum === -SAFE_INT) delete out.minimum;
  }
  // RFC 3339 timestamps: the apiserver checks `format: date-time` itself; zod's long regex adds nothing.
  if (out.format === 'date-time') delete out.pattern;
  // JS serializes "/" in a regex source as "\/"; plain "/" means the same in RE2 and reads better.
  if (typeof out.pattern === 'string') out.pattern = out.pattern.replaceAll('\\/', '/');

  if (out['x-kubernetes-int-or-string'] === true) {
    // The idiom the apiserver accepts: anyOf [{type: integer}, {type: string}] with the string pattern lifted up.
    const branches = Array.isArray(out.anyOf) ? out.anyOf.filter(isObj) : [];
    const str = branches.find((b) => b.type === 'string');
    const int = branches.find((b) => b.type === 'integer');
    if (!str || !int || branches.length !== 2) fail(path, 'x-kubernetes-int-or-string needs a union of exactly an integer and a string');
    // Exactly the idiom of the built-in quantity fields; a negative integer is left to the operator's zod check.
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    if (typeof str.pattern === 'string') out.pattern = str.pattern.replaceAll('\\/', '/');
    delete out.type;
    return ordered(out);
  }

  if (out['x-kubernetes-preserve-unknown-fields'] === true) {
    // A free-form map: values are whatever the user wrote. The type stays (object), the value schema goes, because
    // `additionalProperties: {}` is untyped and a union of scalars is not structural.
    if (out.type === undefined) out.type = 'object';
    delete out.additionalProperties;
  }

  if (out.anyOf !== undefined) fail(path, 'unions are not structural; use the int-or-string idiom or a preserve-unknown-fields map');
  if (out.oneOf !== undefined || out.allOf !== undefined || out.not !== undefined) fail(path, 'oneOf/allOf/not are not generated');

  if (isObj(out.properties)) {
    const props: Record<string, JSONSchemaProps> = {};
    for (const [name, child] of Object.entries(out.properties)) props[name] = toStructuralNode(child, `${path}.${name}`);
    out.properties = props;
    // additionalProperties: false (strict objects) is forbidden; unknown fields are pruned by the apiserver anyway.
    if (out.additionalProperties === false) delete out.additionalProperties;
  }
  if (out.additionalProperties !== undefined) {
    if (out.additionalProperties === false || out.additionalProperties === true) delete out.additionalProperties;
    else out.additionalProperties = toStructuralNode(out.additionalProperties, `${path}[*]`);
  }
  if (out.items !== undefined) out.items = toStructuralNode(out.items, `${path}[]`);
  return ordered(out);
}

/** Canonical key order, so the YAML reads type → docs → constraints → children → extensions. */
const KEY_ORDER = [
  'type', 'description', 'default', 'enum', 'format', 'pattern', 'minLength', 'maxLength', 'minimum', 'exclusiveMinimum',
  'maximum', 'exclusiveMaximum', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'nullable', 'anyOf', 'properties', 'required', 'additionalProperties',
  'items',
];

function ordered(node: Json): JSONSchemaProps {
  const rank = (k: string): number => {
    const i = KEY_ORDER.indexOf(k);
    return i >= 0 ? i : KEY_ORDER.length + (k.startsWith('x-') ? 1 : 0);
  };
  const keys = Object.keys(node).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const out: Json = {};
  for (const k of keys) out[k] = node[k];
  return out as JSONSchemaProps;
}

/** Generates the structural schema of a zod schema (its input side: what users write, defaults included). */
export function toStructural(schema: z.ZodType): JSONSchemaProps {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0', reused: 'inline', cycles: 'throw', unrepresentable: 'throw' });
  return toStructuralNode(json);
}

/** Features of a regex that Go's RE2 (the apiserver's `pattern` engine) rejects. */
const NON_RE2 = [/\(\?[=!]/, /\(\?<[=!]/, /\\[1-9]/, /\(\?<[A-Za-z]/];

/**
 * Checks a schema against Kubernetes' structural-schema rules (and our own: RE2 patterns, typed list-map keys).
 * Returns one message per problem, each naming the JSON path; empty means structural.
 */
export function structuralProblems(node: JSONSchemaProps, path = '', insideJunctor = false): string[] {
  const problems: string[] = [];
  const p = path || '<root>';
  const raw = node as Json;
  for (const k of Object.keys(raw)) if (!ALLOWED_KEYS.has(k)) problems.push(`${p}: keyword "${k}" is not allowed`);
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;

  if (insideJunctor) {
    for (const k of ['description', 'default', 'additionalProperties', 'nullable'] as const) {
      if (node[k] !== undefined) problems.push(`${p}: "${k}" is not allowed inside anyOf`);
    }
  } else if (node.type === undefined && !intOrString && !preserve) {
    problems.push(`${p}: has no type`);
  }
  if (node.properties !== undefined && node.additionalProperties !== undefined) problems.push(`${p}: properties and additionalProperties are mutually exclusive`);
  if ((node as { additionalProperties?: unknown }).additionalProperties === false) problems.push(`${p}: additionalProperties: false is not allowed`);
  if (node.type === 'array' && node.items === undefined) problems.push(`${p}: array without items`);
  if (node.anyOf !== undefined && !intOrString) problems.push(`${p}: anyOf is only generated for int-or-string`);
  if (intOrString) {
    // The apiserver recognizes the idiom only in exactly this form; anything more inside anyOf is not structural.
    if (node.type !== undefined || JSON.stringify(node.anyOf) !== '[{"type":"integer"},{"type":"string"}]') {
      problems.push(`${p}: int-or-string must be exactly anyOf [{type: integer}, {type: string}] without a type`);
    }
  }
  if (typeof node.pattern === 'string') {
    if (NON_RE2.some((re) => re.test(node.pattern as string))) problems.push(`${p}: pattern uses lookaround/backreferences, which RE2 rejects`);
    try {
      new RegExp(node.pattern);
    } catch {
      problems.push(`${p}: pattern does not compile`);
    }
  }
  if (node['x-kubernetes-list-type'] === 'map') {
    const keys = node['x-kubernetes-list-map-keys'] ?? [];
    const req = node.items?.required ?? [];
    if (keys.length === 0) problems.push(`${p}: list-type map needs list-map-keys`);
    for (const key of keys) {
      if (!req.includes(key)) problems.push(`${p}: list-map key "${key}" must be a required property of the items`);
      if (node.items?.properties?.[key]?.type === undefined) problems.push(`${p}: list-map key "${key}" must be a typed scalar`);
    }
  }
  for (const r of node['x-kubernetes-validations'] ?? []) {
    if (typeof r.rule !== 'string' || r.rule.length === 0) problems.push(`${p}: x-kubernetes-validations entry without a rule`);
  }
  for (const [name, child] of Object.entries(node.properties ?? {})) problems.push(...structuralProblems(child, `${path}.${name}`));
  for (const name of node.required ?? []) if (!node.properties?.[name]) problems.push(`${p}: required "${name}" is not a property`);
  if (node.additionalProperties) problems.push(...structuralProblems(node.additionalProperties, `${path}[*]`));
  if (node.items) problems.push(...structuralProblems(node.items, `${path}[]`));
  for (const [i, b] of (node.anyOf ?? []).entries()) problems.push(...structuralProblems(b, `${path}.anyOf[${i}]`, true));
  return problems;
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    scope: 'Namespaced';
    names: { kind: string; plural: string; singular: string; listKind: string; shortNames: string[]; categories: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources: {
        status: Record<string, never>;
        scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
      };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: JSONSchemaProps };
    }>;
  };
}

interface CrdInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  rootRules: ValidationRule[];
  columns: PrinterColumn[];
  scale: boolean;
}

function buildCrd(c: CrdInput): CustomResourceDefinition {
  const openAPIV3Schema: JSONSchemaProps = {
    type: 'object',
    description: c.description,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object.' },
      kind: { type: 'string', description: 'Kind of this object.' },
      // No `metadata` entry: the apiserver manages ObjectMeta itself (and still gives root CEL rules
      // self.metadata.name); declaring it adds nothing, and the test/kube stand-in would prune its fields.
      spec: toStructural(c.spec),
      status: toStructural(c.status),
    },
    required: ['spec'],
  };
  if (c.rootRules.length > 0) openAPIV3Schema['x-kubernetes-validations'] = c.rootRules;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${c.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'lance-operator', 'app.kubernetes.io/part-of': 'lance' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: c.kind,
        plural: c.plural,
        singular: c.singular,
        listKind: `${c.kind}List`,
        shortNames: [...c.shortNames],
        categories: ['lance'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: c.scale
            ? { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' } }
            : { status: {} },
          additionalPrinterColumns: c.columns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

export function lanceClusterCrd(): CustomResourceDefinition {
  return buildCrd({
    kind: LANCECLUSTER_KIND,
    plural: LANCECLUSTER_PLURAL,
    singular: LANCECLUSTER_SINGULAR,
    shortNames: LANCECLUSTER_SHORT_NAMES,
    description: 'A Lance broker cluster: a replicated, Kafka-compatible log with object-store disaster recovery.',
    spec: lanceClusterSpec,
    status: lanceClusterStatus,
    rootRules: [
      {
        // StatefulSet pods get a controller-revision-hash label "<name>-<hash>" that must fit in 63 characters.
        rule: 'size(self.metadata.name) <= 52',
        message: 'metadata.name must be at most 52 characters (pod and Service names are derived from it)',
      },
    ],
    columns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Ready', type: 'string', jsonPath: '.status.ready', description: 'Ready brokers / brokers.' },
      { name: 'Leader', type: 'string', jsonPath: '.status.leader', description: 'Pod leading the metadata group.' },
      { name: 'Term', type: 'integer', jsonPath: '.status.controllerTerm', description: 'Raft term of the metadata group.' },
      { name: 'Image', type: 'string', jsonPath: '.spec.image', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    scale: true,
  });
}

export function lanceRestoreCrd(): CustomResourceDefinition {
  return buildCrd({
    kind: LANCERESTORE_KIND,
    plural: LANCERESTORE_PLURAL,
    singular: LANCERESTORE_SINGULAR,
    shortNames: LANCERESTORE_SHORT_NAMES,
    description: 'Restores a LanceCluster from its object store, optionally to a point in time.',
    spec: lanceRestoreSpec,
    status: lanceRestoreStatus,
    rootRules: [],
    columns: [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Target', type: 'string', jsonPath: '.spec.target.clusterName' },
      { name: 'Restore-Point', type: 'string', jsonPath: '.status.restorePoint.time', description: 'Time of the restore point chosen.' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    scale: false,
  });
}

const HEADER = '# Generated by `npm run gen:crds` (scripts/gen-crds.ts) from operator/src/api. Do not edit.\n';

export function renderCrdYaml(crd: CustomResourceDefinition): string {
  // lineWidth 0: never fold long strings, so the output is stable and diffs stay readable.
  return HEADER + stringify(crd, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Every generated file, relative to the repository root. */
export function generatedCrdFiles(): Array<{ path: string; content: string }> {
  return [
    { path: 'crds/lanceclusters.yaml', content: renderCrdYaml(lanceClusterCrd()) },
    { path: 'crds/lancerestores.yaml', content: renderCrdYaml(lanceRestoreCrd()) },
  ];
}
