import type { Kysely } from 'kysely';
import type { AppContext } from '../platform/index.ts';
import type { NamespaceCache } from './namespaces/namespace.ts';
import type { WalTables } from './tables.ts';

/** What every part of the WAL module receives. */
export type WalDeps = { ctx: AppContext; db: Kysely<WalTables>; namespaces: NamespaceCache };
