/** URLs in messages: a server's address is worth naming, its password never is. */

/**
 * `url` without its password (user, host, port, path and query kept), or the text unchanged when it
 * is not a URL.
 *
 * @example
 * withoutPassword('redis://app:s3cret@cache.internal:6379/0'); // 'redis://app@cache.internal:6379/0'
 */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
