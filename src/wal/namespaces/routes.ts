import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { type Database, withTenant } from '../../platform/db/index.ts';
import {
  AppError,
  PLATFORM_TENANT,
  requireUser,
  SECURED,
  userOf,
  validationFailed,
} from '../../platform/http/index.ts';
import { secretBoxOf } from '../../platform/secrets.ts';
import { actorOf } from '../audit/index.ts';
import { BackendUnavailableError, backendUnavailable, dropStreamData } from '../backends/stream/index.ts';
import { withCircuits } from '../delivery/index.ts';
import type { WalDeps } from '../deps.ts';
import { checkNamespaceLimit } from './limit.ts';
import { namespaceView } from './masks.ts';
import type { Namespace } from './namespace.ts';
import { CreateBody, NameParams, NamespaceView, UpdateBody } from './namespace-schemas.ts';
import { checkRetention } from './retention-cap.ts';
import {
  createNamespace,
  deleteNamespace,
  listNamespaces,
  openNamespace,
  requireNamespace,
  updateNamespace,
} from './store.ts';
import { checkSystemUpdate, isSystemTopic, withoutSystemTargets } from './system-namespaces.ts';

const base = { tags: ['wal'], security: SECURED as Record<string, string[]>[] };

/** The operator: an admin of the platform tenant, the only one who may define `sql` targets. */
const isOperator = (user: { tenantSlug: string; role: string }) =>
  user.tenantSlug === PLATFORM_TENANT && user.role === 'admin';

/** Who changes a namespace, and on which database (sql targets are refused on PGlite). */
const changeBy = (user: ReturnType<typeof userOf>, database: Database['kind']) => ({
  tenantId: user.tenantId,
  actor: actorOf(user),
  operator: isOperator(user),
  database,
});

/** consumerConcurrency above MERCATO_WAL_MAX_CONCURRENCY is refused like any invalid field. */
function checkConcurrency(body: { consumerConcurrency?: number | undefined }, max: number): void {
  if (body.consumerConcurrency === undefined || body.consumerConcurrency <= max) return;
  const message = `must be at most ${max} (this server's limit)`;
  throw validationFailed([{ in: 'body', pointer: '/consumerConcurrency', message }]);
}

