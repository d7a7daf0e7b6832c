/** A small JSON client for the set-up calls of `npm run bench:commerce` (not the measured load). */

export type Api = {
  base: string;
  /** Bearer token of the bench tenant's admin once logged in. */
  token?: string;
  call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  /** Like call, but throws unless the status is one of `ok` (default any 2xx). */
  must<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    ok?: number[],
  ): Promise<T>;
};

export function apiAt(base: string): Api {
  const api: Api = {
    base,
    async call(method, path, body, headers = {}) {
      const response = await fetch(`${api.base}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(api.token ? { authorization: `Bearer ${api.token}` } : {}),
          ...headers,
        },
        body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {}
      return { status: response.status, body: parsed as never, headers: response.headers };
    },
    async must(method, path, body, headers, ok) {
      const result = await api.call(method, path, body, headers);
      const fine = ok ? ok.includes(result.status) : result.status >= 200 && result.status < 300;
      if (!fine) {
        const text = JSON.stringify(result.body);
        throw new Error(`${method} ${path}: ${result.status} ${text.slice(0, 800)}`);
      }
      return result.body as never;
    },
  };
  return api;
}

/** Logs in `email` of tenant `tenant`; sets and returns the access token. */
export async function login(api: Api, tenant: string, email: string, password: string): Promise<string> {
  const saved = api.token;
  api.token = undefined;
  try {
    const { accessToken } = await api.must<{ accessToken: string }>('POST', '/api/v1/auth/login', {
      tenant,
      email,
      password,
    });
    return accessToken;
  } finally {
    api.token = saved;
  }
}
