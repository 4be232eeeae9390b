export interface HttpAnswer {
  status: number;
  body: string;
}

/** One HTTP call with a deadline; network failures become status 0 with the reason as body. */
export async function call(url: string, init: RequestInit = {}, timeoutMs = 15_000): Promise<HttpAnswer> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { status: 0, body: `${(err as Error).message}${cause ? ` (${cause})` : ''}` };
  }
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes; then returns undefined. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 1000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
