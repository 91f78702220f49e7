// The Avatar Creator API client: bearer token, JSON, the service's error shape.
const PREFIX = "/api/apps/avatar-creator";

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "error";
    this.details = error?.details || {};
  }
}

export class Api {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.token = token;
  }

  async request(method, path, { body, headers } = {}) {
    const response = await fetch(`${this.baseUrl}${PREFIX}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...(headers || {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, payload.error);
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
      reject(new Error(s3Message(xhr.responseText) || `Storage refused the file (HTTP ${xhr.status})`)));
    xhr.onerror = () => reject(new Error("Network error while uploading"));
    xhr.send(form);
  });
}

function s3Message(xml) {
  const match = /<Message>([^<]*)<\/Message>/.exec(xml || "");
  return match ? `Storage refused the file: ${match[1]}` : "";
}
