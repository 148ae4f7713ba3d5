import type { IncomingMessage } from 'node:http';
import { secretMatches } from '@x/resilience';

/** The cookie that carries the dashboard token once `/_x/?token=…` was opened. */
export const DASHBOARD_COOKIE = 'x-dashboard-token';

/**
 * Who may see the dashboard (`/_x/`, `/_x/state`, `/_x/events`) when `dashboard.requireToken` is
 * set: a request that carries the token as `Authorization: Bearer <token>`, as the
 * `x-dashboard-token` cookie, or (for the page only, to set that cookie) as `?token=<token>`.
 * Tokens are compared in constant time (`secretMatches` of `@x/resilience`).
 */
export class DashboardAccess {
  /** `token` undefined: the dashboard is open to whoever reaches the listener. */
  constructor(private readonly token: string | undefined) {}

  /** True when no token is required. */
  get open(): boolean {
    return this.token === undefined;
  }

  /** True when `token` is the dashboard token (always true when none is required). */
  matches(token: string | undefined): boolean {
    if (this.token === undefined) return true;
    if (token === undefined || token === '') return false;
    return secretMatches(token, this.token);
  }

  /** True when `req` carries the token in its `Authorization` header or its cookie. */
  allows(req: IncomingMessage): boolean {
    if (this.token === undefined) return true;
    const auth = req.headers.authorization;
    if (auth !== undefined && /^bearer /i.test(auth) && this.matches(auth.slice(7))) return true;
    return this.matches(cookieValue(req.headers.cookie, DASHBOARD_COOKIE));
  }
}

/** The value of cookie `name` in a `Cookie` header, or undefined. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
