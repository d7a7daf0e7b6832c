import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { DISPLAY_NAME, EMAIL, SLUG } from '../identity/index.ts';
import { passwordProblem } from '../identity/passwords.ts';
// Loading the HTTP layer registers the formats its schemas check (ajv's email among them).
import '../platform/http/index.ts';
import { CliError } from './database-command.ts';

const Slug = Type.String(SLUG);
const Name = Type.String(DISPLAY_NAME);
const Email = Type.String(EMAIL);

/**
 * What `tenants create` and `users create` are given, checked as the API's schemas check it (the
 * commands write through the stores, which trust their callers): the first problem, naming its flag.
 */
export function checkAccountInput(flags: {
  slug?: [flag: string, value: string];
  name?: [flag: string, value: string];
  email: [flag: string, value: string];
  password: [flag: string, value: string];
}): void {
  if (flags.slug && !Value.Check(Slug, flags.slug[1])) {
    throw new CliError(
      `${flags.slug[0]} must be 1 to 63 lowercase letters, digits and inner dashes, not "${flags.slug[1]}"`,
    );
  }
  if (flags.name && !Value.Check(Name, flags.name[1]))
    throw new CliError(`${flags.name[0]} must be 1 to 200 characters`);
  const [emailFlag, email] = flags.email;
  if (!Value.Check(Email, email)) throw new CliError(`${emailFlag} must be an email address, not "${email}"`);
  const problem = passwordProblem(flags.password[1]);
  if (problem) throw new CliError(`${flags.password[0]} ${problem}`);
}
