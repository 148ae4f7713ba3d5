/**
 * Pieces that mutations insert into YAML documents: indentation, flow and block syntax, anchors,
 * aliases, tags, merge keys, directives, byte-order marks and prototype names.
 */
export const YAML_TRAPS: readonly string[] = [
  ':',
  ': ',
  '- ',
  '\n',
  '\n  ',
  '\n- ',
  '&a ',
  '*a',
  '!!str ',
  '!!binary ',
  '!!set ',
  '!!map ',
  '!!int ',
  '<<: ',
  '<<: *a',
  '{',
  '}',
  '[',
  ']',
  '"',
  "'",
  '# ',
  '|',
  '>',
  '? ',
  '---\n',
  '...\n',
  '%YAML 1.1\n---\n',
  '\t',
  '\ufeff',
  '~',
  'null',
  '1e400',
  '-1',
  '0x10',
  '.nan',
  '__proto__',
  'constructor',
];

/** An alias bomb: nine to the fourth power nodes from a few hundred bytes of YAML. */
export const YAML_ALIAS_BOMB = `a: &a [x,x,x,x,x,x,x,x,x]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]
`;
