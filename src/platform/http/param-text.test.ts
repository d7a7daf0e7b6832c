import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { paramTextRule } from './param-text.ts';

describe('paramTextRule', () => {
  it('writes uuid-format path and query values in lowercase, and leaves every other value as sent', () => {
    const rule = paramTextRule(
      Type.Object({
        id: Type.String({ format: 'uuid' }),
        handle: Type.String(),
        limit: Type.Optional(Type.Integer()),
      }),
      'params',
    );
    const params: Record<string, unknown> = {
      id: '01A2B3C4-D5E6-7F80-9A1B-2C3D4E5F6A7B',
      handle: 'Red-SHIRT',
      limit: '5',
    };
    expect(rule?.(params)).toBeUndefined();
    expect(params).toEqual({ id: '01a2b3c4-d5e6-7f80-9a1b-2c3d4e5f6a7b', handle: 'Red-SHIRT', limit: '5' });
  });

  it('runs nothing for a schema with neither integers nor uuids', () => {
    expect(paramTextRule(Type.Object({ q: Type.String() }), 'query')).toBeUndefined();
    expect(paramTextRule(undefined, 'headers')).toBeUndefined();
  });
});
