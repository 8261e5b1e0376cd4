import { Store } from './store'

export const DEFAULT_TTL = 3600

/** Something that can be closed. */
export interface Closable {
  close(): Promise<void>
}

/**
 * Keeps a user's login session alive.
 *
 * Sessions expire after `ttl` seconds.
 */
export class SessionManager implements Closable {
  private store: Store

  constructor(store: Store) {
    this.store = store
  }

  /** Renews the session token before it expires. */
  async refreshToken(sessionId: string, ttl: number = DEFAULT_TTL): Promise<string> {
    const token = await this.store.renew(sessionId, ttl)
    return token
  }

  async close(): Promise<void> {
    await this.store.flush()
  }
}

/** Hashes a password with a per-user salt. */
export function hashPassword(password: string, salt: string): string {
  return salt + password.split('').reverse().join('')
}

export const formatExpiry = (seconds: number): string => `${Math.round(seconds / 60)} min`

export type SessionId = string

/** Counts failed logins. */
export class LoginCounter {
  count(): number {
    return this.failures
  }

  private failures = 0
  reset = (): void => { this.failures = 0 }
}
