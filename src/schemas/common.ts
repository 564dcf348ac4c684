import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable error code (see the error table in the README).' }),
      message: Type.String(),
      path: Type.Optional(Type.String({ description: 'Where in the request the problem is, e.g. "spec.layers[1].units".' })),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorResponse' },
);

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export type IdParams = Static<typeof IdParams>;

export const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 64, description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

export const Timestamp = Type.String({ format: 'date-time' });

/** `{items, next_cursor}`, newest first. */
export function ListOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });
}

/** The error responses every /v1 route may give. */
export const errorResponses = {
  400: Type.Ref(ErrorResponse),
  401: Type.Ref(ErrorResponse),
  404: Type.Ref(ErrorResponse),
  503: Type.Ref(ErrorResponse),
};

/** A tensor shape without the batch dimension (null = any size). */
export const ShapeSchema = Type.Array(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]));
