import { Type } from 'typebox';
import { Phone } from '../users/user-schemas.ts';

const AddressType = Type.Enum(['BILLING', 'SHIPPING']);
const Country = Type.String({
  pattern: '^[A-Za-z]{2}$',
  description: 'ISO 3166-1 alpha-2 code, for example US or DE; stored uppercase',
});
const PostalCode = Type.String({
  minLength: 1,
  maxLength: 20,
  description: "Checked against the country's format (US 12345 or 12345-6789, CA A1A 1A1, ...)",
});
const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Optional(Type.Union([schema, Type.Null()]));

const fields = {
  type: AddressType,
  recipient: Text(200),
  line1: Text(200),
  line2: Nullable(Type.String({ maxLength: 200 })),
  city: Text(100),
  region: Nullable(
    Type.String({
      maxLength: 100,
      description:
        'Required in US, CA and AU: the ISO 3166-2 code or name of a state, province or territory, stored as its code (MA); elsewhere free text',
    }),
  ),
  postalCode: PostalCode,
  country: Country,
  phone: Nullable(Phone),
  isDefault: Type.Optional(Type.Boolean({ description: 'Make it the default of its type' })),
};

export const NewAddressBody = Type.Object(fields, { additionalProperties: false });

export const AddressPatchBody = Type.Object(
  {
    type: Type.Optional(fields.type),
    recipient: Type.Optional(fields.recipient),
    line1: Type.Optional(fields.line1),
    line2: fields.line2,
    city: Type.Optional(fields.city),
    region: fields.region,
    postalCode: Type.Optional(fields.postalCode),
    country: Type.Optional(fields.country),
    phone: fields.phone,
    isDefault: fields.isDefault,
  },
  { additionalProperties: false },
);

export const AddressView = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    type: AddressType,
    recipient: Type.String(),
    line1: Type.String(),
    line2: Type.Union([Type.String(), Type.Null()]),
    city: Type.String(),
    region: Type.Union([Type.String(), Type.Null()]),
    postalCode: Type.String(),
    country: Type.String(),
    phone: Type.Union([Type.String(), Type.Null()]),
    isDefault: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'Address' },
);
