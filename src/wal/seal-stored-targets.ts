import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/index.ts';
import { secretBoxOf } from '../platform/secrets.ts';
import { resealTargets } from './namespaces/sealed-targets.ts';
import type { WalTables } from './tables.ts';

/**
 * HTTP secrets and credential headers a row holds in clear (written before they were sealed) or
 * under an earlier key are sealed under the current one, at every start (README: "Secrets at
 * rest"). Until then they are read as they are; a failure here only delays it to the next start.
 */
export async function sealStoredTargets(ctx: AppContext, db: Kysely<WalTables>): Promise<void> {
  try {
    const result = await resealTargets(db, secretBoxOf(ctx));
    if (result.resealed > 0) {
      ctx.logger.info({ namespaces: result.resealed }, 'WAL target secrets sealed under the current key');
    }
    for (const u of result.unreadable) {
      ctx.logger.warn(
        u,
        'a WAL target secret was sealed under an unknown key (MERCATO_SECRETS_KEY changed?): name the old key in MERCATO_SECRETS_KEY_PREVIOUS, or send the target again',
      );
    }
  } catch (err) {
    ctx.logger.error({ err }, 'could not seal the WAL target secrets stored in clear');
  }
}
