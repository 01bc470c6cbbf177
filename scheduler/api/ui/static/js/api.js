// The /v1 API from the page: same-origin requests, authenticated by the session cookie
// (HttpOnly: this code never sees the key and never puts it in a URL).

/** An answer of the API that is not 2xx: its status and the problem's detail. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** Send the browser back to sign-in, then here (the session ended or the key was rotated). */
export function signInAgain() {
  const here = location.pathname + location.search;
  location.assign(`/ui/?next=${encodeURIComponent(here)}`);
}

/** Fetch `url` and return its JSON body; throw ApiError with the problem's detail otherwise. */
export async function request(url, { method = "GET", body, headers } = {}) {
  const response = await fetch(url, {
    method,
    body,
    headers: { Accept: "application/json", ...headers },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 401) {
    signInAgain();
    throw new ApiError(401, "signed out");
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = (data && (data.detail || data.error)) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

export const getJSON = (url) => request(url);
