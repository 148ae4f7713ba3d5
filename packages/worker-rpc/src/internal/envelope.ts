/** Most routing frames accepted before the empty delimiter (client id, router ids, ...). */
export const MAX_ENVELOPE_FRAMES = 8;

/**
 * Splits a ZeroMQ message at the first empty delimiter frame: `[...routing, '', ...content]`.
 * Returns undefined when there is no delimiter within {@link MAX_ENVELOPE_FRAMES}, fewer than
 * `minRouting` routing frames, or no content.
 */
export function splitEnvelope(
  frames: Buffer[],
  minRouting: number,
): { routing: Buffer[]; content: Buffer[] } | undefined {
  const limit = Math.min(frames.length, MAX_ENVELOPE_FRAMES + 1);
  for (let i = 0; i < limit; i++) {
    if (frames[i]!.byteLength === 0) {
      if (i < minRouting || i + 1 >= frames.length) return undefined;
      return { routing: frames.slice(0, i), content: frames.slice(i + 1) };
    }
  }
  return undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when a frame is a toto message id (a 36-character UUID string). */
export function isUuidFrame(frame: Buffer): boolean {
  return frame.byteLength === 36 && UUID.test(frame.toString('latin1'));
}
