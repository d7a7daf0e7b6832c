import { Type } from 'typebox';
import { SECURED } from '../../platform/http/index.ts';
import { PHONE } from '../account-fields.ts';
import { PASSWORD_RULES } from '../passwords.ts';

export const Phone = Type.String({ ...PHONE, description: 'E.164, for example +14155550123' });

// Enums rather than unions of literals: one clear error ("must be one of") instead of one per branch.
export const RoleSchema = Type.Enum(['customer', 'staff', 'operator', 'admin']);

export const StatusSchema = Type.Enum(['active', 'disabled']);

/** What a user's status may read: an erased account (DELETE /users/{id}) is never shown, but its type allows it. */
const StatusView = Type.Enum(['active', 'disabled', 'erased']);

/** A user as every users route answers it. */
export const UserView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenantId: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  status: StatusView,
  phone: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

/** A password being set (PASSWORD_RULES). */
export const NewPassword = Type.String({ ...PASSWORD_RULES });

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

/** FastifySchema's security shape; SECURED's inferred type does not match it, its value does. */
export const SECURITY = SECURED as Record<string, string[]>[];
