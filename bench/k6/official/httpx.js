// Stand-in for jslib's httpx 0.1.0, as much of it as the official Rinha script uses: a base
// URL, default headers and a timeout over k6/http's asyncRequest.
import http from "k6/http";

export class Httpx {
  constructor({ baseURL, headers = {}, timeout = 60000 }) {
    this.baseURL = baseURL;
    this.headers = headers;
    this.timeout = timeout;
  }

  asyncRequest(method, path, body, params = {}) {
    const headers = Object.assign({}, this.headers, params.headers || {});
    const merged = Object.assign({ timeout: this.timeout }, params, { headers });
    return http.asyncRequest(method, this.baseURL + path, body ?? null, merged);
  }

  asyncGet(path, params) {
    return this.asyncRequest("GET", path, null, params);
  }

  asyncPost(path, body, params) {
    return this.asyncRequest("POST", path, body, params);
  }

  asyncPut(path, body, params) {
    return this.asyncRequest("PUT", path, body, params);
  }
}
