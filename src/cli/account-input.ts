import Format from 'typebox/format';
import { passwordProblem } from '../identity/passwords.ts';
// Loading the HTTP layer registers the formats its schemas check (ajv's email among them).
import '../platform/http/index.ts';
import { CliError } from './database-command.ts';

/** As POST /tenants takes a slug: lowercase letters, digits and inner dashes, 1 to 63. */
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

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
  if (flags.slug && !SLUG.test(flags.slug[1])) {
    throw new CliError(
      `${flags.slug[0]} must be 1 to 63 lowercase letters, digits and inner dashes, not "${flags.slug[1]}"`,
    );
  }
  if (flags.name) {
    const length = [...flags.name[1]].length;
    if (length < 1 || length > 200) throw new CliError(`${flags.name[0]} must be 1 to 200 characters`);
  }
  const [emailFlag, email] = flags.email;
  if (email.length > 254 || !Format.Test('email', email))
    throw new CliError(`${emailFlag} must be an email address, not "${email}"`);
  const problem = passwordProblem(flags.password[1]);
  if (problem) throw new CliError(`${flags.password[0]} ${problem}`);
}