/** POST/GET /wal/namespaces, GET/PUT/DELETE /wal/namespaces/{name}: tenant admins configure the WAL. */
export function namespaceRoutes(deps: WalDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    // preValidation: the caller is checked before the body, so a stranger learns nothing from a 400.
    const preValidation = requireUser('admin');
    const merged = (namespace: Namespace) => deps.systemTargets?.apply(namespace) ?? namespace;
    // HTTP secrets and credential headers are stored sealed: opened here to be shown masked.
    const box = secretBoxOf(deps.ctx);
    const view = async (namespace: Namespace) =>
      withCircuits(deps.circuits, namespaceView(await openNamespace(box, merged(namespace))));

    app.post(
      '/wal/namespaces',
      {
        preValidation,
        schema: {
          ...base,
          operationId: 'createNamespace',
          summary: 'Create a WAL namespace',
          body: CreateBody,
          response: { 201: NamespaceView },
        },
      },
      async (request, reply) => {
        const user = userOf(request);
        const { name, ...input } = request.body;
        if (isSystemTopic(name)) {
          throw new AppError(
            'SYSTEM_NAMESPACE',
            `${name} is the name of a system namespace, which Mercato creates`,
          );
        }
        checkConcurrency(input, deps.ctx.config.walMaxConcurrency);
        checkRetention(input, deps.ctx.config.walMaxRetentionSeconds);
        const change = changeBy(user, deps.ctx.db.kind);
        // The keys are loaded before the transaction (deriving one reads the database).
        await box.ready();
        const created = await withTenant(deps.db, user.tenantId, async (trx) => {
          // The platform tenant (the operator's) is exempt.
          if (user.tenantSlug !== PLATFORM_TENANT) {
            await checkNamespaceLimit(trx, user.tenantId, deps.ctx.config.walMaxNamespaces);
          }
          return createNamespace(trx, change, name, input, box);
        });
        deps.namespaces.invalidate(user.tenantId, name);
        reply.code(201).header('location', `/api/v1/wal/namespaces/${name}`);
        return namespaceView(created);
      },
    );

    app.get(
      '/wal/namespaces',
      {
        preValidation,
        schema: {
          ...base,
          operationId: 'listNamespaces',
          summary: "The tenant's WAL namespaces, by name",
          response: { 200: Type.Object({ items: Type.Array(NamespaceView) }) },
        },
      },
      async (request) => {
        const { tenantId } = userOf(request);
        await box.ready();
        const items = await withTenant(deps.db, tenantId, (trx) => listNamespaces(trx, tenantId));
        return { items: await Promise.all(items.map(view)) };
      },
    );

    app.get(
      '/wal/namespaces/:name',
      {
        preValidation,
        schema: {
          ...base,
          operationId: 'getNamespace',
          summary: 'One WAL namespace',
          params: NameParams,
          response: { 200: NamespaceView },
        },
      },
      async (request) => {
        const { tenantId } = userOf(request);
        await box.ready();
        const found = await withTenant(deps.db, tenantId, (trx) =>
          requireNamespace(trx, tenantId, request.params.name),
        );
        return view(found);
      },
    );

    app.put(
      '/wal/namespaces/:name',
      {
        preValidation,
        schema: {
          ...base,
          operationId: 'updateNamespace',
          summary:
            'Change some settings of a WAL namespace (an HTTP target sent without its secret keeps it)',
          params: NameParams,
          body: UpdateBody,
          response: { 200: NamespaceView },
        },
      },
      async (request) => {
        const user = userOf(request);
        const { name } = request.params;
        checkConcurrency(request.body, deps.ctx.config.walMaxConcurrency);
        const change = changeBy(user, deps.ctx.db.kind);
        const { name: rename, ...body } = request.body;
        await box.ready();
        const updated = await withTenant(deps.db, user.tenantId, async (trx) => {
          const current = await requireNamespace(trx, user.tenantId, name);
          if (rename !== undefined && rename !== name) {
            if (current.system)
              throw new AppError('SYSTEM_NAMESPACE', `${name} is a system namespace and cannot be renamed`);
            throw validationFailed([
              { in: 'body', pointer: '/name', message: 'namespaces cannot be renamed' },
            ]);
          }
          checkRetention(body, deps.ctx.config.walMaxRetentionSeconds, current);
          checkSystemUpdate(current, body);
          const targets = withoutSystemTargets(current, body.targets, deps.systemTargets?.of(name) ?? []);
          return updateNamespace(trx, change, name, { ...body, ...(targets ? { targets } : {}) }, box);
        });
        deps.namespaces.invalidate(user.tenantId, name);
        return namespaceView(deps.systemTargets?.apply(updated) ?? updated);
      },
    );

    app.delete(
      '/wal/namespaces/:name',
      {
        preValidation,
        schema: {
          ...base,
          operationId: 'deleteNamespace',
          summary: 'Delete a WAL namespace and all its messages',
          params: NameParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const user = userOf(request);
        const { name } = request.params;
        const change = { tenantId: user.tenantId, actor: actorOf(user) };
        // A stream backend's messages go first: one that cannot be reached is a 503 with nothing
        // deleted, to be tried again. Once the row is gone, writes find no namespace; a write that
        // slipped in between is dropped after (a failure then is only logged).
        const namespace = await withTenant(deps.db, user.tenantId, (trx) =>
          requireNamespace(trx, user.tenantId, name),
        );
        if (namespace.system) {
          throw new AppError('SYSTEM_NAMESPACE', `${name} is a system namespace and cannot be deleted`);
        }
        await dropStreamData(deps.streams, namespace).catch((err: unknown) => {
          if (!(err instanceof BackendUnavailableError)) throw err;
          throw backendUnavailable(
            `backend ${err.backend} of namespace ${name} cannot be reached to delete its messages; nothing was deleted, retry shortly`,
            {},
            err,
          );
        });
        await box.ready();
        await withTenant(deps.db, user.tenantId, (trx) => deleteNamespace(trx, change, name, box));
        deps.namespaces.invalidate(user.tenantId, name);
        await dropStreamData(deps.streams, namespace).catch((err: unknown) =>
          request.log.warn(
            { err, namespace: name },
            'messages written while the namespace was deleted remain',
          ),
        );
        // What backends the namespace was pruned from keep of it (a fence, finished messages).
        await dropStreamData(deps.streams, namespace, 'retired').catch((err: unknown) =>
          request.log.warn({ err, namespace: name }, 'what a pruned backend kept of the namespace remains'),
        );
        return reply.code(204).send(null);
      },
    );
  };
}
