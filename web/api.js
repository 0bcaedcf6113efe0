// The REST API: JSON requests with the person's token, and uploads with progress.

const TOKEN_KEY = "montage.token";

/** An answer from the server that is not a success: its `{code, message}` and status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The token this browser signs in with: `?token=` in the address wins, then the stored one. */
export function token() {
  const fromAddress = new URLSearchParams(location.search).get("token");
  if (fromAddress) {
    localStorage.setItem(TOKEN_KEY, fromAddress);
    // Keep the token out of the address bar (and out of shared links).
    history.replaceState(null, "", location.pathname + location.hash);
    return fromAddress;
  }
  return localStorage.getItem(TOKEN_KEY) || "";
}

/** Keeps `value` as the token (empty: forget it). */
export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

async function errorOf(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.code || "error", body.message || response.statusText);
  } catch {
    return new ApiError(response.status, "error", `${response.status} ${response.statusText}`);
  }
}

/** `GET` or `POST` JSON at `path`; resolves to the answer's JSON or throws an `ApiError`. */
export async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "offline", "The server cannot be reached; trying again when it is back.");
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

/** Where to download asset `url` from: pictures, videos and links send the session cookie. */
export function assetUrl(url) {
  return url;
}

/**
 * Asks for the cookie that pictures, videos and download links carry (they cannot send the
 * token as a header); without a token there is nothing to ask for.
 */
export async function openSession() {
  if (!token()) return;
  const response = await fetch("/api/session", { method: "POST", headers: headers() });
  if (!response.ok) throw await errorOf(response);
}

/** The WebSocket address, with the token. */
export function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const t = token();
  const query = t ? `?token=${encodeURIComponent(t)}` : "";
  return `${scheme}//${location.host}/api/ws${query}`;
}

/**
 * Uploads `file`; `onProgress(fraction)` follows the bytes sent. Resolves to the stored
 * upload (`id`, `kind`, `name`, `asset`) or rejects with an `ApiError` saying why not.
 */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads");
    const t = token();
    if (t) xhr.setRequestHeader("Authorization", `Bearer ${t}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status === 201 && Array.isArray(body)) resolve(body[0]);
      else reject(new ApiError(xhr.status, body?.code || "error", body?.message || `upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new ApiError(0, "offline", "The upload could not reach the server."));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
