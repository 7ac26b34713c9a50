// The JSON Schemas of every request body: the one source of validation (here, for the API and the
// CLI alike), of TypeScript types (Static<>) and of the OpenAPI document (api/openapi.ts).
// Ajv reports every failing field at once; `validate` turns that into KAZOO's field errors.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { FieldErrorList } from './errors.ts';

export interface Limits {
  /** Most CIDRs in one access list (api.md §4). */
  maxCidrs: number;
  /** Most IP ACL entries on one trunk (api.md §5). */
  maxIpAclsPerTrunk: number;
}

export const DEFAULT_LIMITS: Limits = { maxCidrs: 10_000, maxIpAclsPerTrunk: 1_000 };

const Name = Type.String({ minLength: 1, maxLength: 128 });

export const AccessListSchema = (maxCidrs: number) =>
  Type.Object(
    {
      order: Type.Union([Type.Literal('allow,deny'), Type.Literal('deny,allow')], { description: 'Allow-Deny or Deny-Allow?' }),
      cidrs: Type.Array(Type.String({ maxLength: 64 }), { maxItems: maxCidrs, description: 'IPv4/IPv6 CIDRs or bare addresses' }),
      user_agent: Type.Optional(Type.String({ maxLength: 1024, description: 'RE2 regular expression matched against the SIP User-Agent' })),
    },
  );
export type AccessListBody = Static<ReturnType<typeof AccessListSchema>>;

export const PoolIpSchema = Type.Object({
  ip: Type.String({ minLength: 1, maxLength: 64 }),
  zone: Type.String({ minLength: 1, maxLength: 128 }),
  host: Type.String({ minLength: 1, maxLength: 253 }),
});
export type PoolIpBody = Static<typeof PoolIpSchema>;

export const PoolIpUpdateSchema = Type.Object({
  zone: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  host: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
});

export const IpListSchema = Type.Object({ ips: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000 }) });
export type IpListBody = Static<typeof IpListSchema>;

export const AccountSchema = Type.Object({
  name: Name,
  realm: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$' }),
});
export type AccountBody = Static<typeof AccountSchema>;

export const UserSchema = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 128 }),
  password: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  priv_level: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('user')])),
});
export type UserBody = Static<typeof UserSchema>;

export const DeviceSchema = (maxCidrs: number) =>
  Type.Object({
    name: Name,
    sip: Type.Object({ username: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s@:;]+$' }), password: Type.Optional(Type.String({ maxLength: 256 })) }),
    enabled: Type.Optional(Type.Boolean()),
    access_lists: Type.Optional(AccessListSchema(maxCidrs)),
  });
export type DeviceBody = Static<ReturnType<typeof DeviceSchema>>;

export const TrunkSchema = Type.Object({ name: Name, enabled: Type.Optional(Type.Boolean()) });
export type TrunkBody = Static<typeof TrunkSchema>;

export const IpAclSchema = Type.Object({
  ip_address: Type.String({ minLength: 1, maxLength: 64 }),
  description: Type.Optional(Type.String({ maxLength: 255 })),
  enabled: Type.Optional(Type.Boolean()),
});
export type IpAclBody = Static<typeof IpAclSchema>;

export const UserAuthSchema = Type.Object({
  credentials: Type.String({ pattern: '^[0-9a-fA-F]{32}$' }),
  account_name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  account_realm: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  realm: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
});
export type UserAuthBody = Static<typeof UserAuthSchema>;

export const ApiAuthSchema = Type.Object({ api_key: Type.String({ minLength: 1, maxLength: 128 }) });
export type ApiAuthBody = Static<typeof ApiAuthSchema>;

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new WeakMap<TSchema, ValidateFunction>();

function fieldOf(error: ErrorObject): string {
  const path = error.instancePath.split('/').slice(1).join('.');
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return path ? `${path}.${missing}` : missing;
  }
  return path;
}

function messageOf(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return 'Field is required but missing';
    case 'enum':
    case 'const':
    case 'anyOf':
      return 'Value not found in enumerated list of values';
    case 'type':
      return `Value did not match type(s) ${String(p.type)}`;
    case 'minItems':
      return `The list is shorter than the minimum of ${String(p.limit)} items`;
    case 'maxItems':
      return `The list is longer than the maximum of ${String(p.limit)} items`;
    case 'minLength':
      return `Value must be at least ${String(p.limit)} characters`;
    case 'maxLength':
      return `Value must not be more than ${String(p.limit)} characters`;
    case 'pattern':
      return `Failed to match pattern '${String(p.pattern)}'`;
    default:
      return error.message ?? 'invalid';
  }
}

/** KAZOO names a failed literal union `enum`. */
function ruleOf(error: ErrorObject): string {
  return error.keyword === 'anyOf' || error.keyword === 'const' ? 'enum' : error.keyword;
}

/**
 * Validates `data` against `schema`, adding every failure to `errors` (the `const` failures under a
 * union are folded into the one `enum` failure of the union). True when it passed.
 */
export function validate<S extends TSchema>(schema: S, data: unknown, errors: FieldErrorList): data is Static<S> {
  let check = compiled.get(schema);
  if (!check) {
    check = ajv.compile(schema);
    compiled.set(schema, check);
  }
  if (check(data)) return true;
  const unionPaths = new Set(check.errors!.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const error of check.errors!) {
    if (error.keyword !== 'anyOf' && unionPaths.has(error.instancePath)) continue;
    const value = error.keyword === 'required' ? undefined : valueAt(data, error.instancePath);
    errors.add(fieldOf(error), ruleOf(error), messageOf(error), value);
  }
  return false;
}

function valueAt(data: unknown, pointer: string): unknown {
  let node = data;
  for (const key of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node !== null && typeof node === 'object' ? undefined : node;
}

/** Validates and throws KAZOO's 400 with every failing field. */
export function check<S extends TSchema>(schema: S, data: unknown): Static<S> {
  const errors = new FieldErrorList();
  if (!validate(schema, data, errors)) errors.throwIfAny();
  return data as Static<S>;
}

const accessListSchemas = new Map<number, ReturnType<typeof AccessListSchema>>();
const deviceSchemas = new Map<number, ReturnType<typeof DeviceSchema>>();

export function accessListSchema(limits: Limits) {
  let schema = accessListSchemas.get(limits.maxCidrs);
  if (!schema) accessListSchemas.set(limits.maxCidrs, (schema = AccessListSchema(limits.maxCidrs)));
  return schema;
}

export function deviceSchema(limits: Limits) {
  let schema = deviceSchemas.get(limits.maxCidrs);
  if (!schema) deviceSchemas.set(limits.maxCidrs, (schema = DeviceSchema(limits.maxCidrs)));
  return schema;
}
