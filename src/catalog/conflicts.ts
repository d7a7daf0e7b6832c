import { AppError } from '../platform/http/index.ts';

type PgError = { code?: unknown; constraint?: unknown; detail?: unknown; message?: unknown };

const pgError = (error: unknown): PgError | undefined =>
  typeof error === 'object' && error !== null && typeof (error as PgError).code === 'string'
    ? (error as PgError)
    : undefined;

/** The value of the last key column named in a unique violation's detail: "Key (tenant_id, sku)=(…, X) already exists." */
function keyValue(detail: unknown): string | undefined {
  if (typeof detail !== 'string') return undefined;
  const match = /^Key \((?:[^)]*)\)=\((?:[0-9a-f-]{36}, )?(.*)\) already exists\.?$/s.exec(detail);
  return match?.[1];
}

function constraintOf(e: PgError): string {
  if (typeof e.constraint === 'string') return e.constraint;
  const text = `${String(e.message ?? '')} ${String(e.detail ?? '')}`;
  return /"([a-z_]+)"/.exec(text)?.[1] ?? '';
}

/**
 * The catalog's unique and foreign keys, as the errors they stand for: a second product with a
 * handle, a second variant with a SKU, a category in use. Anything else is returned unchanged.
 * (Under row-level security PostgreSQL leaves the key values out of the error's detail.)
 */
export function catalogConflict(error: unknown): unknown {
  const e = pgError(error);
  if (!e) return error;
  const constraint = constraintOf(e);
  if (e.code === '23505') {
    const value = keyValue(e.detail);
    if (constraint === 'products_tenant_id_handle_key') {
      return new AppError(
        'HANDLE_TAKEN',
        value ? `a product with handle "${value}" already exists` : 'that handle is taken',
        { errors: [{ in: 'body', pointer: '/handle', message: 'is taken by another product' }] },
        { cause: error },
      );
    }
    if (constraint === 'variants_tenant_id_sku_key') {
      return new AppError(
        'SKU_TAKEN',
        value
          ? `SKU "${value}" is already used by another variant`
          : 'a SKU is already used by another variant',
        {
          ...(value ? { sku: value } : {}),
          errors: [{ in: 'body', pointer: '/sku', message: 'is taken by another variant' }],
        },
        { cause: error },
      );
    }
    if (constraint === 'categories_tenant_id_handle_key') {
      return new AppError(
        'HANDLE_TAKEN',
        value ? `a category with handle "${value}" already exists` : 'that handle is taken',
        { errors: [{ in: 'body', pointer: '/handle', message: 'is taken by another category' }] },
        { cause: error },
      );
    }
  }
  if (e.code === '23503') {
    // A category deleted while a product or child was being attached to it, or one still in use.
    if (constraint === 'product_categories_category_id_fkey' || constraint === 'categories_parent_id_fkey') {
      const deleting = typeof e.message === 'string' && /update or delete/.test(e.message);
      if (deleting)
        return new AppError(
          'CATEGORY_IN_USE',
          'the category still has children or products',
          {},
          { cause: error },
        );
      return new AppError('VALIDATION_FAILED', 'a category named was deleted meanwhile', {
        errors: [{ in: 'body', pointer: '/categoryIds', message: 'names a category that no longer exists' }],
      });
    }
  }
  return error;
}
