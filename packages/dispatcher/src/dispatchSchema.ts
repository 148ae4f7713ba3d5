import { Type, type Static } from '@sinclair/typebox';

/** A module (service) name: a lowercase host-name label. */
export const MODULE_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

const moduleName = (description: string) =>
  Type.String({
    pattern: MODULE_NAME_PATTERN,
    maxLength: 63,
    description,
  });

/**
 * One `dispatch.yaml` entry as a TypeBox schema (JSON Schema): `url` and exactly one of `module`
 * and `service`. What a schema cannot say (host and path glob rules, known modules, the rule
 * count) is checked by {@link compileDispatchRules}.
 */
export const DispatchRuleSchema = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 100,
      description:
        '`host_pattern/path_pattern`: a leading `*` in the host is a suffix match, a trailing `*` in the path a prefix match; `*/path` or `/path` for any host. At most 100 characters.',
      examples: ['*/api/*', '*.example.com/', 'admin.example.com/*'],
    }),
    module: Type.Optional(moduleName('The module that serves matching requests.')),
    service: Type.Optional(moduleName('Same as `module` (App Engine’s newer name).')),
  },
  {
    additionalProperties: false,
    description: 'A dispatch rule: the first rule whose url matches wins.',
    // For editors: exactly one of module and service (compileDispatchRules checks it in code).
    oneOf: [{ required: ['module'] }, { required: ['service'] }],
  },
);

/** A `dispatch.yaml` document: `dispatch:` rules; `application:` is accepted and ignored. */
export const DispatchFileSchema = Type.Object(
  {
    application: Type.Optional(
      Type.Unknown({ description: 'App Engine’s application id; ignored.' }),
    ),
    dispatch: Type.Optional(
      Type.Union([Type.Array(DispatchRuleSchema), Type.Null()], {
        description:
          'Dispatch rules, first match wins. At most 20 by default (App Engine’s limit; `maxRules` lifts it).',
      }),
    ),
  },
  {
    additionalProperties: false,
    title: 'dispatch.yaml (@x/dispatcher)',
    description:
      'Routes requests to modules by host and path (App Engine dispatch.yaml semantics).',
  },
);

/** A `dispatch.yaml` document, as the schema types it. */
export type DispatchFile = Static<typeof DispatchFileSchema>;

/** Where the published JSON Schema of `dispatch.yaml` lives (its `$id`). */
export const DISPATCH_SCHEMA_ID = 'https://unpkg.com/@x/dispatcher/schema/dispatch.schema.json';

/**
 * The JSON Schema (draft-07) of `dispatch.yaml`, generated from {@link DispatchFileSchema}: the
 * content of the published `@x/dispatcher/dispatch.schema.json`.
 */
export function dispatchJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: DISPATCH_SCHEMA_ID,
    ...(JSON.parse(JSON.stringify(DispatchFileSchema)) as Record<string, unknown>),
  };
}
