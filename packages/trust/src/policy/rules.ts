import { TrustMeshError } from '@trustmesh/protocol';
import { z } from 'zod';
import { TIER_NAMES, type Tier } from '../tiers.ts';
import type { RateLimit } from './rate-limiter.ts';

/**
 * A JSON Schema (draft 2020-12 subset that zod's `fromJSONSchema` accepts:
 * local `$ref` only; no `not`, `if`/`then`/`else`, `unevaluated*`). Plain data,
 * so a rule can sit in a config file and be sent to the broker, which
 * re-checks a reported frame against the very same rule.
 */
export type JsonSchema = { readonly [key: string]: unknown } | boolean;

/**
 * Rules for one scope (the whole mesh, or one message type). Every rule is
 * optional; all present rules must hold. Plain data: see docs/trust.md §Policy rules.
 */
export interface RuleSet {
  /** Lowest sender tier accepted. Mesh default: `probationary` (untrusted senders are refused). */
  readonly minTier?: Tier;
  /** If present, only these senders: a listed DID, or one that announced a listed capability in presence. */
  readonly allow?: { readonly dids?: readonly string[]; readonly capabilities?: readonly string[] };
  /** Frames per sender: token bucket of `burst` (default `count`) refilled at `count` per `perMs`. */
  readonly rate?: RateLimit;
  /** Largest frame, in bytes of the whole signed frame. */
  readonly maxBytes?: number;
  /** The payload (`data`) must match: a JSON Schema (data), or a zod schema (code only, not publishable). */
  readonly schema?: JsonSchema | z.ZodType;
}

/** A receiver's policy: rules for every frame, and rules per message type (`typ`). Both apply. */
export interface PolicyRules {
  readonly mesh?: RuleSet;
  readonly types?: { readonly [typ: string]: RuleSet };
}

/** A policy rule set is invalid; `field` is its path (e.g. `types.task.run.rate.count`). */
export class PolicyRuleError extends TrustMeshError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('invalid_policy_rule', `policy rules: ${field}: ${message}`, options);
    this.name = 'PolicyRuleError';
    this.field = field;
  }
}

const positive = z.number().positive().finite();
const positiveInt = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const ruleSetSchema = z.strictObject({
  minTier: z.enum(TIER_NAMES).optional(),
  allow: z
    .strictObject({
      dids: z.array(z.string().min(1)).optional(),
      capabilities: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  rate: z
    .strictObject({
      count: positive,
      perMs: positive,
      burst: z.number().min(1).finite().optional(),
    })
    .optional(),
  maxBytes: positiveInt.optional(),
  schema: z.union([z.boolean(), z.custom<z.ZodType>((v) => v instanceof z.ZodType), z.record(z.string(), z.unknown())]).optional(),
});

const rulesSchema = z.strictObject({
  mesh: ruleSetSchema.optional(),
  types: z.record(z.string().min(1), ruleSetSchema).optional(),
});

/** A rule set ready to check: the schema compiled to a zod validator. */
export interface CompiledRuleSet {
  readonly scope: string;
  readonly minTier: Tier | undefined;
  readonly allowDids: ReadonlySet<string> | undefined;
  readonly allowCapabilities: ReadonlySet<string> | undefined;
  readonly rate: RateLimit | undefined;
  readonly maxBytes: number | undefined;
  readonly schema: z.ZodType | undefined;
}

const pathOf = (path: readonly PropertyKey[]): string => (path.length === 0 ? '(root)' : path.map(String).join('.'));

function compileSchema(schema: RuleSet['schema'], field: string): z.ZodType | undefined {
  if (schema === undefined) return undefined;
  if (schema instanceof z.ZodType) return schema;
  try {
    return z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
  } catch (error) {
    throw new PolicyRuleError(field, `not a supported JSON Schema (${error instanceof Error ? error.message : String(error)})`, {
      cause: error,
    });
  }
}

function compileSet(set: z.infer<typeof ruleSetSchema>, scope: string, field: string): CompiledRuleSet {
  return {
    scope,
    minTier: set.minTier,
    allowDids: set.allow?.dids ? new Set(set.allow.dids) : undefined,
    allowCapabilities: set.allow?.capabilities ? new Set(set.allow.capabilities) : undefined,
    rate: set.rate,
    maxBytes: set.maxBytes,
    schema: compileSchema(set.schema as RuleSet['schema'], `${field}.schema`),
  };
}

/**
 * Validates policy rules (typically read from a config file) and compiles
 * them. Throws {@link PolicyRuleError} naming the first bad field: rules are
 * configuration, so a bad one is the operator's mistake, reported at start-up.
 */
export function compileRules(rules: unknown): { mesh: CompiledRuleSet; types: ReadonlyMap<string, CompiledRuleSet> } {
  const parsed = rulesSchema.safeParse(rules);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PolicyRuleError(pathOf(issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path), issue.message);
  }
  const mesh = compileSet({ minTier: 'probationary', ...parsed.data.mesh }, 'mesh', 'mesh');
  const types = new Map<string, CompiledRuleSet>();
  for (const [typ, set] of Object.entries(parsed.data.types ?? {})) types.set(typ, compileSet(set, typ, `types.${typ}`));
  return { mesh, types };
}
