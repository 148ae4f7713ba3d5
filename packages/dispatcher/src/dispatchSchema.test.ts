import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDispatchYaml } from './dispatchRules.js';
import { dispatchJsonSchema } from './dispatchSchema.js';
import { InvalidDispatchRuleError } from './errors.js';

const root = join(import.meta.dirname, '..');
const committed = JSON.parse(
  readFileSync(join(root, 'schema', 'dispatch.schema.json'), 'utf8'),
) as Record<string, unknown>;
const sampleText = readFileSync(join(root, 'examples', 'dispatch.yaml'), 'utf8');
const validate = new Ajv({ allErrors: true }).compile(committed);

describe('dispatch.yaml JSON Schema', () => {
  it('the committed schema/dispatch.schema.json is what the TypeBox definition generates', () => {
    // Regenerate with `pnpm --filter @x/dispatcher build` (or `schema` after a build).
    expect(committed).toEqual(dispatchJsonSchema());
  });

  it('is published: in files, with an exports entry', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      files: string[];
      exports: Record<string, unknown>;
    };
    expect(pkg.files).toContain('schema');
    expect(pkg.exports['./dispatch.schema.json']).toBe('./schema/dispatch.schema.json');
  });

  it('the sample examples/dispatch.yaml references it and is valid against it (and parses)', () => {
    expect(sampleText.split('\n')[0]).toBe(
      '# yaml-language-server: $schema=../schema/dispatch.schema.json',
    );
    expect(validate(parse(sampleText)), JSON.stringify(validate.errors)).toBe(true);
    expect(parseDispatchYaml(sampleText).size).toBe(4);
    for (const ok of ['', 'dispatch:', 'application: x'])
      expect(validate(parse(ok) ?? {}), ok).toBe(true);
  });

  it.each([
    [
      'dispatch:\n  - url: "*/x"\n    module: a\n    extra: 1\n',
      /dispatch\[0\]\.extra is an unknown field; expected one of url, module, service/,
    ],
    [
      'dispatch:\n  - url: "*/x"\n    module: a\n  - url: 5\n    module: a\n',
      /dispatch\[1\]\.url must be a non-empty string, got 5/,
    ],
    [
      'dispatch:\n  - url: "*/x"\n    module: Bad_Name\n',
      /dispatch\[0\]\.module: invalid module name "Bad_Name", expected a lowercase host-name label/,
    ],
    [
      `dispatch:\n  - url: "*/${'a'.repeat(120)}"\n    module: a\n`,
      /dispatch\[0\]\.url longer than 100 characters: expected at most 100, got 122/,
    ],
    [
      'dispatch:\n  - url: "*/x"\n    module: a\n    service: b\n',
      /dispatch\[0\]: give exactly one of module and service, got both/,
    ],
    [
      'dispatch:\n  - url: "*/x"\n',
      /dispatch\[0\]: give exactly one of module and service, got neither/,
    ],
    [
      'dispatch:\n  - "*/x"\n',
      /dispatch\[0\] must be a mapping with url and module \(or service\), got "\*\/x"/,
    ],
    ['dispatch: 3', /dispatch must be a list, got 3/],
    ['rules: []', /unknown top-level key "rules"; expected one of application, dispatch/],
  ])('rejects %j by field, expected and received, and so does the JSON Schema', (text, message) => {
    expect(() => parseDispatchYaml(text)).toThrow(InvalidDispatchRuleError);
    expect(() => parseDispatchYaml(text)).toThrow(message);
    expect(validate(parse(text))).toBe(false);
  });

  it('semantic checks after the schema name the field too', () => {
    expect(() => parseDispatchYaml('dispatch:\n  - url: "ex*ample.com/"\n    module: a\n')).toThrow(
      /^dispatch rule 0: dispatch\[0\]\.url: invalid host "ex\*ample\.com"$/,
    );
    expect(() =>
      parseDispatchYaml('dispatch:\n  - url: "*/x"\n    service: ghost\n', { modules: ['a', 'b'] }),
    ).toThrow(/dispatch\[0\]\.service: module "ghost" does not exist \(known: a, b\)/);
  });
});
