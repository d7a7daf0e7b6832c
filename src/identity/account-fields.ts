import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
// Loading the HTTP layer registers the formats these schemas check (ajv's email among them).
import { type FieldError, PLATFORM_TENANT, ROLES, validationFailed } from '../platform/http/index.ts';
import { passwordProblem } from './passwords.ts';

/**
 * The constraints of the fields an account is made of, one definition each: the schemas of
 * POST /tenants, POST /users and POST /auth/register are built from them (for validation and
 * OpenAPI), and the stores check what they are handed against the same rules (`checkFields`),
 * whoever calls them: a route, the CLI, the demo seeding or another module.
 */
export const SLUG = { pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' } as const;
export const EMAIL = { format: 'email', maxLength: 254 } as const;
export const DISPLAY_NAME = { minLength: 1, maxLength: 200 } as const;
/** E.164: a plus, a country code not starting with 0, 7 to 15 digits in all. */
export const PHONE = { pattern: '^\\+[1-9]\\d{6,14}$' } as const;

/** One field's rule: why value is refused, in words, or undefined when it is fine. */
export type FieldRule = (value: unknown) => string | undefined;

const slug = Compile(Type.String(SLUG));
const email = Compile(Type.String(EMAIL));
const displayName = Compile(Type.String(DISPLAY_NAME));
const phone = Compile(Type.String(PHONE));

// PostgreSQL cannot store U+0000, and a lone surrogate would be stored as U+FFFD (JSON bodies
// never bring either: the json guard refuses them; other callers may).
const storable = (value: string) => !value.includes('\u0000') && value.isWellFormed();

export const RULES = {
  slug: (value) => {
    if (typeof value !== 'string' || !slug.Check(value))
      return 'must be 1 to 63 lowercase letters, digits and inner dashes';
    return value === PLATFORM_TENANT ? 'is reserved' : undefined;
  },
  email: (value) =>
    typeof value === 'string' && email.Check(value)
      ? undefined
      : 'must be an email address of at most 254 characters',
  name: (value) =>
    typeof value === 'string' && displayName.Check(value) && storable(value)
      ? undefined
      : 'must be 1 to 200 characters, without U+0000 or lone surrogates',
  /** A password being set (PASSWORD_RULES). */
  password: passwordProblem,
  /** What hashPassword made: a store never takes a password or an empty hash in its place. */
  passwordHash: (value) =>
    typeof value === 'string' && value.startsWith('$argon2id$') ? undefined : 'must be a hashPassword hash',
  role: (value) =>
    (ROLES as readonly unknown[]).includes(value) ? undefined : `must be one of ${ROLES.join(', ')}`,
  phone: (value) =>
    value === null || (typeof value === 'string' && phone.Check(value))
      ? undefined
      : 'must be null or E.164, for example +14155550123',
  /** What a user's status may be set to; 'erased' is eraseUser's alone. */
  userStatus: (value) =>
    value === 'active' || value === 'disabled' ? undefined : 'must be active or disabled',
  tenantStatus: (value) =>
    value === 'active' || value === 'suspended' ? undefined : 'must be active or suspended',
} as const satisfies Record<string, FieldRule>;

/** The fields of an input to check: a JSON pointer (as the routes' bodies name it), its rule and value. */
export type FieldChecks = readonly (readonly [pointer: string, rule: FieldRule, value: unknown])[];

/** The failing fields, one FieldError each (in the body, as the routes say it). */
export function fieldProblems(checks: FieldChecks): FieldError[] {
  const errors: FieldError[] = [];
  for (const [pointer, rule, value] of checks) {
    const message = rule(value);
    if (message !== undefined) errors.push({ in: 'body', pointer, message });
  }
  return errors;
}

/** 400 VALIDATION_FAILED listing every failing field, as a route's schema does; nothing when all pass. */
export function checkFields(checks: FieldChecks): void {
  const errors = fieldProblems(checks);
  if (errors.length > 0) throw validationFailed(errors);
}

type AccountField = 'slug' | 'name' | 'email' | 'password';
const ACCOUNT_FIELDS: [AccountField, FieldRule][] = [
  ['slug', RULES.slug],
  ['name', RULES.name],
  ['email', RULES.email],
  ['password', RULES.password],
];

/**
 * The problems of the account fields given, for a caller that checks its input before it reaches
 * a store (the CLI, naming its flags): the rules createTenant and createUser apply, in this order.
 */
export function accountFieldProblems(
  input: Partial<Record<AccountField, string>>,
): { field: AccountField; message: string }[] {
  const problems: { field: AccountField; message: string }[] = [];
  for (const [field, rule] of ACCOUNT_FIELDS) {
    const message = field in input ? rule(input[field]) : undefined;
    if (message !== undefined) problems.push({ field, message });
  }
  return problems;
}
