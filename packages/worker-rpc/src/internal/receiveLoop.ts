/** What {@link receiveLoop} reads from: a zeromq.js socket (one pending `receive()` at a time). */
export interface Receivable {
  readonly closed: boolean;
  receive(): Promise<Buffer[]>;
}

/**
 * Reads every message of `socket` and hands it to `onMessage` until the socket closes (then it
 * resolves); a receive error on an open socket rejects. It calls `receive()` directly instead of
 * zeromq.js's async iterator, which wraps every message in an extra async function, promise and
 * result object; `receive()` itself settles synchronously when a message is already queued.
 */
export async function receiveLoop(
  socket: Receivable,
  onMessage: (frames: Buffer[]) => void,
): Promise<void> {
  while (!socket.closed) {
    let frames: Buffer[];
    try {
      frames = await socket.receive();
    } catch (error) {
      // zeromq.js rejects the pending receive with EAGAIN when the socket is closed under it
      if (socket.closed && (error as { code?: string }).code === 'EAGAIN') return;
      throw error;
    }
    onMessage(frames);
  }
}
