// The Avatar Creator API client: bearer token, JSON, the service's error shape.
const PREFIX = "/api/apps/avatar-creator";

export class ApiError extends Error {
  constructor(status, error, retryAfter = null) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "error";
    this.details = error?.details || {};
    this.retryAfter = retryAfter;  // seconds, from the Retry-After header of a 429/503
  }
}

/** A fetch that never reached the server (offline, DNS, CORS): said as such, not as "Failed to fetch". */
export class NetworkError extends Error {
  constructor() { super("Can't reach the server — check your connection and try again"); this.status = 0; }
}

export class Api {
  /** `language` (a function, read on every call) is sent as Accept-Language, so the API's own
   * sentences (a refused prompt) come in the page's language. */
  constructor(baseUrl, token, { language = null } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.token = token;
    this.language = language;
  }

  async request(method, path, { body, headers } = {}) {
    let response;
    try {
      response = await fetch(`${this.baseUrl}${PREFIX}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(this.language ? { "Accept-Language": this.language() } : {}),
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...(headers || {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch { throw new NetworkError(); }
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) {
      const wait = Number.parseInt(response.headers.get("Retry-After") || "", 10);
      throw new ApiError(response.status, payload.error, Number.isFinite(wait) ? wait : null);
    }
    return payload;
  }

  get(path) { return this.request("GET", path); }
  post(path, body, headers) { return this.request("POST", path, { body: body ?? {}, headers }); }
  put(path, body) { return this.request("PUT", path, { body }); }
  delete(path) { return this.request("DELETE", path); }
}

/** POST a file to S3 with a presigned POST, reporting progress (fetch cannot). Fields first, file last. */
export function uploadToS3(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [key, value] of Object.entries(upload.fields)) form.append(key, value);
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", upload.url);
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() :
      reject(Object.assign(new Error(s3Message(xhr.responseText) || `Storage refused the file (HTTP ${xhr.status})`),
        { code: "upload_failed", status: xhr.status })));
    xhr.onerror = () => reject(new NetworkError());
    xhr.send(form);
  });
}

function s3Message(xml) {
  const match = /<Message>([^<]*)<\/Message>/.exec(xml || "");
  return match ? `Storage refused the file: ${match[1]}` : "";
}
