// What can go wrong in a service, independent of HTTP: the API maps each kind to KAZOO's error
// shapes (api/errors.ts), the CLI prints the message.

/** `{field: {rule: {message, value?}}}`, KAZOO's validation error data (api.md §1). */
export type FieldErrors = Record<string, Record<string, { message: string; value?: unknown; target?: string }>>;

export type FailureKind =
  | 'validation'
  | 'not_found'
  | 'forbidden'
  | 'conflict'
  | 'precondition_failed'
  | 'unauthorized'
  | 'throttled'
  | 'has_descendants';

export class Failure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly details: { fields?: FieldErrors; cause?: string; retryAfter?: number } = {},
  ) {
    super(message);
    this.name = 'Failure';
  }
}

/** The database cannot be reached: any service call may fail so (api.md §6: 503). */
export { StoreUnavailableError } from '../store/port.ts';

export const notFound = (id: string) => new Failure('not_found', 'bad identifier', { cause: id });
export const forbidden = () => new Failure('forbidden', 'forbidden');
export const conflict = (message: string, cause?: string) => new Failure('conflict', message, cause === undefined ? {} : { cause });

/** Fields whose value is a secret, wherever they sit (`password`, a device's `sip.password`, …). */
const SECRET_FIELDS = new Set(['password', 'credentials', 'api_key']);
const isSecret = (field: string) => SECRET_FIELDS.has(field.slice(field.lastIndexOf('.') + 1));

/**
 * A 400 names a secret field and what is wrong with it, never its value (issue 20): every
 * validation failure is made here, so no caller can forget.
 */
function withoutSecretValues(fields: FieldErrors): FieldErrors {
  const shown: FieldErrors = {};
  for (const [field, rules] of Object.entries(fields)) {
    shown[field] = isSecret(field) ? Object.fromEntries(Object.entries(rules).map(([rule, { value: _secret, ...rest }]) => [rule, rest])) : rules;
  }
  return shown;
}

export const invalid = (fields: FieldErrors) => new Failure('validation', 'validation error', { fields: withoutSecretValues(fields) });

/** Collects every failing field before giving up, so a client sees all its mistakes at once. */
export class FieldErrorList {
  readonly fields: FieldErrors = {};

  add(field: string, rule: string, message: string, value?: unknown): this {
    const entry = value === undefined ? { message } : { message, value };
    (this.fields[field] ??= {})[rule] = entry;
    return this;
  }

  get empty(): boolean {
    return Object.keys(this.fields).length === 0;
  }

  throwIfAny(): void {
    if (!this.empty) throw invalid(this.fields);
  }
}
