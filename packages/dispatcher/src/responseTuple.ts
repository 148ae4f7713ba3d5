import type { ResponseTuple } from './types.js';

const decoder = new TextDecoder();

/** The body of a response tuple as UTF-8 text. */
export function responseText(response: ResponseTuple): string {
  return decoder.decode(response.body);
}

/** The body of a response tuple parsed as JSON (throws `SyntaxError` when it is not). */
export function responseJson<T = unknown>(response: ResponseTuple): T {
  return JSON.parse(responseText(response)) as T;
}

/** Every value of a header (case-insensitive) in a response tuple, duplicates kept. */
export function responseHeaders(response: ResponseTuple, name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (const [n, v] of response.headers) if (n.toLowerCase() === lower) out.push(v);
  return out;
}

/** A fetch `Response` with the tuple's status, reason, headers and body. */
export function toFetchResponse(response: ResponseTuple): Response {
  const headers = new Headers();
  for (const [name, value] of response.headers) headers.append(name, value);
  const empty = response.status === 204 || response.status === 304 || response.status < 200;
  return new Response(
    empty ? null : (response.body as unknown as ConstructorParameters<typeof Response>[0]),
    {
      status: response.status,
      statusText: response.reason,
      headers,
    },
  );
}
