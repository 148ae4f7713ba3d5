import fc from 'fast-check';

/** One edit of a valid input. */
interface Edit {
  readonly op: 'insert' | 'delete' | 'replace' | 'repeat' | 'truncate';
  readonly at: number;
  readonly length: number;
}

const edit = fc.record({
  op: fc.constantFrom('insert', 'delete', 'replace', 'repeat', 'truncate'),
  at: fc.nat(),
  length: fc.integer({ min: 1, max: 16 }),
}) as fc.Arbitrary<Edit>;

function apply<T extends string | Uint8Array>(
  input: T,
  e: Edit,
  piece: T,
  concat: (parts: T[]) => T,
): T {
  const at = input.length === 0 ? 0 : e.at % (input.length + 1);
  const slice = (a: number, b?: number) => input.slice(a, b) as T;
  switch (e.op) {
    case 'insert':
      return concat([slice(0, at), piece, slice(at)]);
    case 'delete':
      return concat([slice(0, at), slice(at + e.length)]);
    case 'replace':
      return concat([slice(0, at), piece, slice(at + piece.length)]);
    case 'repeat':
      return concat([slice(0, at + e.length), slice(at, at + e.length), slice(at + e.length)]);
    case 'truncate':
      return slice(0, at);
  }
}

/**
 * A valid input with one to four random edits (insert, delete, replace, repeat a slice, truncate).
 * Inserted pieces come from `pieces` (the parser's delimiters and traps) or are random text.
 */
export function mutatedString(
  valid: fc.Arbitrary<string>,
  pieces: readonly string[],
): fc.Arbitrary<string> {
  const piece = fc.oneof(
    fc.constantFrom(...pieces),
    fc.string({ maxLength: 4 }),
    fc.string({ maxLength: 4, unit: 'binary' }),
  );
  return fc
    .tuple(valid, fc.array(fc.tuple(edit, piece), { minLength: 1, maxLength: 4 }))
    .map(([input, edits]) =>
      edits.reduce((text, [e, p]) => apply(text, e, p, parts => parts.join('')), input),
    );
}

/** Bytes of a valid input with one to four random edits (see {@link mutatedString}). */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const piece = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 4 }),
    fc.constantFrom(Uint8Array.of(0), Uint8Array.of(0xff), Uint8Array.of(0xff, 0xff, 0xff, 0xff)),
  );
  return fc
    .tuple(valid, fc.array(fc.tuple(edit, piece), { minLength: 1, maxLength: 4 }))
    .map(([input, edits]) =>
      edits.reduce<Uint8Array>(
        (bytes, [e, p]) => apply(bytes, e, p, parts => new Uint8Array(Buffer.concat(parts))),
        input,
      ),
    );
}
