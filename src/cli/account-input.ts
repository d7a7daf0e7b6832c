import { accountFieldProblems } from '../identity/index.ts';
import { CliError } from './database-command.ts';

type Flag = [flag: string, value: string];

/**
 * What `tenants create` and `users create` are given, checked before the database is opened by
 * the rules the stores themselves apply (identity's `RULES`, which refuse the same input with
 * VALIDATION_FAILED whoever calls them): the first problem, naming its flag.
 */
export function checkAccountInput(flags: { slug?: Flag; name?: Flag; email: Flag; password: Flag }): void {
  const byField = { slug: flags.slug, name: flags.name, email: flags.email, password: flags.password };
  const [problem] = accountFieldProblems({
    ...(flags.slug ? { slug: flags.slug[1] } : {}),
    ...(flags.name ? { name: flags.name[1] } : {}),
    email: flags.email[1],
    password: flags.password[1],
  });
  if (!problem) return;
  const [flag, value] = byField[problem.field]!;
  // A password is not echoed back; a rule is followed by the value, a verdict follows it.
  if (problem.field === 'password') throw new CliError(`${flag} ${problem.message}`);
  if (problem.message.startsWith('must'))
    throw new CliError(`${flag} ${problem.message}, not ${JSON.stringify(value)}`);
  throw new CliError(`${flag} ${JSON.stringify(value)} ${problem.message}`);
}
