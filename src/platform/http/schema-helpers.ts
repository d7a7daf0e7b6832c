import { Type } from 'typebox';

/** A schema or null (a JSON field that is always present, null when unset). */
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);
